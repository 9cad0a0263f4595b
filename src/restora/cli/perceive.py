"""``restora perceive``: what is wrong with an image.

Examples:
    restora perceive photo.jpg --json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from restora.cli.common import app, out, report_failure, user_errors
from restora.errors import RestoraError
from restora.imageio import load_image


@app.command()
def perceive(
    images: Annotated[list[Path], typer.Argument(help="image files")],
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    backend: Annotated[str | None, typer.Option(help="learned (the shipped network) or classical (the calibrated estimators); default: RESTORA_PERCEPTION, else restora's default")] = None,
    model: Annotated[Path | None, typer.Option(help="learned: a run folder of `restora train perception` instead of the shipped network")] = None,
) -> None:
    """Say what is wrong with each image: presence and severity per degradation, with evidence."""
    with user_errors():
        _perceive = _backend(backend, model)

    results = {}
    failed = False
    for path in images:
        try:
            report = _perceive(load_image(path).pixels)
        except RestoraError as e:
            report_failure(path, str(e))
            failed = True
            continue
        results[str(path)] = report.model_dump(mode="json")
        if not as_json:
            table = Table(title=f"{path.name}: {report.width}x{report.height}")
            for col in ("degradation", "present", "severity", "evidence"):
                table.add_column(col)
            for name, f in report.findings.items():
                ev = ", ".join(f"{k}={v:.3g}" for k, v in f.evidence.items())
                table.add_row(name, "yes" if f.present else "no", f"{f.severity:.2f}", ev)
            out.print(table)
    if as_json:
        payload = next(iter(results.values())) if len(images) == 1 and results else results
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
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
