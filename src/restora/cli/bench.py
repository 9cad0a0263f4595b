"""``restora bench mio`` and ``restora bench real`` (``../shared/BENCHMARK.md``).

Examples:
    restora bench mio --clean ../shared/data/clean/kodak24 --out out/bench --size 128 --limit 8
    restora bench mio --clean ../shared/data/clean/kodak24 --out out/bench-hf --size 128 --limit 8 \
        --strategies agent --planner hf --planner-model out/tiny-planner --planner-adapter runs/planner-sft
    restora bench real --data ../shared/data --out out/real
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from restora.cli.common import (
    PlannerAdapter,
    PlannerDecoding,
    PlannerKey,
    PlannerModel,
    PlannerTimeout,
    PlannerURL,
    advance,
    app,
    command_line,
    out,
    progress_bar,
    report_failure,
    split_csv,
    user_errors,
)


bench_app = typer.Typer(help="Benchmarks per ../shared/BENCHMARK.md: results.json and results.md.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


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
    planner: Annotated[str, typer.Option(help="heuristic (default), hf (in-process transformers) or vlm (an OpenAI-compatible server): a named planner adds the strategy agent_<name>, the agent with it, run beside agent (the heuristic) on the same cases")] = "heuristic",
    planner_model: PlannerModel = None,
    planner_adapter: PlannerAdapter = None,
    planner_url: PlannerURL = None,
    planner_key: PlannerKey = None,
    planner_timeout: PlannerTimeout = 60.0,
    planner_decoding: PlannerDecoding = "auto",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress display")] = False,
) -> None:
    """Synthetic multi-degradation suite: every strategy on every clean crop x combination.

    Examples:
        restora bench mio --clean ../shared/data/clean/kodak24 --out out/bench --size 128 --limit 8
        restora bench mio --clean ../shared/data/clean/kodak24 --out out/hf --strategies agent --planner hf --planner-model out/tiny-planner
    """
    from restora.cases import parse_combos
    from restora.bench.mio import run_mio
    from restora.config import env
    from restora.planners.factory import PlannerSpec

    with user_errors():
        spec = PlannerSpec(
            planner, url=planner_url, model=planner_model, adapter=planner_adapter, key=planner_key or env().planner_key or "EMPTY",
            timeout=planner_timeout, decoding=planner_decoding,
        )
        spec.check()
        combo_list = parse_combos(combos)
        allow_list = split_csv(allow)
        if allow_list is not None:
            from restora.tools import ToolBox

            ToolBox(allow=allow_list)
    progress = progress_bar(quiet)
    with progress:
        task = progress.add_task("mio cases", total=None, last="")

        def on_case(res: dict) -> None:
            if "failed" in res:
                f = res["failed"]
                line = f"{f['image']} {f['combo']}: FAILED {f['error']}"
            else:
                agents = [r for r in res["rows"] if r["strategy"].startswith("agent")] or res["rows"][:1]
                line = f"{agents[0]['image']} {agents[0]['combo']}: " + ", ".join(f"{r['strategy']} {r['psnr']:.2f} dB" for r in agents)
            advance(progress, task, line, quiet, step=1)

        with user_errors():
            results = run_mio(
                [*clean, *(more_clean or [])],
                outdir,
                size=size,
                seed=seed,
                limit=limit,
                combos=combo_list,
                strategies=split_csv(strategies),
                max_steps=max_steps,
                workers=workers,
                allow=allow_list,
                cache=not no_cache,
                save_images=save_images,
                on_case=on_case,
                on_start=lambda n: progress.update(task, total=n),
                command=command_line(),
                planner=spec,
            )
    _print_bench_table(results)
    out.print(f"wrote {outdir / 'results.json'} and {outdir / 'results.md'} ({results['seconds']:.0f} s)", highlight=False)
    _exit_on_failures(results, lambda f: f"{f['image']} {f['combo']}")


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

    progress = progress_bar(quiet)
    with progress:
        task = progress.add_task("real images", total=None, last="")

        def on_case(rows: list) -> None:
            r = rows[-1]
            line = f"{r['suite']}/{r['set']}/{r['image']}"
            advance(progress, task, line, quiet, step=1)

        with user_errors():
            results = run_real(
                data,
                outdir,
                limit=limit,
                max_steps=max_steps,
                workers=workers,
                on_case=on_case,
                on_start=lambda n: progress.update(task, total=n),
                command=command_line(),
            )
    if not quiet:
        sys.stdout.write((outdir / "results.md").read_text())
    out.print(f"wrote {outdir / 'results.json'} and {outdir / 'results.md'} ({results['seconds']:.0f} s)", highlight=False)
    _exit_on_failures(results, lambda f: f"{f['suite']}/{f['set']}/{f['image']}")



def _exit_on_failures(results: dict, name) -> None:
    """Name each case that failed (the others are in the results) and exit 1 if any did."""
    for f in results.get("failures", []):
        report_failure(name(f), f["error"])
    if results.get("failures"):
        raise typer.Exit(1)


def _print_bench_table(results: dict) -> None:
    table = Table(title=f"restora bench {results['suite']}")
    for col in ("strategy", "planner", "PSNR", "SSIM", "rank %", "tool calls", "seconds"):
        table.add_column(col)
    for name, s in results["strategies"].items():
        o = s["overall"]

        def f(v, d=2):
            return "-" if v is None else f"{v:.{d}f}"

        table.add_row(name, s.get("planner", "-"), f(o["psnr"]), f(o["ssim"], 3), f(o["rank_pct"], 1), f(o["tool_calls"], 1), f(o["seconds"]))
    out.print(table)
