"""Suite ``mio``: synthetic multi-degradation cases from clean photos (BENCHMARK.md).

Work is split by case (one clean crop x one combination); every strategy of a case runs in the
same process so that they share its prefix cache. ``workers > 1`` runs cases in separate
processes (spawned, one thread each for torch and OpenCV, so the processes do not fight over
cores); results are sorted afterwards, so the output does not depend on scheduling.

With a named planner (``planner=PlannerSpec("hf", model=..., adapter=...)``) the strategy
``agent_hf`` runs the agent with it beside ``agent`` (the heuristic planner) on the same cases;
rows of the agent strategies name their planner (``planner``) and count its decisions, fallbacks to
the heuristic and constrained replies; ``results.json`` describes the planner (``planner``).

Examples:
    >>> from restora.bench import run_mio
    >>> results = run_mio([Path("photos")], Path("out/bench"), size=128, limit=2)   # doctest: +SKIP
    >>> results["strategies"]["agent"]["overall"]["psnr"]                          # doctest: +SKIP
    24.3
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from restora.cases import (
    COMBOS,
    GROUPS,
    CleanImage,
    clean_images,
    group_of,
    load_clean,
    make_case,
)
from restora.quality.fidelity import psnr, rank_pct, ssim
from restora.batch import Done, run_jobs
from restora.batch.workers import process_tools
from restora.bench.strategies import EXTRA_STRATEGIES, STRATEGIES, CaseRunner, planner_strategy
from restora.planners.factory import PlannerSpec, planner_factory

VERSION = 1
METRICS = ("psnr", "ssim", "tool_calls", "seconds", "rank_pct")
NR_METRICS = ("niqe", "brisque", "piqe")
PLANNER_FIELDS = ("planner", "planner_decisions", "planner_fallbacks", "planner_constrained")
"""What an agent strategy's row says about its planner."""
_FACTORIES: dict[PlannerSpec, Any] = {}  # per process: the named planner's factory (its model loaded once)


def _factory(spec: PlannerSpec) -> Any:
    if spec not in _FACTORIES:
        _FACTORIES[spec] = planner_factory(spec)
    return _FACTORIES[spec]


def run_case(
    image: CleanImage,
    combo: str,
    *,
    size: int,
    seed: int,
    strategies: list[str],
    max_steps: int,
    allow: list[str] | None = None,
    cache: bool = True,
    save_dir: Path | None = None,
    planner: PlannerSpec | None = None,
) -> dict[str, Any]:
    """All ``strategies`` on one case; returns its rows and the prefix cache's counters.
    ``planner``: the named planner of the strategy ``agent_<name>``."""
    toolbox, scorer = process_tools(allow)
    clean = load_clean(image.path, size)
    case = make_case(clean, image.name, combo, seed)
    named = None if planner is None or planner_strategy(planner.name) is None else (planner.name, _factory(planner))
    runner = CaseRunner(case, toolbox, scorer, max_steps=max_steps, cache=cache, planner=named)
    outcomes = {}
    # the oracle's enumeration first: rank_pct needs it, and it fills the cache for the rest
    # (without the oracle there is no enumeration and rank_pct is None)
    order = sorted(strategies, key=lambda s: s != "oracle")
    for name in order:
        outcomes[name] = runner.run(name)
    rows = []
    for name in strategies:
        o = outcomes[name]
        value = psnr(o.image, case.clean)
        nr = scorer.score(o.image)
        row = {
            "image": case.image,
            "combo": case.combo,
            "group": case.group,
            "strategy": name,
            "psnr": round(value, 4),
            "ssim": round(ssim(o.image, case.clean), 4),
            "tool_calls": int(o.tool_calls),
            "seconds": round(o.seconds, 4),
            "rank_pct": round(rank_pct(value, runner.oracle_psnrs), 2) if runner.oracle_psnrs else None,
            "plan": list(o.plan),
            **{m: (None if nr.raw.get(m) is None else round(float(nr.raw[m]), 4)) for m in NR_METRICS},
        }
        for k in ("stop_reason", "failed", "pipelines", *PLANNER_FIELDS):
            if k in o.extra:
                row[k] = o.extra[k]
        rows.append(row)
        if save_dir is not None:
            _save(save_dir, case, name, o)
    if save_dir is not None:
        _save_input(save_dir, case)
        tiles = [("clean", case.clean), (f"input {psnr(case.degraded, case.clean):.2f} dB", case.degraded)]
        tiles += [(f"{r['strategy']} {r['psnr']:.2f} dB", outcomes[r["strategy"]].image) for r in rows]
        from restora.imageio import save_image

        save_image(_case_dir(save_dir, case.image, case.combo) / "sheet.png", contact_sheet(tiles))
    p = runner.prefix
    return {
        "rows": rows,
        "cache": {
            "executions": p.executions,
            "requests": p.requests,
            "seconds": {"work": round(p.work_seconds, 4), "requested": round(p.requested_seconds, 4)},
        },
        "labels": case.labels,
    }


def contact_sheet(tiles: list[tuple[str, np.ndarray]], columns: int = 5) -> np.ndarray:
    """Labelled tiles in a grid (each resized to the first tile's size), float32 RGB in [0, 1]."""
    import cv2

    h, w = tiles[0][1].shape[:2]
    bar = max(14, h // 10)
    cells = []
    for label, img in tiles:
        img = img if img.shape[:2] == (h, w) else cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        cell = np.full((h + bar, w, 3), 255, np.uint8)
        cell[bar:] = np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)
        cv2.putText(cell, label, (3, int(bar * 0.75)), cv2.FONT_HERSHEY_SIMPLEX, bar / 30.0, (0, 0, 0), 1, cv2.LINE_AA)
        cells.append(cell.astype(np.float32) / 255.0)
    while len(cells) % columns:
        cells.append(np.ones_like(cells[0]))
    rows = [np.concatenate(cells[i : i + columns], axis=1) for i in range(0, len(cells), columns)]
    return np.concatenate(rows, axis=0)


def _case_dir(save_dir: Path, image: str, combo: str) -> Path:
    return save_dir / f"{Path(image).stem}__{combo}"


def _save(save_dir: Path, case: Any, strategy: str, outcome: Any) -> None:
    from restora.imageio import save_image

    d = _case_dir(save_dir, case.image, case.combo)
    d.mkdir(parents=True, exist_ok=True)
    save_image(d / f"{strategy}.png", outcome.image)


def _save_input(save_dir: Path, case: Any) -> None:
    import json

    from restora.imageio import save_image, write_text_atomic

    d = _case_dir(save_dir, case.image, case.combo)
    d.mkdir(parents=True, exist_ok=True)
    save_image(d / "clean.png", case.clean)
    save_image(d / "input.png", case.degraded)
    write_text_atomic(d / "labels.json", json.dumps(case.labels, indent=1, sort_keys=True) + "\n")


def run_mio(
    clean_dirs: list[Path],
    out: Path,
    *,
    size: int = 256,
    seed: int = 0,
    limit: int | None = None,
    combos: list[str] | None = None,
    strategies: list[str] | None = None,
    max_steps: int = 4,
    workers: int = 1,
    allow: list[str] | None = None,
    cache: bool = True,
    save_images: bool = False,
    on_case: Callable[[dict[str, Any]], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    command: str | None = None,
    planner: PlannerSpec | None = None,
) -> dict[str, Any]:
    """Run the ``mio`` suite; write ``out/results.json`` and ``out/results.md``; return the results.

    ``planner``: a named planner (not the heuristic) adds the strategy ``agent_<name>`` (the agent
    with it) when ``strategies`` does not list it already."""
    from restora.imageio import write_text_atomic

    planner = planner or PlannerSpec()
    planner.check()  # a missing checkpoint, adapter or server URL is an error before any case runs
    named = planner_strategy(planner.name)
    strategies = list(strategies or STRATEGIES)
    if named is not None and named not in strategies:
        strategies.append(named)
    known = _known_strategies(named)
    unknown = [s for s in strategies if s not in known]
    if unknown:
        other = [s for s in unknown if s.startswith("agent_")]
        hint = f"; {', '.join(other)} need(s) --planner {other[0].removeprefix('agent_')}" if other else ""
        raise ValueError(f"unknown strategies {unknown} (known: {', '.join(known)}){hint}")
    strategies = [s for s in known if s in strategies]  # canonical order
    combos = list(combos or COMBOS)
    if size < 32:
        raise ValueError(f"--size must be at least 32 (perception needs it), got {size}")
    images = clean_images([Path(d) for d in clean_dirs], limit)
    if not images:
        raise ValueError("no clean images selected")
    jobs = [(img, combo) for img in images for combo in combos]
    kwargs: dict[str, Any] = {
        "size": size, "seed": seed, "strategies": strategies, "max_steps": max_steps, "allow": allow, "cache": cache,
        "planner": planner if named is not None else None,
    }
    if save_images:
        kwargs["save_dir"] = Path(out) / "cases"
    if on_start:
        on_start(len(jobs))
    t0 = time.perf_counter()

    def finished(d: Done) -> None:
        if on_case is not None:
            on_case(d.value if d.ok else {"failed": {"image": d.job[0].name, "combo": d.job[1], "error": d.error}})

    outcome = run_jobs(partial(run_case, **kwargs), jobs, workers=workers, on_done=finished)
    seconds = time.perf_counter() - t0
    done = [(d.index, d.value) for d in outcome if d.ok]
    failures = [{"image": d.job[0].name, "combo": d.job[1], "error": d.error} for d in outcome if not d.ok]
    rows = [r for _, res in done for r in res["rows"]]
    results = summarize(rows, strategies, combos)
    cache_stats = {
        "enabled": cache,
        "executions": sum(res["cache"]["executions"] for _, res in done),
        "requests": sum(res["cache"]["requests"] for _, res in done),
        "seconds": {
            "work": round(sum(res["cache"]["seconds"]["work"] for _, res in done), 3),
            "requested": round(sum(res["cache"]["seconds"]["requested"] for _, res in done), 3),
        },
    }
    header = {
        "suite": "mio",
        "version": VERSION,
        "size": size,
        "seed": seed,
        "max_steps": max_steps,
        "images": len(images),
        "combos": combos,
        "clean": [str(d) for d in clean_dirs],
        "tools": sorted(process_tools(allow)[0].catalogue()),
        "planner": planner.describe(),
        "cache": cache_stats,
        "workers": workers,
        "seconds": round(seconds, 2),
    }
    if command:
        header["command"] = command
    if failures:  # cases that could not run (left out of every mean)
        header["failures"] = failures
    results = {**header, **results}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "results.json", dumps(results))
    write_text_atomic(out / "results.md", markdown(results))
    return results


def _known_strategies(named: str | None) -> tuple[str, ...]:
    """Every strategy this run can take, in the order results list them (``agent_<name>`` after ``agent``)."""
    known = list(STRATEGIES)
    if named is not None:
        known.insert(known.index("agent") + 1, named)
    return (*known, *EXTRA_STRATEGIES)


def dumps(results: dict[str, Any]) -> str:
    import json

    return json.dumps(results, indent=1, allow_nan=False) + "\n"


def _mean(values: list[float | None]) -> float | None:
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return round(float(np.mean(vals)), 4) if vals else None


def _means(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {m: _mean([r[m] for r in rows]) for m in METRICS}
    for m in NR_METRICS:
        v = _mean([r.get(m) for r in rows])
        if v is not None:
            out[m] = v
    out["cases"] = len(rows)
    return out


def summarize(rows: list[dict[str, Any]], strategies: list[str], combos: list[str]) -> dict[str, Any]:
    """``strategies`` (means overall, per group and per combination) and ``cases``."""
    out: dict[str, Any] = {}
    for s in strategies:
        mine = [r for r in rows if r["strategy"] == s]
        groups = {g: _means([r for r in mine if r["group"] == g]) for g in GROUPS if any(r["group"] == g for r in mine)}
        other = [r for r in mine if r["group"] == "-"]
        if other:
            groups["-"] = _means(other)
        out[s] = {
            "overall": _means(mine),
            "groups": groups,
            "combos": {c: _means([r for r in mine if r["combo"] == c]) for c in combos},
        }
        planners = sorted({str(r["planner"]) for r in mine if r.get("planner")})
        if planners:
            out[s]["planner"] = ", ".join(planners)
            decisions = sum(int(r.get("planner_decisions") or 0) for r in mine)
            out[s]["overall"].update(
                planner_decisions=decisions,
                planner_fallback_rate=round(sum(int(r.get("planner_fallbacks") or 0) for r in mine) / decisions, 4) if decisions else None,
                planner_constrained_rate=round(sum(int(r.get("planner_constrained") or 0) for r in mine) / decisions, 4) if decisions else None,
            )
    return {"strategies": out, "cases": rows}


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def markdown(results: dict[str, Any]) -> str:
    """A readable report of ``results``: overall, per group, per combination."""
    s = results["strategies"]
    names = list(s)
    lines = [
        f"# restora bench {results['suite']}",
        "",
        (
            f"{results['images']} clean images x {len(results.get('combos', []))} combinations = "
            f"{len(results['cases']) // max(1, len(names))} cases; size {results['size']}, seed {results['seed']}, "
            f"max steps {results['max_steps']}; {results['seconds']:.0f} s wall with {results.get('workers', 1)} worker(s)."
        ),
        "",
    ]
    if results.get("command"):
        lines += [f"Command: `{results['command']}`", ""]
    lines += [
        "## Overall (means over cases)",
        "",
        "| strategy | planner | PSNR | SSIM | rank % | tool calls | seconds | NIQE | BRISQUE | PIQE |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in names:
        o = s[n]["overall"]
        lines.append(
            f"| {n} | {_fmt(s[n].get('planner'))} | {_fmt(o['psnr'])} | {_fmt(o['ssim'], 3)} | {_fmt(o['rank_pct'], 1)} | {_fmt(o['tool_calls'], 1)} "
            f"| {_fmt(o['seconds'])} | {_fmt(o.get('niqe'))} | {_fmt(o.get('brisque'))} | {_fmt(o.get('piqe'))} |"
        )
    named = [n for n in names if s[n].get("planner") not in (None, "heuristic")]
    if named:
        spec = results.get("planner") or {}
        about = ", ".join(f"{k} {v}" for k, v in spec.items() if k != "name" and v is not None)
        lines += ["", f"Planner {spec.get('name', '?')}{f' ({about})' if about else ''}; the agent strategies without a suffix use the heuristic planner.", ""]
        for n in named:
            o = s[n]["overall"]
            if o.get("planner_decisions"):
                lines.append(
                    f"- {n}: {o['planner_decisions']} planner decisions, {100 * o['planner_fallback_rate']:.0f}% fell back to the heuristic, "
                    f"{100 * o['planner_constrained_rate']:.0f}% decoded under the JSON schema."
                )
    groups = [g for g in (*GROUPS, "-") if any(g in s[n]["groups"] for n in names)]
    lines += ["", "## PSNR / SSIM by group", "", "| strategy | " + " | ".join(groups) + " |", "|---|" + "---:|" * len(groups)]
    for n in names:
        cells = [
            f"{_fmt(s[n]['groups'][g]['psnr'])} / {_fmt(s[n]['groups'][g]['ssim'], 3)}" if g in s[n]["groups"] else "–"
            for g in groups
        ]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    combos = results.get("combos") or sorted({r["combo"] for r in results["cases"]})
    lines += [
        "",
        "## PSNR by combination",
        "",
        "| combination | group | " + " | ".join(names) + " |",
        "|---|---|" + "---:|" * len(names),
    ]
    for c in combos:
        cells = [_fmt(s[n]["combos"].get(c, {}).get("psnr")) for n in names]
        lines.append(f"| {c} | {group_of(c)} | " + " | ".join(cells) + " |")
    cache = results.get("cache")
    if cache:
        sec = cache["seconds"]
        ratio = sec["requested"] / sec["work"] if sec["work"] else float("nan")
        lines += [
            "",
            "## Prefix cache",
            "",
            (
                f"{cache['executions']} tool executions served {cache['requests']} requested steps "
                f"({cache['requests'] / max(1, cache['executions']):.2f}x); the requested steps' recorded cost is "
                f"{sec['requested']:.1f} s against {sec['work']:.1f} s computed ({ratio:.2f}x)."
            ),
        ]
    if results.get("failures"):
        lines += ["", "## Cases that failed (left out of every mean)", ""]
        lines += [f"- {f['image']} {f['combo']}: {f['error']}" for f in results["failures"]]
    lines += [
        "",
        (
            "PSNR/SSIM: RGB in [0, 1] against the clean crop; rank %: share of the oracle's enumerated pipelines "
            "the strategy matches or beats. Seconds of strategies served from the shared prefix cache are the "
            "recorded cost of the steps they use (what they would take alone)."
        ),
        "",
    ]
    return "\n".join(lines)
