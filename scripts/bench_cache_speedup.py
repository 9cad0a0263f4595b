"""Measure the prefix cache against the naive enumeration, in one run, on the same cases.

For each case the oracle's enumeration (every order x every tool of the true tasks) runs twice
in this process: once through a fresh prefix cache, once naively (every pipeline from the
degraded input, perception recomputed each step). Both must give the same PSNR per pipeline;
the script prints the wall time of each and the ratio.

    .venv/bin/python scripts/bench_cache_speedup.py --clean ../shared/data/clean/kodak24 --limit 2 --size 128
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from restora.cases import COMBOS, clean_images, load_clean, make_case
from restora.bench.strategies import CaseRunner
from restora.quality import QualityScorer
from restora.tools import ToolBox


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clean", type=Path, nargs="+", required=True)
    ap.add_argument("--limit", type=int, default=2)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--combos", default=",".join(COMBOS))
    args = ap.parse_args()
    box, scorer = ToolBox(), QualityScorer()
    totals = {"cached": 0.0, "naive": 0.0}
    calls = {"cached": 0, "naive": 0}
    for img in clean_images(args.clean, args.limit):
        clean = load_clean(img.path, args.size)
        for combo in args.combos.split(","):
            case = make_case(clean, img.name, combo, args.seed)
            psnrs = {}
            for mode, cache in (("cached", True), ("naive", False)):
                runner = CaseRunner(case, box, scorer, cache=cache)
                t0 = time.perf_counter()
                runner.run("oracle")
                totals[mode] += time.perf_counter() - t0
                calls[mode] += runner.prefix.executions
                psnrs[mode] = runner.oracle_psnrs
            if psnrs["cached"] != psnrs["naive"]:
                raise SystemExit(f"{img.name} {combo}: cached and naive enumerations disagree")
            print(
                f"{img.name:14s} {combo:28s} pipelines {len(psnrs['cached']):3d}  so far: naive {totals['naive']:.1f} s, "
                f"cached {totals['cached']:.1f} s ({totals['naive'] / max(totals['cached'], 1e-9):.2f}x)",
                flush=True,
            )
    ratio = totals["naive"] / totals["cached"]
    print(
        f"\nnaive {totals['naive']:.1f} s, {calls['naive']} tool runs; cached {totals['cached']:.1f} s, "
        f"{calls['cached']} tool runs; speed-up {ratio:.2f}x (tool runs {calls['naive'] / calls['cached']:.2f}x)"
    )


if __name__ == "__main__":
    main()
