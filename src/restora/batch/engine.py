"""``restora batch``: a resumable, crash-safe batch over big folders.

:func:`run_batch` is the driver: it takes the output folder's lock, brings the ledger up to date
with the inputs (:mod:`restora.batch.ledger`), hands the images to an engine and records each
result as it comes, then writes ``OUT/index.html``, ``summary.json`` and ``summary.csv``
(:mod:`restora.batch.index`). Only the driver writes the ledger; workers write an image's files
(each to a temporary name, then renamed) and its receipt last (:mod:`restora.batch.job`).

Engines: :class:`LocalEngine` runs N worker processes, each loading tools and models once; an
image that crashes its worker (a segfault in a native library, the OOM killer) or runs past
``timeout`` fails alone, and the worker is replaced. The Ray engine
(:mod:`restora.batch.ray_engine`) runs the same per-image work on Ray Data.

Examples:
    >>> from restora.batch.engine import run_batch
    >>> from restora.batch.job import BatchSettings
    >>> report = run_batch([Path("scans")], Path("out"), BatchSettings(fmt="jpg"), workers=2)  # doctest: +SKIP
    >>> report.counts                                                                          # doctest: +SKIP
    {'done': 200}
"""

from __future__ import annotations

import os
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from restora.batch.job import BatchSettings, Job, Restorer, read_receipt, work_dir
from restora.batch.ledger import BatchLock, Ledger
from restora.batch.scan import scan_inputs
from restora.errors import RestoraError

LEDGER_NAME = "restora-ledger.sqlite"
DRY_RUN_LEDGER = "dry-run.sqlite"


class BatchError(RestoraError):
    """The batch cannot go on (no worker could start, the ledger is unusable)."""


def ledger_path(outdir: Path, dry_run: bool = False) -> Path:
    """``OUT/restora-ledger.sqlite``; a dry run's own ledger is ``OUT/restora-batch/dry-run.sqlite``."""
    return work_dir(outdir) / DRY_RUN_LEDGER if dry_run else Path(outdir) / LEDGER_NAME


class StopFlag:
    """Set to stop handing out images (the ones in flight finish); :class:`LocalEngine` polls it."""

    def __init__(self) -> None:
        self.pressed = False


@dataclass
class BatchReport:
    """What a batch did: the ledger's counts after it, and this run's results in finishing order."""

    outdir: Path
    counts: dict[str, int] = field(default_factory=dict)
    results: list[dict[str, Any]] = field(default_factory=list)
    sync: dict[str, int] = field(default_factory=dict)
    recovered: int = 0  # finished before a crash, recorded now from their receipts
    interrupted: bool = False
    seconds: float = 0.0


def run_batch(
    inputs: list[Path],
    outdir: Path,
    settings: BatchSettings,
    *,
    workers: int = 1,
    redo: str | None = None,
    globs: list[str] | None = None,
    excludes: list[str] | None = None,
    timeout: float | None = None,
    engine: str = "local",
    ray_address: str | None = None,
    gpus_per_worker: float = 0.0,
    stop: StopFlag | None = None,
    on_start: Callable[[int, dict[str, int]], None] | None = None,
    on_result: Callable[[dict[str, Any]], None] | None = None,
    restorer: type[Restorer] = Restorer,
) -> BatchReport:
    """Run (or resume) a batch; see the module doc. ``on_start(todo, sync_stats)`` is called once
    the ledger is up to date, ``on_result(result)`` after each image is recorded."""
    t0 = time.perf_counter()
    outdir = Path(outdir)
    stop = stop or StopFlag()
    jobs, skipped = scan_inputs(inputs, outdir, globs, excludes)
    report = BatchReport(outdir=outdir)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BatchError(f"cannot make the output folder {outdir}: {e.strerror or e}") from e
    if not os.access(outdir, os.W_OK):
        raise BatchError(f"the output folder {outdir} is not writable")
    with BatchLock(outdir), Ledger.open(ledger_path(outdir, settings.dry_run)) as ledger:
        ledger.check_settings(settings.outputs_key(), redo)
        report.recovered = _recover(ledger, outdir)
        report.sync = ledger.sync(jobs, redo, skipped)
        rows = ledger.todo()
        todo = [Job(r["source"], r["name"], r["size"], r["mtime_ns"]) for r in rows]
        if on_start is not None:
            on_start(len(todo), report.sync)

        fatal: list[str] = []

        def record(result: dict[str, Any]) -> None:
            if result.get("fatal"):
                ledger.release(result["source"])
                stop.pressed = True
                fatal.append(result["fatal"])
                return
            ledger.finish(result)
            report.results.append(result)
            if on_result is not None:
                on_result(result)

        if todo:
            if engine == "local":
                LocalEngine(settings, outdir, workers=workers, timeout=timeout, restorer=restorer).run(todo, ledger.claim, record, stop)
            elif engine == "ray":
                from restora.batch.ray_engine import RayEngine

                RayEngine(settings, outdir, workers=workers, address=ray_address, gpus_per_worker=gpus_per_worker, restorer=restorer).run(todo, ledger.claim, record, stop)
            else:
                raise ValueError(f"unknown engine {engine!r} (use local or ray)")
        if fatal:
            raise BatchError(f"stopped: cannot write the outputs: {fatal[0]}; free space on that disk (or make it writable) and run the same command again to resume")
        report.interrupted = stop.pressed and len(report.results) < len(todo)
        report.counts = ledger.counts()
        if settings.dry_run:
            from restora.batch.index import write_dry_run

            write_dry_run(outdir, list(ledger.rows()))
        else:
            from restora.batch.index import write_index

            write_index(outdir, list(ledger.rows()), seconds=time.perf_counter() - t0)
    report.seconds = time.perf_counter() - t0
    return report


def _recover(ledger: Ledger, outdir: Path) -> int:
    """Rows left ``running`` by a killed run whose image had finished (its receipt is there): done now."""
    n = 0
    for row in ledger.running():
        receipt = read_receipt(outdir, Job(row["source"], row["name"], row["size"], row["mtime_ns"]))
        if receipt is not None and receipt.get("output") and os.path.exists(receipt["output"]):
            ledger.finish(receipt)
            n += 1
    return n


# -- the local engine ----------------------------------------------------------------------------
@dataclass
class _Slot:
    proc: Any
    conn: Any
    ready: bool = False
    job: Job | None = None
    deadline: float = 0.0


class LocalEngine:
    """N worker processes (spawned; each makes one :class:`Restorer`), fed one image at a time.

    ``timeout``: seconds an image may take before its worker is killed and replaced (default:
    the agent's own budget plus two minutes). ``restorer``: the class each worker makes (a
    top-level class, imported by the worker).
    """

    def __init__(self, settings: BatchSettings, outdir: Path, workers: int = 1, timeout: float | None = None, restorer: type[Restorer] = Restorer) -> None:
        self.settings = settings
        self.outdir = Path(outdir)
        self.workers = max(1, int(workers))
        self.timeout = float(timeout) if timeout else settings.max_seconds + 120.0
        self.restorer = restorer
        self._ctx = get_context("spawn")

    def _spawn(self) -> _Slot:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_worker_main, args=(child, self.restorer, self.settings, str(self.outdir)), daemon=True)
        proc.start()
        child.close()
        return _Slot(proc, parent)

    def run(self, jobs: list[Job], claim: Callable[[str], None], record: Callable[[dict[str, Any]], None], stop: StopFlag) -> None:
        queue = deque(jobs)
        start_failures = 0
        slots = [self._spawn() for _ in range(min(self.workers, len(jobs)))]
        try:
            while True:
                for slot in slots:
                    if slot.ready and slot.job is None and queue and not stop.pressed:
                        job = queue.popleft()
                        claim(job.source)
                        slot.job, slot.deadline = job, time.monotonic() + self.timeout
                        slot.conn.send(asdict(job))
                busy = [s for s in slots if s.job is not None]
                if not busy and (not queue or stop.pressed):
                    break
                ready = wait([s.conn for s in slots] + [s.proc.sentinel for s in slots], timeout=0.5)
                for i, slot in enumerate(slots):
                    replace = False
                    if slot.conn in ready:
                        try:
                            kind, value = slot.conn.recv()
                        except (EOFError, OSError):
                            kind, value = "died", None
                        if kind == "ready":
                            slot.ready = True
                        elif kind == "result":
                            slot.job = None
                            record(value)
                        elif kind == "init-failed":
                            raise BatchError(f"a worker could not start: {value}")
                        else:
                            replace = True
                    elif slot.proc.sentinel in ready:
                        replace = True
                    elif slot.job is not None and time.monotonic() > slot.deadline:
                        slot.proc.kill()
                        record(_failed(slot.job, f"took longer than {self.timeout:g}s (the time limit per image); its worker was stopped"))
                        slot.job = None
                        replace = True
                    if replace:
                        slot.proc.join(timeout=5)
                        if not slot.ready:
                            start_failures += 1
                            if start_failures >= 3:
                                raise BatchError(f"worker processes die while starting ({_exit_reason(slot.proc.exitcode)}); nothing was restored")
                        if slot.job is not None:
                            record(_failed(slot.job, f"the worker process died while restoring it ({_exit_reason(slot.proc.exitcode)})"))
                            slot.job = None
                        slot.conn.close()
                        slots[i] = self._spawn()
        finally:
            for slot in slots:
                try:
                    slot.conn.send(None)
                except (OSError, ValueError):
                    pass
            deadline = time.monotonic() + 10
            for slot in slots:
                if slot.job is not None:  # stopped at once: no waiting for the images in flight
                    slot.proc.kill()
                slot.proc.join(timeout=max(0.1, deadline - time.monotonic()))
                if slot.proc.is_alive():
                    slot.proc.kill()
                    slot.proc.join(timeout=5)


def _failed(job: Job, error: str) -> dict[str, Any]:
    return {"source": job.source, "name": job.name, "state": "failed", "error": error, "seconds": 0.0}


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "it did not exit"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = {"SIGKILL": " (out of memory, or killed)", "SIGSEGV": " (a crash in a native library)"}.get(name, "")
        return f"killed by {name}{hint}"
    return f"exit code {code}"


def _worker_main(conn: Any, restorer_cls: type[Restorer], settings: BatchSettings, outdir: str) -> None:
    """A worker process: ignore Ctrl-C (the driver decides), load once, then one image per message."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from restora.batch.pool import describe_error
    from restora.batch.workers import worker_init

    worker_init()
    try:
        restorer = restorer_cls(settings, Path(outdir))
    except Exception as e:  # noqa: BLE001 - reported to the driver, which stops the batch
        conn.send(("init-failed", describe_error(e)))
        return
    conn.send(("ready", None))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        conn.send(("result", restorer.process(Job(**msg))))
