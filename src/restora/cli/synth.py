"""``restora synth``: planner training data from clean photos.

Examples:
    restora synth --clean ../shared/data/clean/kodak24 --out out/synth --n 500 --workers 2
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from restora.cli.common import advance, app, command_line, out, progress_bar, report_failure, user_errors


@app.command()
def synth(
    clean: Annotated[list[Path], typer.Option("--clean", help="folder(s) of clean photos: --clean A B, or --clean A --clean B")],
    outdir: Annotated[Path, typer.Option("--out", "-o", help="dataset folder (resumable: a rerun continues)")],
    n: Annotated[int, typer.Option("--n", min=1, help="trajectories to have in the dataset")],
    more_clean: Annotated[list[Path] | None, typer.Argument(hidden=True, help="more clean folders (after --clean A)")] = None,
    seed: Annotated[int, typer.Option(help="seed: samples are a pure function of (seed, index, photos)")] = 0,
    size: Annotated[int, typer.Option(min=32, help="crop side, px")] = 256,
    workers: Annotated[int, typer.Option(min=1, help="samples made in parallel processes")] = 1,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress display")] = False,
) -> None:
    """Planner training data: degrade clean photos, search the best pipelines against the clean
    image, and write trajectories of RestoreAgent's five scenarios (traces, SFT and GRPO rows, card).

    Examples:
        restora synth --clean ../shared/data/clean/kodak24 --out out/synth --n 500 --workers 2
    """
    from restora.synth.planner import run_synth

    progress = progress_bar(quiet)
    with progress:
        task = progress.add_task("trajectories", total=n, last="")

        def on_sample(rec: dict) -> None:
            line = f"{rec['id']} {rec['photo']} {rec['combo'] or 'clean'}: {len(rec['trajectories'])} trajectories, best {'+'.join(rec['teacher']['best_plan']) or 'nothing'}"
            advance(progress, task, line, quiet, step=len(rec["trajectories"]))

        with user_errors():
            summary = run_synth(
                [*clean, *(more_clean or [])],
                outdir,
                n=n,
                seed=seed,
                size=size,
                workers=workers,
                on_sample=on_sample,
                command=command_line(),
            )
    out.print(
        f"{summary['trajectories']} trajectories from {summary['samples']} samples in {outdir} "
        f"({summary['samples_this_run']} new samples, {summary['seconds_this_run']:.0f} s)",
        highlight=False,
    )
    for f in summary.get("failures_this_run", []):
        report_failure(f"sample {f['id']} ({f['photo']}, {f['combo'] or 'clean'})", f["error"])
    if summary.get("failures_this_run"):
        raise typer.Exit(1)
