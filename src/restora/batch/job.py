"""One image of a batch, start to finish: what a worker (a local process or a Ray actor) does.

:class:`BatchSettings` is everything that decides an image's outputs (the agent's budget, the
tools, the output format); :class:`Restorer` holds what a worker loads once (tools, models, the
quality scorer) and turns a :class:`Job` into a plain dict result. Every file is written to a
temporary name and renamed; the last file written is the image's *receipt*
(``restora-batch/receipts/<name>.json``), so a driver killed after the outputs were renamed but
before its ledger said ``done`` finds the receipt on the next run and does not redo the image.

The output tree (``OUT`` below)::

    OUT/<name><suffix>                          the restored image (OUT mirrors the input tree)
    OUT/restora-batch/pages/<name>.html         its report page
    OUT/restora-batch/traces/<name>.trace.jsonl its trace
    OUT/restora-batch/thumbs/<name>.{before,after}.jpg
    OUT/restora-batch/receipts/<name>.json      written last: the image is finished

Examples:
    >>> settings = BatchSettings(max_steps=4, allow=["denoise_nlm"], fmt="jpg")
    >>> job = Job(source="in/a.png", name="a", size=10, mtime_ns=0)
    >>> restorer = Restorer(settings, Path("out"))            # doctest: +SKIP
    >>> restorer.process(job)["state"]                         # doctest: +SKIP
    'done'
"""

from __future__ import annotations

import errno
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from restora.imageio import DEFAULT_MAX_MEGAPIXELS

WORK_DIR = "restora-batch"
"""The folder inside OUT for the ledger, lock, pages, traces, thumbnails and receipts."""
THUMB_PX = 160


@dataclass(frozen=True)
class BatchSettings:
    """What decides a batch's outputs; a rerun on the same OUT must use the same (the ledger keeps
    them and refuses others, see :meth:`restora.batch.ledger.Ledger.check_settings`)."""

    max_steps: int = 8
    max_seconds: float = 600.0
    allow: list[str] | None = None
    guard: bool = True
    perception: str | None = None
    device: str = "auto"
    fmt: str = "keep"
    quality: int = 95
    max_megapixels: float = DEFAULT_MAX_MEGAPIXELS
    dry_run: bool = False

    def __post_init__(self) -> None:
        if not 1 <= int(self.quality) <= 100:
            raise ValueError(f"quality must be in 1..100, got {self.quality}")
        from restora.imageio import FORMATS

        if self.fmt != "keep" and self.fmt not in FORMATS:
            raise ValueError(f"unknown format {self.fmt!r}: use keep, {', '.join(FORMATS)}")

    def outputs_key(self) -> dict[str, Any]:
        """The settings that change the outputs (device excluded: it changes only speed)."""
        d = asdict(self)
        d.pop("device")
        return d


@dataclass(frozen=True)
class Job:
    """One input: its path, its output name (relative, no suffix), and its size and mtime when
    listed (the ledger's identity of the file's content)."""

    source: str
    name: str
    size: int
    mtime_ns: int


@dataclass
class Outcome:
    """What a worker returns for one job (a plain dict crosses processes and Ray)."""

    source: str
    name: str
    state: str  # done or failed
    output: str | None = None
    found: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    plan: list[str] = field(default_factory=list)  # dry run: the tasks that would be tried
    tool_calls: int = 0
    seconds: float = 0.0
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    size: int = 0
    mtime_ns: int = 0
    fatal: str | None = None  # the output disk is full or read-only: the batch stops, the image is not blamed


def work_dir(outdir: Path) -> Path:
    return Path(outdir) / WORK_DIR


def side_path(outdir: Path, kind: str, name: str, suffix: str) -> Path:
    """``OUT/restora-batch/<kind>/<name><suffix>`` (kind: pages, traces, thumbs, receipts)."""
    return work_dir(outdir) / kind / (name + suffix)


def read_receipt(outdir: Path, job: Job) -> dict[str, Any] | None:
    """The receipt of a finished image, if there is one for this very file (same size and mtime)."""
    p = side_path(outdir, "receipts", job.name, ".json")
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError):
        return None
    if data.get("source") != job.source or data.get("size") != job.size or data.get("mtime_ns") != job.mtime_ns:
        return None
    return data


class Restorer:
    """A worker's loaded state (tools, scorer, perception) and the per-image work.

    Made once per worker process or Ray actor; :meth:`process` never raises for a bad image: the
    failure is the result (``state="failed"``, ``error``).
    """

    def __init__(self, settings: BatchSettings, outdir: Path) -> None:
        from restora.config import DeviceConfig, RunConfig
        from restora.model_zoo.loaded import apply as apply_device
        from restora.perception import backend
        from restora.quality import QualityScorer
        from restora.tools import ToolBox

        self.settings = settings
        self.outdir = Path(outdir)
        self.config = RunConfig(max_steps=settings.max_steps, max_seconds=settings.max_seconds, guard=settings.guard, perception=settings.perception)
        self.perceive = backend(self.config.perception)
        placed, _ = apply_device(DeviceConfig(device=settings.device))
        self.toolbox = ToolBox(device=placed, allow=settings.allow)
        self.scorer = None if settings.dry_run else QualityScorer()

    def process(self, job: Job) -> dict[str, Any]:
        """Restore (or, dry run, perceive) one image; a plain dict (:class:`Outcome`'s fields)."""
        from restora.batch.pool import describe_error

        t0 = time.perf_counter()
        out = Outcome(source=job.source, name=job.name, state="failed", size=job.size, mtime_ns=job.mtime_ns)
        try:
            if self.settings.dry_run:
                self._perceive_only(job, out)
            else:
                self._restore(job, out)
            out.state = "done"
        except OSError as e:
            out.error = describe_error(e)
            if e.errno in (errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EACCES):
                out.fatal = f"{e.strerror} ({e.filename or self.outdir})"
        except Exception as e:  # noqa: BLE001 - one image's failure is its result; the batch goes on
            out.error = describe_error(e)
        out.seconds = time.perf_counter() - t0
        return asdict(out)

    def _perceive_only(self, job: Job, out: Outcome) -> None:
        from restora.imageio import load_image
        from restora.taxonomy import RESTORATION_ORDER, TASK_FOR, Degradation

        loaded = load_image(job.source, max_megapixels=self.settings.max_megapixels)
        report = self.perceive(loaded.pixels)
        present = report.present()
        out.found = [f.degradation.value for f in present]
        tasks = {TASK_FOR[Degradation(d)] for d in out.found}
        have = self.toolbox.catalogue()
        for task in RESTORATION_ORDER:
            if task in tasks:
                tools = [n for n, cls in have.items() if task in cls.handles()]
                out.plan.append(f"{task.value} ({', '.join(sorted(tools)) or 'no tool available'})")
        out.notes = loaded.notes

    def _restore(self, job: Job, out: Outcome) -> None:
        from restora.agent import restore
        from restora.errors import RestoraError
        from restora.imageio import load_image, output_format, save_image_as, write_text_atomic
        from restora.planners import HeuristicPlanner
        from restora.report import render_report

        loaded = load_image(job.source, max_megapixels=self.settings.max_megapixels)
        fmt, suffix = output_format(self.settings.fmt, job.source, loaded)
        target = self.outdir / (job.name + suffix)
        if target.resolve() == Path(job.source).resolve():
            raise RestoraError(f"output {target} would overwrite the input; choose another --out")
        trace = side_path(self.outdir, "traces", job.name, ".trace.jsonl")
        page = side_path(self.outdir, "pages", job.name, ".html")
        receipt_path = side_path(self.outdir, "receipts", job.name, ".json")
        thumbs = [side_path(self.outdir, "thumbs", job.name, f".{k}.jpg") for k in ("before", "after")]
        for p in (target, trace, page, receipt_path, *thumbs):
            _remove_stale_parts(p)  # what a killed worker left: temporary names only, never final ones
        trace.with_name(trace.name + ".part").unlink(missing_ok=True)
        trace.parent.mkdir(parents=True, exist_ok=True)
        result = restore(
            loaded.pixels,
            config=self.config,
            planner=HeuristicPlanner(),
            toolbox=self.toolbox,
            scorer=self.scorer,
            trace_path=trace,
            source=job.source,
            notes=loaded.notes,
        )
        _, notes = save_image_as(target, result.image, like=loaded, fmt=fmt, quality=self.settings.quality)
        rel = lambda p: os.path.relpath(p, page.parent)  # noqa: E731
        write_text_atomic(page, render_report(result, title=Path(job.source).name, output_name=rel(target), trace_name=rel(trace)))
        _thumbs(self.outdir, job.name, loaded.pixels, result.image)
        out.output = str(target)
        out.found = [n for n, f in result.state.get("input_report", {}).get("findings", {}).items() if f.get("present")]
        out.kept = list(result.accepted)
        out.tool_calls = int(result.tool_calls)
        out.notes = [*loaded.notes, *notes]
        out.state = "done"
        out.seconds = 0.0
        receipt = {**asdict(out), "seconds": round(result.seconds, 3)}
        write_text_atomic(receipt_path, json.dumps(receipt))  # last: the image is finished


def _remove_stale_parts(target: Path) -> None:
    """Temporary files a killed worker left beside ``target`` (never under a final name)."""
    if target.parent.is_dir():
        for p in target.parent.glob(f".{target.name}.*.part"):
            p.unlink(missing_ok=True)


def _thumbs(outdir: Path, name: str, before: Any, after: Any) -> None:
    import io

    import numpy as np
    from PIL import Image

    from restora.imageio import to_uint8, write_bytes_atomic

    for kind, pixels in (("before", before), ("after", after)):
        im = Image.fromarray(to_uint8(np.asarray(pixels)), "RGB")
        im.thumbnail((THUMB_PX, THUMB_PX))
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=80)
        write_bytes_atomic(side_path(outdir, "thumbs", name, f".{kind}.jpg"), buf.getvalue())
