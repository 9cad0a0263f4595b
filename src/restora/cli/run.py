"""``restora run``: restore a few images with the agent.

Examples:
    restora run photo.jpg -o out/                # restore, write out/photo.png, .trace.jsonl, .html
    restora run photos/ -o out/ --max-steps 6    # a whole folder (out/ mirrors it); one line per failed input
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from restora.cli.common import (
    PlannerAdapter,
    PlannerDecoding,
    PlannerKey,
    PlannerModel,
    PlannerTimeout,
    PlannerURL,
    StopOnCtrlC,
    app,
    err,
    fail,
    gather_inputs,
    out,
    print_rows,
    report_failure,
    split_csv,
    user_errors,
)
from restora.imageio import DEFAULT_MAX_MEGAPIXELS

OUTPUT_SUFFIXES = (".png", ".trace.jsonl", ".html")
"""What ``restora run`` writes per image: the restored image, its trace and its report page."""


@app.command()
def run(
    inputs: Annotated[list[Path], typer.Argument(help="image files or folders of images")],
    outdir: Annotated[Path, typer.Option("--out", "-o", help="output folder")],
    max_steps: Annotated[int, typer.Option(min=0, help="tool calls allowed per image (rolled-back ones count)")] = 8,
    max_seconds: Annotated[float, typer.Option(min=1, help="time budget per image, seconds")] = 600.0,
    allow: Annotated[str | None, typer.Option(help="comma-separated tools the agent may use (default: all available; see `restora tools`)")] = None,
    max_megapixels: Annotated[float, typer.Option(help="refuse larger inputs")] = DEFAULT_MAX_MEGAPIXELS,
    planner: Annotated[str, typer.Option(help="heuristic (CPU default), vlm (OpenAI-compatible server, e.g. vLLM) or hf (in-process transformers)")] = "heuristic",
    planner_url: PlannerURL = None,
    planner_model: PlannerModel = None,
    planner_key: PlannerKey = None,
    planner_adapter: PlannerAdapter = None,
    planner_timeout: PlannerTimeout = 60.0,
    planner_decoding: PlannerDecoding = "auto",
    device: Annotated[str, typer.Option(help="where model tools run: auto (the GPU when there is one), cpu, cuda, cuda:1, ...")] = "auto",
    perception: Annotated[str | None, typer.Option("--perception", help="learned (the shipped network), classical, or a run folder of `restora train perception` (default: RESTORA_PERCEPTION, else restora's default)")] = None,
    guard: Annotated[bool, typer.Option("--guard/--no-guard", help="roll back steps whose residual looks like the picture's own content, not the degradation (the no-harm guard)")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress display and no closing table")] = False,
) -> None:
    """Restore images. Writes OUTDIR/<name>.png, <name>.trace.jsonl and <name>.html per input.

    <name> is the file's stem, or its path below a folder given as input (OUTDIR mirrors the tree).
    Ctrl-C lets the image being restored finish and skips the rest; a second Ctrl-C stops at once
    and removes that image's partial files. Either way the images finished are listed; exit 130.
    """
    from restora.agent import restore
    from restora.batch import Input, run_jobs
    from restora.config import DeviceConfig, RunConfig, env
    from restora.errors import RestoraError
    from restora.imageio import load_image, save_image_as, write_text_atomic
    from restora.model_zoo.loaded import apply as apply_device
    from restora.perception import backend
    from restora.planners.factory import PlannerSpec, planner_factory
    from restora.quality import QualityScorer
    from restora.report import render_report
    from restora.tools import ToolBox

    try:
        with user_errors():
            key = planner_key or env().planner_key or "EMPTY"
            spec = PlannerSpec(planner, url=planner_url, model=planner_model, adapter=planner_adapter, key=key, timeout=planner_timeout, decoding=planner_decoding)
            make_planner = planner_factory(spec)
            config = RunConfig(max_steps=max_steps, max_seconds=max_seconds, guard=guard, perception=perception)
            backend(config.perception)  # a bad name or model folder is an error before anything runs
            placed, _ = apply_device(DeviceConfig(device=device))
            names = split_csv(allow)
            toolbox = ToolBox(device=placed, allow=_known_tools(names))
            _check_usable(toolbox, names)
            items = gather_inputs(inputs)
        if not items:
            raise fail(f"no input images found in {', '.join(str(p) for p in inputs)}")
        scorer = QualityScorer()
    except KeyboardInterrupt:
        raise _interrupted([], 0, outdir) from None
    outdir.mkdir(parents=True, exist_ok=True)

    live = not quiet and err.is_terminal  # without a terminal: one line per image instead of a live display
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.fields[name]}"),
        BarColumn(),
        TextColumn("{task.fields[counter]}"),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err,
        disable=not live,
    )
    ctrl_c = StopOnCtrlC("Ctrl-C: stopping after the image being restored (Ctrl-C again to stop now)")

    def restore_one(item: Input) -> Finished:
        if ctrl_c.pressed:
            raise KeyboardInterrupt  # stop between images: the rest are not started
        started = time.perf_counter()
        tally = Tally(limit=max_steps)
        task_id = progress.add_task("loading", total=max(max_steps, 1), name=str(item.path), counter=tally.counter())

        def on_event(kind: str, data: dict) -> None:
            tally.on_event(kind, data)
            progress.update(task_id, completed=tally.calls, counter=tally.counter(), description=tally.status)

        target, trace, page = (item.output(outdir, s) for s in OUTPUT_SUFFIXES)
        written: list[Path] = []
        try:
            if target.resolve() == item.path.resolve():
                raise RestoraError(f"output {target} would overwrite the input; choose another --out")
            loaded = load_image(item.path, max_megapixels=max_megapixels)
            on_event("loaded", {})
            result = restore(
                loaded.pixels,
                config=config,
                planner=make_planner(),
                toolbox=toolbox,
                scorer=scorer,
                trace_path=trace,
                source=str(item.path),
                notes=loaded.notes,
                on_event=on_event,
            )
            written.append(trace)
            save_image_as(target, result.image, like=loaded, fmt="png")  # EXIF, ICC and XMP carried over
            written.append(target)
            write_text_atomic(page, render_report(result, title=item.path.name))
            written.append(page)
        except KeyboardInterrupt:
            # stopped at once: this image's files go (the trace's .part too), nothing half-made stays
            for p in [*written, trace.with_name(trace.name + ".part")]:
                p.unlink(missing_ok=True)
            raise
        finally:
            progress.remove_task(task_id)
        tally.finish(result.tool_calls, len(result.accepted))
        return Finished(
            path=item.path,
            found=[n for n, f in result.state.get("input_report", {}).get("findings", {}).items() if f.get("present")],
            kept=list(result.accepted),
            tool_calls=result.tool_calls,
            seconds=time.perf_counter() - started,  # loading and writing included
            output=target,
        )

    done: list[Any] = []

    def on_done(d: Any) -> None:
        done.append(d)
        progress.update(overall, advance=1, counter=f"{len(done)}/{len(items)} images")
        if quiet:
            return
        line = progress_line(len(done), len(items), d.job[0].path, d.value, d.error)
        if live:
            progress.console.print(line, highlight=False, markup=False, soft_wrap=True)
        else:
            err.print(line, highlight=False, markup=False, soft_wrap=True)

    interrupted = False
    try:
        with progress, ctrl_c:
            overall = progress.add_task("", total=len(items), name="images", counter=f"0/{len(items)} images")
            run_jobs(restore_one, [(item,) for item in items], on_done=on_done)
    except KeyboardInterrupt:
        interrupted = True
    interrupted = interrupted or (ctrl_c.pressed and len(done) < len(items))

    finished = [d.value for d in done if d.ok]
    if finished and not quiet:
        print_rows("restora run", SUMMARY_HEADER, summary_rows(finished), wrap=["found", "done", "output"])
        out.print(f"outputs in {outdir}: <name>.png (restored), <name>.html (report page), <name>.trace.jsonl (trace)", highlight=False, soft_wrap=True)
    for d in done:
        if not d.ok:
            report_failure(d.job[0].path, d.error or "")
    if interrupted:
        raise _interrupted(finished, len(items), outdir)
    if any(not d.ok for d in done):
        raise typer.Exit(1)


@dataclass
class Tally:
    """One image's progress as the display shows it: the tool calls made (counted from the
    agent's events, one per ``decide``), against the step limit while it runs, and what was kept.

    Examples:
        >>> t = Tally(limit=8)
        >>> t.on_event("decide", {"decision": "accept", "action": {"tool": "denoise_nlm"}})
        >>> t.counter()
        '1/8 tool calls'
        >>> t.finish(tool_calls=1, kept=1)
        >>> t.counter()
        '1 tool call, 1 kept'
    """

    limit: int
    calls: int = 0
    kept: int | None = None  # set by finish()
    status: str = "loading"

    def on_event(self, kind: str, data: dict[str, Any]) -> None:
        """Follow one agent event (``perceived``, ``plan``, ``decide``, ``rollback``, ``stop``)."""
        tool = (data.get("action") or {}).get("tool", "")
        if kind == "loaded":
            self.status = "perceiving"
        elif kind == "perceived":
            self.status = "planning"
        elif kind == "plan":
            self.status = f"running {tool}"
        elif kind == "decide":
            self.calls += 1
            self.status = f"{data.get('decision', '')} {tool}".strip()
        elif kind == "rollback":
            self.status = f"rolled back {tool}".strip()
        elif kind == "stop":
            self.status = "finishing"

    def finish(self, tool_calls: int, kept: int) -> None:
        """The image is done: the counts become the run's own (the trace's) figures."""
        self.calls, self.kept, self.status = tool_calls, kept, "done"

    def counter(self) -> str:
        if self.kept is None:
            return f"{self.calls}/{self.limit} tool calls"
        return f"{self.calls} tool call{'' if self.calls == 1 else 's'}, {self.kept} kept"


@dataclass
class Finished:
    """One restored image, as the closing table shows it."""

    path: Path
    found: list[str] = field(default_factory=list)  # degradations perception found in the input
    kept: list[str] = field(default_factory=list)  # tools whose steps were kept, in order
    tool_calls: int = 0
    seconds: float = 0.0  # wall time for the image: loading, restoring, writing
    output: Path = Path()


SUMMARY_HEADER = ["image", "found", "done", "tool calls", "time", "output"]


def summary_rows(finished: list[Finished]) -> list[list[str]]:
    """The closing table's rows: image, found, done (kept steps), tool calls, time, output path.

    Examples:
        >>> summary_rows([Finished(Path("a.jpg"), ["noise"], ["denoise_nlm"], 2, 3.14, Path("out/a.png"))])
        [['a.jpg', 'noise', 'denoise_nlm', '2', '3.1s', 'out/a.png']]
    """
    return [
        [str(f.path), ", ".join(f.found) or "nothing", ", ".join(f.kept) or "nothing kept", str(f.tool_calls), f"{f.seconds:.1f}s", str(f.output)]
        for f in finished
    ]


def progress_line(n: int, total: int, path: Path, finished: Finished | None, error: str | None) -> str:
    """One line per image as it ends (above the live display, or alone without a terminal).

    Examples:
        >>> progress_line(1, 3, Path("a.jpg"), Finished(Path("a.jpg"), ["noise"], ["denoise_nlm"], 2, 3.14, Path("out/a.png")), None)
        '[1/3] a.jpg: 2 tool calls, 1 kept, 3.1s -> out/a.png'
    """
    if finished is None:
        return f"[{n}/{total}] {path}: failed"
    tally = Tally(limit=0)
    tally.finish(finished.tool_calls, len(finished.kept))
    return f"[{n}/{total}] {path}: {tally.counter()}, {finished.seconds:.1f}s -> {finished.output}"


def _interrupted(finished: list[Finished], total: int, outdir: Path) -> typer.Exit:
    """The message after Ctrl-C, and exit code 130."""
    if not total:
        line = "interrupted before any image started"
    else:
        line = f"interrupted: {len(finished)} of {total} images finished"
        if finished:
            line += f" ({', '.join(str(f.path) for f in finished)}; outputs in {outdir})"
    err.print(line, highlight=False, markup=False, soft_wrap=True)
    return typer.Exit(130)


def _known_tools(names: list[str] | None) -> list[str] | None:
    """``names`` when every one is a registered tool; else an error naming the known tools."""
    from restora.errors import UnknownToolError
    from restora.tools.registry import get_tool, tool_names

    for name in names or []:
        try:
            get_tool(name)
        except UnknownToolError as e:
            raise UnknownToolError(f"--allow: {e.args[0].removesuffix(' (see `restora tools`)')}; known tools: {', '.join(tool_names())}") from None
    return names


def _check_usable(toolbox: Any, names: list[str] | None) -> None:
    """Every tool ``--allow`` names can run here: its weights are present and, when it needs an
    accelerator, there is one; else an error saying how to make it available."""
    from restora.errors import ToolError
    from restora.tools import get_tool

    usable = toolbox.catalogue()
    problems = []
    for name in names or []:
        if name in usable:
            continue
        reason = get_tool(name).availability()
        if reason is not None:
            problems.append(f"{name} is not available here: {reason}")
        else:
            problems.append(f"{name} needs a GPU and this run uses {toolbox.device}; pass --device cuda on a machine with one")
    if problems:
        raise ToolError("--allow: " + " ".join(problems))

