"""``restora batch``: clean up a big folder, resumably, on N worker processes or on Ray.

Examples:
    restora batch scans/ -o clean/ --workers 2                  # OUT mirrors scans/; rerun to resume
    restora batch scans/ more/ -o clean/ --glob '*.jpg' --exclude '*/rejects/*' --format keep
    restora batch scans/ -o clean/ --dry-run                    # perceive only: what would be done
    restora batch scans/ -o clean/ --redo failed                # try the failed ones again
    restora batch scans/ -o clean/ --engine ray --ray-address auto
"""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from restora.cli.common import StopOnCtrlC, app, err, escape_markup, fail, out, print_rows, report_failure, split_csv, user_errors
from restora.imageio import DEFAULT_MAX_MEGAPIXELS


@app.command()
def batch(
    inputs: Annotated[list[Path], typer.Argument(help="image files or folders (searched recursively; symlinks are not followed)")],
    outdir: Annotated[Path, typer.Option("--out", "-o", help="output folder: mirrors the input tree; holds the ledger, index.html and summary.json/csv")],
    workers: Annotated[int, typer.Option(min=1, help="worker processes (or Ray actors), each loading tools and models once")] = 1,
    glob: Annotated[list[str] | None, typer.Option("--glob", help="only files matching this pattern (path below the folder, or file name; repeatable; default: image suffixes)")] = None,
    exclude: Annotated[list[str] | None, typer.Option("--exclude", help="skip files and folders matching this pattern (repeatable)")] = None,
    redo: Annotated[str | None, typer.Option(help="failed: retry every failed input (a rerun retries them until they failed 3 times); all: redo everything")] = None,
    fmt: Annotated[str, typer.Option("--format", help="keep (the input's format where restora writes it, else png), png, jpg, webp or tiff")] = "keep",
    quality: Annotated[int, typer.Option(min=1, max=100, help="JPEG/WebP quality (WebP 100: lossless)")] = 95,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="perceive only: write what would be done per image (dry-run.csv/json, its own ledger) and a table")] = False,
    max_steps: Annotated[int, typer.Option(min=0, help="tool calls allowed per image (rolled-back ones count)")] = 8,
    max_seconds: Annotated[float, typer.Option(min=1, help="the agent's time budget per image, seconds")] = 600.0,
    timeout: Annotated[float | None, typer.Option(min=1, help="hard limit per image, seconds: its worker is stopped and replaced (default: --max-seconds + 120)")] = None,
    allow: Annotated[str | None, typer.Option(help="comma-separated tools the agent may use (default: all available; see `restora tools`)")] = None,
    max_megapixels: Annotated[float, typer.Option(help="refuse larger inputs")] = DEFAULT_MAX_MEGAPIXELS,
    device: Annotated[str, typer.Option(help="where model tools run: auto, cpu, cuda, cuda:1, ...")] = "auto",
    perception: Annotated[str | None, typer.Option("--perception", help="learned, classical, or a run folder of `restora train perception`")] = None,
    guard: Annotated[bool, typer.Option("--guard/--no-guard", help="the no-harm guard")] = True,
    engine: Annotated[str, typer.Option(help="local (worker processes here) or ray (Ray Data; pip install 'restora[ray]')")] = "local",
    ray_address: Annotated[str | None, typer.Option(help="ray: join this cluster (auto, or ray://host:10001); default: a local Ray instance")] = None,
    gpus_per_worker: Annotated[float, typer.Option(min=0, help="ray: GPUs each actor reserves (when model tools run on GPUs)")] = 0.0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress display and no closing lines")] = False,
) -> None:
    """Restore a big folder: resumable (a ledger in OUT), crash-safe, on N workers or Ray.

    Writes OUT/<path below the input folder> per image (format per --format; EXIF, ICC profile
    and XMP carried over), its report page, trace and thumbnails under OUT/restora-batch/, and
    OUT/index.html, summary.json, summary.csv at the end. Run the same command again to resume:
    what is done is skipped, what failed or was cut off is retried, new files are added.
    Ctrl-C finishes the images in flight and stops (a second Ctrl-C stops at once); exit 130.
    """
    from restora.batch.engine import StopFlag, ledger_path, run_batch
    from restora.batch.job import BatchSettings

    with user_errors():
        if redo not in (None, "failed", "all"):
            raise ValueError(f"--redo {redo}: use failed or all")
        if engine not in ("local", "ray"):
            raise ValueError(f"--engine {engine}: use local or ray")
        names = split_csv(allow)
        if names:
            from restora.cli.run import _known_tools

            _known_tools(names)
        settings = BatchSettings(
            max_steps=max_steps, max_seconds=max_seconds, allow=names, guard=guard, perception=perception,
            device=device, fmt=fmt, quality=quality, max_megapixels=max_megapixels, dry_run=dry_run,
        )
        if engine == "ray":
            from restora.batch.ray_engine import check_ray

            check_ray()

    display = BatchDisplay(quiet=quiet)
    stop = StopFlag()
    first = "Ctrl-C: finishing the images in flight, then stopping (Ctrl-C again to stop now)"
    with display.progress, StopOnCtrlC(first, on_first=lambda: setattr(stop, "pressed", True)):
        try:
            with user_errors():
                report = run_batch(
                    inputs, outdir, settings, workers=workers, redo=redo, globs=glob, excludes=exclude, timeout=timeout,
                    engine=engine, ray_address=ray_address, gpus_per_worker=gpus_per_worker, stop=stop,
                    on_start=display.start, on_result=display.result,
                )
        except KeyboardInterrupt:
            err.print(f"stopped at once: the images in flight are left as running and will be redone; resume with: {resume_command()}", highlight=False, markup=False, soft_wrap=True)
            raise typer.Exit(130) from None
        except OSError as e:
            raise fail(f"{e.filename or outdir}: {e.strerror or e} (is the disk full or read-only?)") from None

    c = report.counts
    ledger = ledger_path(outdir, dry_run)
    if dry_run and not quiet:
        from restora.batch.ledger import Ledger

        with Ledger.open(ledger) as led:
            rows = [[r["source"], ", ".join(r["found"]) or "nothing", "; ".join(r["plan"]) or "nothing", r["state"]] for r in led.rows()]
        print_rows("restora batch --dry-run", ["image", "found", "would do", "state"], rows, wrap=["found", "would do"])
    for r in report.results:
        if r["state"] == "failed":
            report_failure(r["source"], r.get("error") or "")
    if not quiet:
        what = "perceived" if dry_run else "done"
        line = (
            f"{c.get('done', 0)} {what}, {c.get('failed', 0)} failed, {c.get('skipped', 0)} skipped of {sum(c.values())} inputs"
            f" ({len(report.results)} this run in {report.seconds:.0f}s"
            + (f", {report.recovered} found finished from a killed run" if report.recovered else "")
            + (f", {report.sync.get('gave_up')} failed {3} times and not retried: --redo failed" if report.sync.get("gave_up") else "")
            + f"); ledger {ledger}"
        )
        out.print(line, highlight=False, markup=False, soft_wrap=True)
        if not dry_run:
            out.print(f"index: {outdir / 'index.html'}; summary: {outdir / 'summary.json'}, {outdir / 'summary.csv'}", highlight=False, markup=False, soft_wrap=True)
        else:
            out.print(f"per image: {outdir / 'dry-run.csv'}, {outdir / 'dry-run.json'}", highlight=False, markup=False, soft_wrap=True)
    if report.interrupted:
        left = c.get("pending", 0) + c.get("running", 0)
        err.print(f"interrupted: {left} inputs not done; resume with: {resume_command()}", highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(130)
    if c.get("failed", 0):
        raise typer.Exit(1)


def resume_command(argv: list[str] | None = None) -> str:
    """The command line that resumes this batch: the same, without ``--redo``.

    Examples:
        >>> resume_command(["restora", "batch", "in", "-o", "out", "--redo", "all", "--workers", "2"])
        'restora batch in -o out --workers 2'
    """
    args = list(sys.argv if argv is None else argv)[1:]
    keep: list[str] = []
    skip = False
    for a in args:
        if skip:
            skip = False
            continue
        if a == "--redo":
            skip = True
            continue
        if a.startswith("--redo="):
            continue
        keep.append(a)
    return "restora " + shlex.join(keep)


class BatchDisplay:
    """Files done/failed, images per minute and the ETA: a live bar on a terminal, otherwise one
    plain line per image on stderr (logs, nohup, CI)."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.live = not quiet and err.is_terminal
        self.progress = Progress(
            SpinnerColumn(), TextColumn("[bold]images"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[stats]}"), TimeElapsedColumn(),
            console=err, disable=not self.live,
        )
        self.task: Any = None
        self.total = 0
        self.done = 0
        self.failed = 0
        self.t0 = time.monotonic()

    def start(self, todo: int, sync: dict[str, int]) -> None:
        self.total, self.t0 = todo, time.monotonic()
        self.task = self.progress.add_task("", total=todo, stats="")
        if not self.quiet:
            already = sync.get("done", 0)
            line = f"{todo} images to do" + (f" ({already} already done, skipped)" if already else "")
            err.print(line, highlight=False, markup=False, soft_wrap=True)

    def stats(self) -> str:
        n = self.done + self.failed
        minutes = max(time.monotonic() - self.t0, 1e-6) / 60.0
        rate = n / minutes
        eta = (self.total - n) / rate * 60.0 if rate > 0 else 0.0
        return f"{self.done} done, {self.failed} failed, {rate:.1f} img/min, ETA {_duration(eta) if n else '?'}"

    def result(self, r: dict[str, Any]) -> None:
        if r["state"] == "done":
            self.done += 1
        else:
            self.failed += 1
        stats = self.stats()
        self.progress.update(self.task, advance=1, stats=stats)
        if self.quiet:
            return
        what = f"-> {r.get('output')}" if r["state"] == "done" and r.get("output") else ("FAILED: " + (r.get("error") or "") if r["state"] == "failed" else "")
        if r["state"] == "done" and not r.get("output"):  # dry run
            what = f"found {', '.join(r.get('found', [])) or 'nothing'}"
        line = f"[{self.done + self.failed}/{self.total}; {stats}] {r['source']} {what}"
        if self.live:
            self.progress.console.print(escape_markup(line), highlight=False, soft_wrap=True)
        else:
            err.print(line, highlight=False, markup=False, soft_wrap=True)


def _duration(seconds: float) -> str:
    """``75`` -> ``'1m15s'``; ``4000`` -> ``'1h06m'``."""
    s = int(seconds)
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"

