"""``restora run``: restore a few images with the agent.

Examples:
    restora run photo.jpg -o out/                # restore, write out/photo.png, .trace.jsonl, .html
    restora run photos/ -o out/ --max-steps 6    # a whole folder (out/ mirrors it); one line per failed input
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from restora.cli.common import app, err, fail, out, report_failure, split_csv, user_errors
from restora.imageio import DEFAULT_MAX_MEGAPIXELS


@app.command()
def run(
    inputs: Annotated[list[Path], typer.Argument(help="image files or folders of images")],
    outdir: Annotated[Path, typer.Option("--out", "-o", help="output folder")],
    max_steps: Annotated[int, typer.Option(min=0, help="tool calls allowed per image (rolled-back ones count)")] = 8,
    max_seconds: Annotated[float, typer.Option(min=1, help="time budget per image, seconds")] = 600.0,
    allow: Annotated[str | None, typer.Option(help="comma-separated tools the agent may use (default: all)")] = None,
    max_megapixels: Annotated[float, typer.Option(help="refuse larger inputs")] = DEFAULT_MAX_MEGAPIXELS,
    planner: Annotated[str, typer.Option(help="heuristic (CPU default), vlm (OpenAI-compatible server, e.g. vLLM) or hf (in-process transformers)")] = "heuristic",
    planner_url: Annotated[str | None, typer.Option(help="vlm: the server's base URL, e.g. http://127.0.0.1:8000/v1")] = None,
    planner_model: Annotated[str | None, typer.Option(help="vlm: the served model name; hf: a local checkpoint folder")] = None,
    planner_key: Annotated[str | None, typer.Option(help="vlm: API key (default: $RESTORA_PLANNER_KEY, else none)")] = None,
    planner_timeout: Annotated[float, typer.Option(min=1, help="vlm: seconds per request")] = 60.0,
    device: Annotated[str, typer.Option(help="where model tools run: auto (the GPU when there is one), cpu, cuda, cuda:1, ...")] = "auto",
    perception: Annotated[str | None, typer.Option("--perception", help="learned (the shipped network), classical, or a run folder of `restora train perception` (default: RESTORA_PERCEPTION, else restora's default)")] = None,
    guard: Annotated[bool, typer.Option("--guard/--no-guard", help="roll back steps whose residual looks like the picture's own content, not the degradation (the no-harm guard)")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress display")] = False,
) -> None:
    """Restore images. Writes OUTDIR/<name>.png, <name>.trace.jsonl and <name>.html per input.

    <name> is the file's stem, or its path below a folder given as input (OUTDIR mirrors the tree).
    """
    from restora.agent import restore
    from restora.batch import Input, expand_inputs, run_jobs
    from restora.config import DeviceConfig, RunConfig, env
    from restora.errors import RestoraError
    from restora.imageio import load_image, save_image, write_text_atomic
    from restora.model_zoo.loaded import apply as apply_device
    from restora.quality import QualityScorer
    from restora.report import render_report
    from restora.tools import ToolBox

    with user_errors():
        key = planner_key or env().planner_key or "EMPTY"
        make_planner = _planner_factory(planner, planner_url, planner_model, key, planner_timeout)
        config = RunConfig(max_steps=max_steps, max_seconds=max_seconds, guard=guard, perception=perception)
        from restora.perception import backend

        backend(config.perception)  # a bad name or model folder is an error before anything runs
        placed, _ = apply_device(DeviceConfig(device=device))
        toolbox = ToolBox(device=placed, allow=split_csv(allow))
        items = expand_inputs(inputs)
    if not items:
        raise fail(f"no input images found in {', '.join(str(p) for p in inputs)}")
    scorer = QualityScorer()
    outdir.mkdir(parents=True, exist_ok=True)
    summary: list[tuple[str, str, int, float, str]] = []

    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.fields[name]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err,
        disable=quiet,
        transient=False,
    )

    def restore_one(item: Input) -> None:
        task_id = progress.add_task("loading", total=max_steps, name=item.path.name)

        def on_event(kind: str, data: dict) -> None:
            if kind == "plan":
                progress.update(task_id, description=f"running {data['action']['tool']}")
            elif kind == "decide":
                progress.update(task_id, advance=1, description=f"{data['decision']} {data['action']['tool']}")
            elif kind == "stop":
                progress.update(task_id, description=f"stop: {data['reason']}")

        try:
            target = item.output(outdir, ".png")
            if target.resolve() == item.path.resolve():
                raise RestoraError(f"output {target} would overwrite the input; choose another --out")
            loaded = load_image(item.path, max_megapixels=max_megapixels)
            progress.update(task_id, description="perceiving")
            result = restore(
                loaded.pixels,
                config=config,
                planner=make_planner(),
                toolbox=toolbox,
                scorer=scorer,
                trace_path=item.output(outdir, ".trace.jsonl"),
                source=str(item.path),
                notes=loaded.notes,
                on_event=on_event,
            )
            save_image(target, result.image, like=loaded)
            write_text_atomic(item.output(outdir, ".html"), render_report(result, title=item.path.name))
        except BaseException:
            progress.update(task_id, description="[red]failed")
            raise
        summary.append((item.name.as_posix(), ", ".join(result.accepted) or "-", result.tool_calls, result.seconds, result.stop_reason))
        progress.update(task_id, completed=max_steps, description=f"done ({len(result.accepted)} kept)")

    with progress:
        overall = progress.add_task("", total=len(items), name="images")
        done = run_jobs(restore_one, [(item,) for item in items], on_done=lambda _: progress.update(overall, advance=1))
    failures = [(d.job[0].path, d.error) for d in done if not d.ok]

    if summary and not quiet:
        table = Table(title="restora run", show_lines=False)
        for col in ("input", "kept steps", "tool calls", "seconds", "stopped because"):
            table.add_column(col)
        for name, kept, calls, secs, why in summary:
            table.add_row(name, kept, str(calls), f"{secs:.1f}", why)
        out.print(table)
    for path, reason in failures:
        report_failure(path, reason or "")
    if failures:
        raise typer.Exit(1)


def _planner_factory(kind: str, url: str | None, model: str | None, key: str, timeout: float):
    """A function making a fresh planner per image (planners keep per-image caches)."""
    from restora.planners import HeuristicPlanner

    if kind == "heuristic":
        return HeuristicPlanner
    if kind == "vlm":
        if not url or not model:
            raise ValueError("--planner vlm needs --planner-url and --planner-model")
        from restora.planners.vlm import OpenAIBackend, VLMPlanner

        backend = OpenAIBackend(url, model=model, api_key=key, timeout=timeout)
        return lambda: VLMPlanner(backend)
    if kind == "hf":
        if not model or not Path(model).is_dir():
            raise ValueError("--planner hf needs --planner-model pointing at a local checkpoint folder")
        from restora.planners.vlm import TransformersBackend, VLMPlanner

        backend = TransformersBackend(model)
        return lambda: VLMPlanner(backend)
    raise ValueError(f"unknown planner {kind!r} (available: heuristic, vlm, hf)")
