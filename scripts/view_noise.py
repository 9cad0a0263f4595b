"""Reading a dim picture's noise brightened: how often the perception network finds noise in dim
pictures with and without it, read as they are and as viewed (``restora.perception.measures.view_gain``),
on the network's own validation photos (never on benchmark photos).

The network's threshold was calibrated on its validation split as the pictures are; reading a dim
picture through the view is new, so this measures what it does at that threshold: on dim pictures
(``degrade``'s dark dimming alone) without noise (false alarms), with the dim exposure's own shot and
read noise, and with a camera's mild noise after the dimming (a dim high-ISO shot); and, as a
control, on the same kinds at normal exposure (where the view is the picture itself). Each picture
is a crop of a held-out pool photo given a camera's own softness; for the noisy kinds, SRMD's PSNR
gain at the sigma read (and twice it) against the same picture without its noise.

A benchmark script, not a test.

Usage:
    python scripts/view_noise.py --n 40 --out out/view_noise.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from _pool import save_rows, soft_crop, validation_split

KINDS = ("dim clean", "dim + own noise", "dim + camera noise", "clean", "camera noise")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="a run folder of restora train perception (default: the shipped network)")
    ap.add_argument("--n", type=int, default=40, help="pictures per kind")
    ap.add_argument("--size", type=int, default=256, help="picture side, px (native-resolution crops)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="write one row per picture here (json)")
    args = ap.parse_args()

    from restora import degrade
    from restora.batch.workers import process_tools
    from restora.perception.learned import LearnedPerception
    from restora.quality.fidelity import psnr
    from restora.tools.denoise_srmd import MAX_SIGMA
    from restora.trainer.common import MILD_SEVERITY

    folder, _, _, val = validation_split(args.model)
    viewed = LearnedPerception.load(folder, view_noise=True)
    plain = LearnedPerception.load(folder, view_noise=False)
    box, _ = process_tools()
    rng = np.random.default_rng(args.seed)
    rows = []
    for kind in KINDS:
        for i in range(args.n):
            clean = soft_crop(val, args.size, rng)
            seed = int(rng.integers(2**31))
            dark_sev = float(rng.uniform(0.1, 1.0))
            noise_sev = float(rng.uniform(0.0, MILD_SEVERITY))
            if kind.startswith("dim"):
                ref = degrade.apply(clean, "dark", dark_sev, seed=seed, noise=False)
            else:
                ref = clean
            if kind == "dim + own noise":
                pic = degrade.apply(clean, "dark", dark_sev, seed=seed)
            elif kind.endswith("camera noise"):
                pic = degrade.apply(ref, "noise", noise_sev, seed=seed, model="camera")
            else:
                pic = ref
            a, b = plain(pic).findings["noise"], viewed(pic).findings["noise"]
            row = {"kind": kind, "plain": bool(a.present), "viewed": bool(b.present), "view_gain": b.evidence.get("view_gain", 1.0),
                   "p_plain": a.evidence.get("probability"), "p_viewed": b.evidence.get("probability"),
                   "sigma": b.evidence.get("noise_sigma")}
            if kind != "dim clean" and kind != "clean":
                base = psnr(pic, ref)
                for k in (1, 2):
                    out = box.run("denoise_srmd", pic, {"sigma": round(min(max(k * float(b.evidence.get("noise_sigma") or 1.0), 1.0), MAX_SIGMA), 1)})
                    row[f"gain_x{k}"] = round(psnr(out, ref) - base, 4)
            rows.append(row)
            print(f"\r{kind} {i + 1}/{args.n}", end="", flush=True)
    print()
    save_rows(rows, args.out)
    print(f"{folder}: noise found at the network's threshold, {args.size} px crops of its validation photos")
    print("\n| kind | pictures | median view gain | found as it is | found viewed | SRMD gain at the sigma read x1 / x2 (dB) |")
    print("|---|---:|---:|---:|---:|---:|")
    for kind in KINDS:
        g = [r for r in rows if r["kind"] == kind]
        gains = f"{np.mean([r['gain_x1'] for r in g]):+.2f} / {np.mean([r['gain_x2'] for r in g]):+.2f}" if "gain_x1" in g[0] else ""
        print(f"| {kind} | {len(g)} | {np.median([r['view_gain'] for r in g]):.2f} | {np.mean([r['plain'] for r in g]):.0%} "
              f"| {np.mean([r['viewed'] for r in g]):.0%} | {gains} |")


if __name__ == "__main__":
    main()
