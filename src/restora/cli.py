"""The `restora` command line.

Examples:
    restora run photo.jpg -o out/                # restore, write out/photo.png, .trace.jsonl, .html
    restora run photos/ -o out/ --max-steps 6    # a whole folder; one line per failed input
    restora tools --json                         # the tool catalogue
    restora perceive photo.jpg --json            # what is wrong with an image
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never wait on a model hub from the CLI

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from restora.data import image_files
from restora.errors import RestoraError
from restora.imageio import (
    DEFAULT_MAX_MEGAPIXELS,
    load_image,
    save_image,
    write_text_atomic,
)

app = typer.Typer(
    help="restora: agentic image restoration (perceive, plan, restore, score, roll back).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)


def _expand(inputs: list[Path]) -> list[Path]:
    files: list[Path] = []
    for p in inputs:
        if p.is_dir():
            files.extend(image_files(p))
        else:
            files.append(p)
    return files


def _split_csv(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


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
    planner_key: Annotated[str, typer.Option(envvar="RESTORA_PLANNER_KEY", help="vlm: API key (default from $RESTORA_PLANNER_KEY)")] = "EMPTY",
    planner_timeout: Annotated[float, typer.Option(min=1, help="vlm: seconds per request")] = 60.0,
    device: Annotated[str, typer.Option(help="where model tools run: auto (the GPU when there is one), cpu, cuda, cuda:1, ...")] = "auto",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress display")] = False,
) -> None:
    """Restore images. Writes OUTDIR/<stem>.png, <stem>.trace.jsonl and <stem>.html per input."""
    from restora.agent import restore
    from restora.quality import QualityScorer
    from restora.report import render_report
    from restora.tools import ToolBox

    try:
        make_planner = _planner_factory(planner, planner_url, planner_model, planner_key, planner_timeout)
    except ValueError as e:
        err.print(f"[red]error:[/] {e}", highlight=False)
        raise typer.Exit(2) from None
    try:
        toolbox = ToolBox(device=_device(device), allow=_split_csv(allow))
    except RestoraError as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from None
    files = _expand(inputs)
    if not files:
        err.print("[red]error:[/] no input images found")
        raise typer.Exit(2)
    scorer = QualityScorer()
    outdir.mkdir(parents=True, exist_ok=True)
    failures: list[tuple[Path, str]] = []
    summary: list[tuple[str, str, int, float, str]] = []
    used_stems: set[str] = set()

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
    with progress:
        overall = progress.add_task("", total=len(files), name="images")
        for path in files:
            stem = _unique_stem(path, used_stems)
            task_id = progress.add_task("loading", total=max_steps, name=path.name)

            def on_event(kind: str, data: dict, _tid=task_id) -> None:
                if kind == "plan":
                    a = data["action"]
                    progress.update(_tid, description=f"running {a['tool']}")
                elif kind == "decide":
                    progress.update(_tid, advance=1, description=f"{data['decision']} {data['action']['tool']}")
                elif kind == "stop":
                    progress.update(_tid, description=f"stop: {data['reason']}")

            try:
                target = outdir / f"{stem}.png"
                if target.resolve() == path.resolve():
                    raise RestoraError(f"output {target} would overwrite the input; choose another --out")
                loaded = load_image(path, max_megapixels=max_megapixels)
                progress.update(task_id, description="perceiving")
                result = restore(
                    loaded.pixels,
                    planner=make_planner(),
                    toolbox=toolbox,
                    scorer=scorer,
                    max_steps=max_steps,
                    max_seconds=max_seconds,
                    trace_path=outdir / f"{stem}.trace.jsonl",
                    source=str(path),
                    notes=loaded.notes,
                    on_event=on_event,
                )
                save_image(target, result.image, like=loaded)
                write_text_atomic(outdir / f"{stem}.html", render_report(result, title=path.name))
                summary.append((path.name, ", ".join(result.accepted) or "-", result.tool_calls, result.seconds, result.stop_reason))
                progress.update(task_id, completed=max_steps, description=f"done ({len(result.accepted)} kept)")
            except RestoraError as e:
                failures.append((path, str(e)))
                progress.update(task_id, description="[red]failed")
            except Exception as e:  # noqa: BLE001 - the batch goes on; the failure is reported below
                failures.append((path, f"internal error: {type(e).__name__}: {e}"))
                progress.update(task_id, description="[red]failed")
            progress.update(overall, advance=1)

    if summary and not quiet:
        table = Table(title="restora run", show_lines=False)
        for col in ("input", "kept steps", "tool calls", "seconds", "stopped because"):
            table.add_column(col)
        for name, kept, calls, secs, why in summary:
            table.add_row(name, kept, str(calls), f"{secs:.1f}", why)
        out.print(table)
    for path, reason in failures:
        reason = reason.removeprefix(f"{path}: ")
        err.print(f"FAILED {path}: {reason}", highlight=False, soft_wrap=True)
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


def _unique_stem(path: Path, used: set[str]) -> str:
    stem = path.stem or "image"
    candidate, n = stem, 2
    while candidate in used:
        candidate, n = f"{stem}-{n}", n + 1
    used.add(candidate)
    return candidate


@app.command()
def tools(as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False) -> None:
    """List the tool catalogue."""
    from rich.markup import escape as rich_escape

    from restora.tools import list_tools

    catalogue = [cls.describe() for cls in list_tools().values()]
    if as_json:
        sys.stdout.write(json.dumps(catalogue, indent=2) + "\n")
        return
    table = Table(title="restora tools")
    for col in ("tool", "task", "kind", "cost", "available", "summary"):
        table.add_column(col)
    for d in catalogue:
        table.add_row(
            d["name"],
            d["task"] if len(d["tasks"]) == 1 else f"any of {len(d['tasks'])} (task param)",
            "learned" if d["learned"] else "classical",
            f"{d['cost']:g}",
            "yes" if d["available"] else f"no: {rich_escape(str(d['unavailable_reason']))}",
            rich_escape(d["summary"]),
        )
    out.print(table)


@app.command()
def perceive(
    images: Annotated[list[Path], typer.Argument(help="image files")],
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Say what is wrong with each image: presence and severity per degradation, with evidence."""
    from restora.perception import perceive as _perceive

    results = {}
    failed = False
    for path in images:
        try:
            report = _perceive(load_image(path).pixels)
        except RestoraError as e:
            err.print(f"FAILED {path}: {str(e).removeprefix(f'{path}: ')}", highlight=False, soft_wrap=True)
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


@app.command()
def degrade(
    clean: Annotated[Path, typer.Argument(help="a clean image")],
    dest: Annotated[Path, typer.Option("--out", "-o", help="output .png file, or a folder")],
    combo: Annotated[str, typer.Option(help="degradations joined by '+', e.g. rain+haze")],
    seed: Annotated[int, typer.Option(help="random seed: same seed, same bytes")] = 0,
    severity: Annotated[
        str | None,
        typer.Option(help="one severity in [0, 1] for all, or name=value pairs (rain=0.6,haze=0.3); default: drawn from the seed"),
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option("--option", help="a degradation's option as name.key=value, e.g. noise.model=granular, jpeg.model=web, rain.splashes=true (repeat)"),
    ] = None,
) -> None:
    """Make a degraded copy of a clean image (seeded); writes the image and a .json of its labels.

    Examples:
        restora degrade kodim01.png -o out/ --combo rain+haze --seed 0
        restora degrade kodim01.png -o out/k1_dark.png --combo dark+noise --severity dark=0.7,noise=0.3
        restora degrade kodim01.png -o out/ --combo noise+jpeg --option noise.model=granular --option jpeg.model=web
    """
    from restora.degrade import compose, parse_combo

    try:
        names = parse_combo(combo)
        severities = _parse_severities(severity, names)
        loaded = load_image(clean)
        options = _parse_options(option or [], names)
        image, labels = compose(loaded.pixels, names, seed=seed, severities=severities, options=options or None)
    except (RestoraError, ValueError, KeyError, TypeError) as e:
        err.print(f"[red]error:[/] {e}", highlight=False)
        raise typer.Exit(2) from None
    target = dest if dest.suffix.lower() == ".png" else dest / f"{clean.stem}_{'+'.join(names)}_s{seed}.png"
    save_image(target, image)
    meta = {"source": str(clean), "combo": names, "seed": seed, "options": options, "labels": labels}
    write_text_atomic(target.with_suffix(".json"), json.dumps(meta, indent=2, sort_keys=True) + "\n")
    out.print(f"{target}  " + ", ".join(f"{k} {v['severity']:.2f}" for k, v in labels.items()), highlight=False)


def _parse_options(items: list[str], names: list[str]) -> dict[str, dict]:
    options: dict[str, dict] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        name, dot, field = key.strip().partition(".")
        if not sep or not dot or not field:
            raise ValueError(f"--option {item!r}: expected name.key=value, e.g. noise.model=granular")
        if name not in names:
            raise ValueError(f"--option {item!r}: {name!r} is not in --combo {'+'.join(names)}")
        value: object = raw.strip()
        low = str(value).lower()
        if low in ("true", "false"):
            value = low == "true"
        else:
            try:
                value = float(low) if any(c in low for c in ".e") else int(low)
            except ValueError:
                pass
        options.setdefault(name, {})[field] = value
    return options


def _parse_severities(value: str | None, names: list[str]) -> dict[str, float] | None:
    if value is None:
        return None
    if "=" not in value:
        return {n: float(value) for n in names}
    pairs = dict(item.split("=", 1) for item in value.split(",") if item.strip())
    unknown = set(pairs) - set(names)
    if unknown:
        raise ValueError(f"--severity names {sorted(unknown)} are not in --combo {'+'.join(names)}")
    return {k: float(v) for k, v in pairs.items()}


bench_app = typer.Typer(help="Benchmarks per ../shared/BENCHMARK.md: results.json and results.md.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


def _bench_progress(quiet: bool) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[last]}"),
        console=err,
        disable=quiet,
    )


@bench_app.command("mio")
def bench_mio(
    clean: Annotated[list[Path], typer.Option("--clean", help="folder(s) of clean images: --clean A B, or --clean A --clean B")],
    outdir: Annotated[Path, typer.Option("--out", "-o", help="output folder (results.json, results.md)")],
    more_clean: Annotated[list[Path] | None, typer.Argument(hidden=True, help="more clean folders (after --clean A)")] = None,
    size: Annotated[int, typer.Option(min=32, help="centre crop side, px")] = 256,
    seed: Annotated[int, typer.Option(help="seed of the degradations")] = 0,
    limit: Annotated[int | None, typer.Option(min=1, help="first N clean images (sorted, folders in order)")] = None,
    combos: Annotated[str | None, typer.Option(help="comma-separated combinations (default: the 16 of groups A/B/C)")] = None,
    strategies: Annotated[str | None, typer.Option(help="comma-separated strategies (default: all)")] = None,
    max_steps: Annotated[int, typer.Option(min=1, help="tool executions per strategy and case")] = 4,
    workers: Annotated[int, typer.Option(min=1, help="cases run in parallel processes")] = 1,
    allow: Annotated[str | None, typer.Option(help="comma-separated tools (default: the whole library)")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="recompute every pipeline from the input (slow; for comparison)")] = False,
    save_images: Annotated[bool, typer.Option("--save-images", help="also write each case's input and outputs under OUT/cases/")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress display")] = False,
) -> None:
    """Synthetic multi-degradation suite: every strategy on every clean crop x combination.

    Examples:
        restora bench mio --clean ../shared/data/clean/kodak24 --out out/bench --size 128 --limit 8
    """
    from restora.cases import parse_combos
    from restora.bench.mio import run_mio

    try:
        combo_list = parse_combos(combos)
        allow_list = _split_csv(allow)
        if allow_list is not None:
            from restora.tools import ToolBox

            ToolBox(allow=allow_list)
    except (RestoraError, ValueError) as e:
        err.print(f"[red]error:[/] {e}", highlight=False)
        raise typer.Exit(2) from None
    progress = _bench_progress(quiet)
    with progress:
        task = progress.add_task("mio cases", total=None, last="")

        def on_case(res: dict) -> None:
            agent = next((r for r in res["rows"] if r["strategy"] == "agent"), res["rows"][0])
            line = f"{agent['image']} {agent['combo']}: {agent['strategy']} {agent['psnr']:.2f} dB"
            _advance(progress, task, line, quiet, advance=1)

        try:
            results = run_mio(
                [*clean, *(more_clean or [])],
                outdir,
                size=size,
                seed=seed,
                limit=limit,
                combos=combo_list,
                strategies=_split_csv(strategies),
                max_steps=max_steps,
                workers=workers,
                allow=allow_list,
                cache=not no_cache,
                save_images=save_images,
                on_case=on_case,
                on_start=lambda n: progress.update(task, total=n),
                command=_command_line(),
            )
        except (RestoraError, ValueError, FileNotFoundError) as e:
            err.print(f"[red]error:[/] {e}", highlight=False)
            raise typer.Exit(2) from None
    _print_bench_table(results)
    out.print(f"wrote {outdir / 'results.json'} and {outdir / 'results.md'} ({results['seconds']:.0f} s)", highlight=False)


@bench_app.command("real")
def bench_real(
    data: Annotated[Path, typer.Option("--data", help="the data folder (real_gt/, real_nogt/, clean/ inside)")],
    outdir: Annotated[Path, typer.Option("--out", "-o", help="output folder (results.json, results.md)")],
    limit: Annotated[int | None, typer.Option(min=1, help="first N images of each set")] = None,
    max_steps: Annotated[int, typer.Option(min=1, help="the agent's tool calls per image")] = 8,
    workers: Annotated[int, typer.Option(min=1, help="images run in parallel processes")] = 1,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress display")] = False,
) -> None:
    """Real degradations: PSNR/SSIM on real pairs, NR scores and no-harm rate without ground truth,
    and whether clean photos come back unchanged.

    Examples:
        restora bench real --data ../shared/data --out out/real
    """
    from restora.bench.real import run_real

    progress = _bench_progress(quiet)
    with progress:
        task = progress.add_task("real images", total=None, last="")

        def on_case(rows: list) -> None:
            r = rows[-1]
            line = f"{r['suite']}/{r['set']}/{r['image']}"
            _advance(progress, task, line, quiet, advance=1)

        try:
            results = run_real(
                data,
                outdir,
                limit=limit,
                max_steps=max_steps,
                workers=workers,
                on_case=on_case,
                on_start=lambda n: progress.update(task, total=n),
                command=_command_line(),
            )
        except (RestoraError, ValueError, FileNotFoundError) as e:
            err.print(f"[red]error:[/] {e}", highlight=False)
            raise typer.Exit(2) from None
    if not quiet:
        sys.stdout.write((outdir / "results.md").read_text())
    out.print(f"wrote {outdir / 'results.json'} and {outdir / 'results.md'} ({results['seconds']:.0f} s)", highlight=False)


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

    progress = _bench_progress(quiet)
    with progress:
        task = progress.add_task("trajectories", total=n, last="")

        def on_sample(rec: dict) -> None:
            line = f"{rec['id']} {rec['photo']} {rec['combo'] or 'clean'}: {len(rec['trajectories'])} trajectories, best {'+'.join(rec['teacher']['best_plan']) or 'nothing'}"
            _advance(progress, task, line, quiet, advance=len(rec["trajectories"]))

        try:
            summary = run_synth(
                [*clean, *(more_clean or [])],
                outdir,
                n=n,
                seed=seed,
                size=size,
                workers=workers,
                on_sample=on_sample,
                command=_command_line(),
            )
        except (RestoraError, ValueError, FileNotFoundError) as e:
            err.print(f"[red]error:[/] {e}", highlight=False)
            raise typer.Exit(2) from None
    out.print(
        f"{summary['trajectories']} trajectories from {summary['samples']} samples in {outdir} "
        f"({summary['samples_this_run']} new samples, {summary['seconds_this_run']:.0f} s)",
        highlight=False,
    )


zoo_app = typer.Typer(help="Model files: cards, and tiny random-weight checkpoints for tests.", no_args_is_help=True)
app.add_typer(zoo_app, name="zoo")


@zoo_app.command("list")
def zoo_list(as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False) -> None:
    """Every model card: kind, tasks, source, licence, memory, and whether its files are here."""
    from rich.markup import escape as rich_escape

    from restora.model_zoo import availability, card_dir, list_cards

    rows = []
    for card in list_cards():
        reason = availability(card)
        folder, origin = card_dir(card)
        rows.append(
            {
                **card.model_dump(mode="json"),
                "available": reason is None,
                "where": str(folder) if folder is not None else None,
                "found_in": origin if folder is not None else None,
                "unavailable_reason": reason,
            }
        )
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="restora model cards")
    for col in ("card", "kind", "tasks / tool", "source", "licence", "memory", "here"):
        table.add_column(col, overflow="fold")
    for r in rows:
        tasks = r["tool"] or ("all tasks" if len(r["tasks"]) > 2 else ", ".join(r["tasks"] or [r["task"]]))
        source = r["package"] or r["repo"] or ("/".join(r["url"].split("/")[3:5]) if r["url"] else "local")
        here = r["found_in"] if r["available"] else "no"
        licence = rich_escape(r["licence"].split(" (")[0])
        table.add_row(r["id"], r["kind"], tasks, source, licence, f"{r['memory_mb'] / 1024:.1f} GB", here)
    out.print(table)


@zoo_app.command("fetch")
def zoo_fetch(
    card: Annotated[str, typer.Argument(help="model card id (see `restora zoo list`)")],
    to: Annotated[Path | None, typer.Option(help="also copy the checked files to TO/<card>/ with a lock file")] = None,
) -> None:
    """Download a card's files (online machines), check them, and say where they are."""
    from restora.errors import ChecksumError, WeightsNotFoundError
    from restora.model_zoo import fetch

    try:
        resolved = fetch(card, to=to)
    except (WeightsNotFoundError, ChecksumError) as e:
        err.print(f"[red]error:[/] {e}", highlight=False)
        raise typer.Exit(2) from None
    size = sum(p.stat().st_size for p in resolved.files.values())
    out.print(f"{resolved.card.id}: {len(resolved.files)} files, {size / 2**20:.1f} MiB, checked, in {resolved.folder}", highlight=False)


@zoo_app.command("pin")
def zoo_pin(card: Annotated[str, typer.Argument(help="model card id whose files you placed yourself")]) -> None:
    """Trust the files you put under $RESTORA_ZOO/<card>/ yourself: write their sha256 to a lock
    file, which later runs check them against."""
    from restora.errors import WeightsNotFoundError
    from restora.model_zoo import card_dir, get_card, write_lock

    try:
        c = get_card(card)
        folder, origin = card_dir(c)
    except WeightsNotFoundError as e:
        err.print(f"[red]error:[/] {e}", highlight=False)
        raise typer.Exit(2) from None
    if folder is None or origin != "zoo" or not c.files or not all((folder / n).is_file() for n in c.files):
        err.print(f"[red]error:[/] put {', '.join(c.files) or 'the files'} under $RESTORA_ZOO/{c.id}/ first", highlight=False)
        raise typer.Exit(2)
    path = write_lock(folder, c)
    out.print(f"wrote {path}", highlight=False)


@zoo_app.command("tiny")
def zoo_tiny(
    outdir: Annotated[Path, typer.Argument(help="zoo folder to write the tiny cards into (use it as RESTORA_ZOO)")],
    seed: Annotated[int, typer.Option(help="weights seed: same seed, same weights")] = 0,
    overwrite: Annotated[bool, typer.Option(help="replace existing tiny card folders")] = False,
) -> None:
    """Write tiny random-weight checkpoints with their cards: a FLUX.1 Kontext DiT pipeline, a LoRA
    adapter for it and a spandrel NAFNet. With RESTORA_ZOO=OUTDIR, `restora run IMG --allow
    dit_restore` runs the real DiT path on a CPU."""
    from restora.model_zoo.tiny import write_tiny_zoo

    try:
        cards = write_tiny_zoo(outdir, seed=seed, overwrite=overwrite)
    except (ValueError, FileExistsError) as e:
        err.print(f"[red]error:[/] {e}", highlight=False)
        raise typer.Exit(2) from None
    for card in cards.values():
        out.print(f"wrote {outdir / card.id} ({card.kind}, {len(card.files)} files)", highlight=False)
    out.print(f"use it with: RESTORA_ZOO={outdir} restora run IMG --allow dit_restore", highlight=False)


@zoo_app.command("tiny-planner")
def zoo_tiny_planner(
    outdir: Annotated[Path, typer.Argument(help="folder to write the checkpoint into")],
    seed: Annotated[int, typer.Option(help="weights seed: same seed, same weights")] = 0,
    dtype: Annotated[str, typer.Option(help="float32 (CPU, vLLM --dtype float32) or bfloat16")] = "float32",
    overwrite: Annotated[bool, typer.Option(help="replace an existing folder")] = False,
) -> None:
    """Write a tiny random-weight Qwen2.5-VL planner (real Qwen vocabulary, processor files) that
    vLLM and transformers load: for tests and for trying the VLM path on a CPU."""
    from restora.model_zoo.tiny.planner import build_tiny_planner

    try:
        path = build_tiny_planner(outdir, seed=seed, dtype=dtype, overwrite=overwrite)
    except (ValueError, FileExistsError) as e:
        err.print(f"[red]error:[/] {e}", highlight=False)
        raise typer.Exit(2) from None
    out.print(f"wrote {path}", highlight=False)


def _device(device: str) -> str:
    """``auto``: the GPU when torch sees one, else the CPU."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _command_line() -> str | None:
    """The restora command as typed (for results and dataset cards); None outside the console script."""
    return " ".join(["restora", *sys.argv[1:]]) if sys.argv and "restora" in sys.argv[0] else None


def _advance(progress: Progress, task, line: str, quiet: bool, advance: int = 1) -> None:
    """Advance the bar showing ``line``; without a terminal (CI logs, nohup) the live bar does not
    draw, so print one line per item instead."""
    progress.update(task, advance=advance, last=line)
    if quiet or err.is_terminal:
        return
    t = progress.tasks[task]
    err.print(f"[{t.completed:.0f}/{t.total or 0:.0f} {t.elapsed or 0:.0f}s] {line}", highlight=False, markup=False)


def _print_bench_table(results: dict) -> None:
    table = Table(title=f"restora bench {results['suite']}")
    for col in ("strategy", "PSNR", "SSIM", "rank %", "tool calls", "seconds"):
        table.add_column(col)
    for name, s in results["strategies"].items():
        o = s["overall"]

        def f(v, d=2):
            return "-" if v is None else f"{v:.{d}f}"

        table.add_row(name, f(o["psnr"]), f(o["ssim"], 3), f(o["rank_pct"], 1), f(o["tool_calls"], 1), f(o["seconds"]))
    out.print(table)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
