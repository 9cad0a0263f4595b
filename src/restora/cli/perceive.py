"""``restora perceive``: what is wrong with an image.

Examples:
    restora perceive photo.jpg                   # a table per image
    restora perceive photos/ --json              # [{"path": ..., "report": {...}, "error": null}, ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from restora.cli.common import app, fail, gather_inputs, out, report_failure, user_errors
from restora.errors import RestoraError
from restora.imageio import load_image


@app.command()
def perceive(
    images: Annotated[list[Path], typer.Argument(help="image files or folders of images")],
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output: a list of {path, report, error}, one per image")] = False,
    backend: Annotated[str | None, typer.Option(help="learned (the shipped network) or classical (the calibrated estimators); default: RESTORA_PERCEPTION, else restora's default")] = None,
    model: Annotated[Path | None, typer.Option(help="learned: a run folder of `restora train perception` instead of the shipped network")] = None,
) -> None:
    """Say what is wrong with each image: presence and severity per degradation, with evidence.

    With --json, always a list with one object per image, in input order: ``path``, ``report``
    (null when the image could not be read) and ``error`` (null, or why it could not be read).
    """
    with user_errors():
        _perceive = _backend(backend, model)
        items = gather_inputs(images, unique=False)  # nothing is written per input: same names are fine
    if not items:
        raise fail(f"no input images in {', '.join(str(p) for p in images)}")

    results = []
    failed = False
    for item in items:
        path = item.path
        try:
            report = _perceive(load_image(path).pixels)
        except RestoraError as e:
            report_failure(path, str(e))
            results.append({"path": str(path), "report": None, "error": str(e)})
            failed = True
            continue
        results.append({"path": str(path), "report": report.model_dump(mode="json"), "error": None})
        if not as_json:
            table = Table(title=f"{path}: {report.width}x{report.height}")
            for col in ("degradation", "present", "severity", "evidence"):
                table.add_column(col)
            for name, f in report.findings.items():
                ev = ", ".join(f"{k}={v:.3g}" for k, v in f.evidence.items())
                table.add_row(name, "yes" if f.present else "no", f"{f.severity:.2f}", ev)
            out.print(table)
    if as_json:
        sys.stdout.write(json.dumps(results, indent=2) + "\n")
    if failed:
        raise typer.Exit(1)


def _backend(backend: str | None, model: Path | None):
    """The perceive callable ``--backend`` and ``--model`` name."""
    from restora.perception import BACKENDS
    from restora.perception import backend as named

    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r} ({' or '.join(BACKENDS)})")
    if model is not None:
        if backend == "classical":
            raise ValueError("--model is for --backend learned")
        if not model.is_dir():
            raise ValueError(f"--model {model}: not a folder (a run folder of `restora train perception`)")
        return named(model)
    return named(backend)
