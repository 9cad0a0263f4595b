"""Which comes first, a tone step (low light, dehaze) or the other degradation's step? Measured on the
training pool, never on the benchmark's photos.

For a seeded draw of photos from the training pool (``clean/cbsd68`` and ``clean/live1``), this
takes native-resolution crops and degrades each with a tone degradation (``dark`` or ``haze``)
together with one other (noise, motion blur, defocus, rain, JPEG, low resolution), severities
drawn by :func:`restora.degrade.compose`. It restores the crop with each task's default tool
(:func:`restora.planners.heuristic.rank_tools`), params from the default perception's reading of
the picture that tool gets (its first suggestion, as the planner passes it), in both orders: the
other step first, then the tone step, and the tone step first. It prints the mean PSNR of each
order per pair and the share of crops where the tone step first was better.

``--guard``: each step that is not a tone step is kept only where the shipped no-harm guard
(:meth:`restora.quality.guard.NoHarmGuard.check`) passes it, as the agent keeps it; a rejected
step leaves the picture as it was. Tone steps are not the guard's to judge (the agent judges them
by the quality gain alone), so they are always kept here. ``--pairs`` restricts the pairs
(``dark+rain,haze+rain``).

Usage:
    python scripts/calibrate_order.py --photos 24 --workers 2 --json out/calib_order.json
    python scripts/calibrate_order.py --photos 40 --guard --pairs dark+rain,haze+rain
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

TONE = ("dark", "haze")
OTHERS = ("noise", "motion_blur", "defocus", "rain", "jpeg", "low_res")


def _job(args: tuple) -> list[dict]:
    from restora.perception import backend
    from restora.planners.heuristic import rank_tools
    from restora.quality.guard import NoHarmGuard
    from restora.taxonomy import TASK_FOR, Degradation
    from restora.tools import create_tool
    from restora.tools.registry import get_tool, list_tools

    path, index, crop, guarded, pairs = args
    perceive = backend()
    guard = NoHarmGuard.default() if guarded else None
    catalogue = {n: c.describe() for n, c in list_tools().items() if not c.multi_task()}
    rng = np.random.default_rng([13, index])
    clean = crop_at(read_rgb(path), crop, tuple(rng.random(2)))

    def step(image: np.ndarray, degradation: str) -> np.ndarray:
        task = str(TASK_FOR[Degradation(degradation)])
        name = rank_tools(task, catalogue)[0]
        found = perceive(image).model_dump(mode="json")["findings"].get(degradation) or {}
        params = get_tool(name).suggest_params_for(task, float(found.get("severity", 0.5)), found.get("evidence") or {})[0]
        out = create_tool(name)(image, params.model_dump(mode="json"))
        if out.shape != image.shape:
            return image  # a super-resolution keeps the size here
        if guard is not None and degradation not in TONE and not guard.check(image, out, task).ok:
            return image  # rejected by the guard: the agent rolls it back
        return out

    rows = []
    for tone in TONE:
        for other in OTHERS:
            seed = int(rng.integers(1 << 30))  # drawn for every pair: --pairs keeps the others' crops
            if pairs and f"{tone}+{other}" not in pairs:
                continue
            degraded, _ = degrade.compose(clean, f"{tone}+{other}", seed=seed)
            degraded = quantize(degraded)
            other_first = psnr(step(step(degraded, other), tone), clean)
            tone_first = psnr(step(step(degraded, tone), other), clean)
            rows.append({"photo": path.name, "tone": tone, "other": other, "input": psnr(degraded, clean),
                         "other_first": other_first, "tone_first": tone_first})
    return rows


def summarise(rows: list[dict]) -> None:
    print(f"{'pair':24}{'input':>8}{'other first':>13}{'tone first':>12}{'tone first better':>19}{'n':>5}")
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        groups[f"{r['tone']}+{r['other']}"].append(r)
        groups[f"{r['tone']}+any"].append(r)
    for key, sel in groups.items():
        better = np.mean([r["tone_first"] > r["other_first"] for r in sel])
        print(f"{key:24}{np.mean([r['input'] for r in sel]):8.2f}{np.mean([r['other_first'] for r in sel]):13.2f}"
              f"{np.mean([r['tone_first'] for r in sel]):12.2f}{100 * better:18.0f}%{len(sel):5d}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=None, help="shared data folder (default: RESTORA_DATA or ../shared/data)")
    ap.add_argument("--photos", type=int, default=24, help="photos drawn from the pool")
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None, help="write every row here")
    ap.add_argument("--load", type=Path, default=None, help="summarise the rows of an earlier --json instead")
    ap.add_argument("--guard", action="store_true", help="keep a non-tone step only where the shipped no-harm guard passes it")
    ap.add_argument("--pairs", default="", help="comma-separated pairs to run (tone+other, e.g. dark+rain); default all")
    args = ap.parse_args()
    if args.load:
        summarise(json.loads(args.load.read_text()))
        return
    pairs = tuple(p for p in args.pairs.split(",") if p)
    jobs = [(path, k, args.crop, args.guard, pairs) for k, path in enumerate(draw(pool_photos(args.data), args.photos, 1))]
    rows = run_photos(_job, jobs, args.workers)
    save_rows(rows, args.json)
    summarise(rows)


if __name__ == "__main__":
    main()
