"""Rank the tone tools (low light, dehaze) by what they gain on the training pool, never on the
benchmark's photos: the planner's priors for these tasks come from this table.

For a seeded draw of photos from the training pool (``clean/cbsd68`` and ``clean/live1``), this
takes native-resolution crops and degrades each with a tone degradation (``dark`` or ``haze``),
alone and together with each of the other degradations the agent meets (noise, motion blur,
defocus, rain, JPEG, low resolution), severities drawn by :func:`restora.degrade.compose`. It
reads the degraded crop with the default perception (the finding's severity and evidence, as the
planner passes them) and runs every tool of the task with each of its suggested params, straight
on the degraded crop (the tone step as the first one), or with ``--after`` on the crop that the
other degradation's default tool restored first where the planner takes that task first
(:data:`restora.taxonomy.RESTORATION_ORDER`: the tone step after a denoise, deblur or
super-resolution; a dehaze after a derain too; a low-light step before the derain). It prints, per tool and context, the mean
PSNR gain of the tool's first suggestion (the one the planner tries first), the share of crops
where that tool's first suggestion is the best of the task's tools, and the order to ship.

2026-12-06, 48 photos, crop 256: see ``LowlightGamma.prior`` and ``DehazeCLAHE.prior`` for the
figures the priors follow.

Usage:
    python scripts/calibrate_tone.py --photos 48 --workers 2 --json out/calib_tone.json
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from _pool import draw, pool_photos, run_photos, save_rows

from restora import degrade
from restora.cases import crop_at
from restora.imageio import quantize, read_rgb
from restora.quality import psnr

TONE = {"dark": "low_light", "haze": "dehaze"}
CONTEXTS = ("", "noise", "motion_blur", "defocus", "rain", "jpeg", "low_res")


def _job(args: tuple) -> list[dict]:
    from restora.perception import backend
    from restora.tools import create_tool
    from restora.tools.registry import get_tool, list_tools

    from restora.planners.heuristic import rank_tools
    from restora.taxonomy import RESTORATION_ORDER, TASK_FOR, Degradation

    path, index, crop, after = args
    perceive = backend()
    order = [str(t) for t in RESTORATION_ORDER]
    catalogue = {n: c.describe() for n, c in list_tools().items() if not c.multi_task()}
    rng = np.random.default_rng([11, index])
    clean = crop_at(read_rgb(path), crop, tuple(rng.random(2)))
    rows = []
    for tone, task in TONE.items():
        tools = [n for n in list_tools(task) if not get_tool(n).multi_task()]  # the DiT has no weights on a CPU
        for context in CONTEXTS:
            combo = "+".join(c for c in (tone, context) if c)
            degraded, _ = degrade.compose(clean, combo, seed=int(rng.integers(1 << 30)))
            degraded = quantize(degraded)
            findings = perceive(degraded).model_dump(mode="json")["findings"]
            finding = findings.get(tone) or {}
            severity = float(finding.get("severity", 0.5))
            evidence = finding.get("evidence") or {}
            base = psnr(degraded, clean)
            other = str(TASK_FOR[Degradation(context)]) if context else None
            if after and other and order.index(other) < order.index(task):  # the other's tool first, as the planner orders them
                first = rank_tools(other, catalogue)[0]
                found = findings.get(context) or {}
                p0 = get_tool(first).suggest_params_for(other, float(found.get("severity", 0.5)), found.get("evidence") or {})[0]
                degraded = create_tool(first)(degraded, p0.model_dump(mode="json"))
            for name in tools:
                tool = create_tool(name)
                for k, p in enumerate(get_tool(name).suggest_params_for(task, severity, evidence)):
                    out = tool(degraded, p.model_dump(mode="json"))
                    rows.append({"photo": path.name, "tone": tone, "context": context or "alone", "tool": name,
                                 "suggestion": k, "present": bool(finding.get("present")), "gain": psnr(out, clean) - base,
                                 "evidence": {k: v for k, v in evidence.items() if isinstance(v, (int, float))}})
    return rows


def summarise(rows: list[dict]) -> None:
    for tone, task in TONE.items():
        firsts = [r for r in rows if r["tone"] == tone and r["suggestion"] == 0]
        tools = sorted({r["tool"] for r in firsts})
        print(f"\n{task} ({tone}): mean PSNR gain (dB) of each tool's first suggestion, and its share of wins")
        print("context".ljust(14) + "".join(f"{t:>22}" for t in tools) + "      n")
        by_case: dict[tuple, dict[str, float]] = defaultdict(dict)
        for r in firsts:
            by_case[(r["photo"], r["context"])][r["tool"]] = r["gain"]
        for context in (*[c or "alone" for c in CONTEXTS], "all"):
            cases = {k: v for k, v in by_case.items() if context == "all" or k[1] == context}
            if not cases:
                continue
            cells = []
            for t in tools:
                mean = np.mean([v[t] for v in cases.values()])
                wins = np.mean([max(v, key=v.get) == t for v in cases.values()])
                cells.append(f"{mean:8.2f} ({100 * wins:3.0f}% best)")
            print(context.ljust(14) + "".join(f"{c:>22}" for c in cells) + f"{len(cases):7d}")
        means = {t: np.mean([v[t] for v in by_case.values()]) for t in tools}
        print("ship order:", " > ".join(sorted(tools, key=lambda t: -means[t])))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=None, help="shared data folder (default: RESTORA_DATA or ../shared/data)")
    ap.add_argument("--photos", type=int, default=48, help="photos drawn from the pool")
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--after", action="store_true",
                    help="restore the other degradation first with its task's default tool, as the planner orders them")
    ap.add_argument("--json", type=Path, default=None, help="write every row here")
    ap.add_argument("--load", type=Path, default=None, help="summarise the rows of an earlier --json instead")
    args = ap.parse_args()
    if args.load:
        summarise(json.loads(args.load.read_text()))
        return
    jobs = [(path, k, args.crop, args.after) for k, path in enumerate(draw(pool_photos(args.data), args.photos, 0))]
    rows = run_photos(_job, jobs, args.workers)
    save_rows(rows, args.json)
    summarise(rows)


if __name__ == "__main__":
    main()
