"""Where a perception network's noise threshold should sit for mild camera noise: recall and false
alarms of its noise probability over thresholds, on its own synthesized validation split.

The training run calibrates every threshold for the best F1 under a false-alarm cap; for noise the
validation split is mostly strong noise, so that threshold (0.67 for the run with camera luminance
noise reduction) finds little of the mild, mottled noise of real high-ISO camera JPEGs
(``real_gt/cc_nam``, ``polyu``), which the network reads at 0.1-0.5. This prints, per threshold,
recall on all noisy samples, on camera noise with luminance noise reduction (``luma_nr``), and on
the mild ones (sigma below ``--mild``), and the false alarms on samples without noise and on the
clean ones (no degradation at all, hard negatives included). ``--max-false-alarm`` picks the
lowest threshold whose false alarms on samples without noise stay under it: the highest recall
under that cap. ``--read-size`` synthesizes larger samples and reads them as the agent reads a
photo (up to 8 native-resolution crops, their logits averaged), which the single-crop validation
of the training run does not.

A benchmark script, not a test. The samples are the run's validation split (its held-out photos of
the clean pool, its seed and config, read from ``model.json``): never the benchmark photos.

Usage:
    python scripts/noise_threshold.py --model out/perception-lnr --n 3000
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
from _pool import validation_split


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="a run folder of restora train perception (default: the shipped network)")
    ap.add_argument("--n", type=int, default=3000, help="validation samples to read")
    ap.add_argument("--mild", type=float, default=8.0, help="noise sigma (0-255) below which a sample counts as mild")
    ap.add_argument("--max-false-alarm", type=float, default=0.02, help="false alarms allowed on samples without noise")
    ap.add_argument("--read-size", type=int, default=None,
                    help="synthesize each sample at this size (px) and read it as the agent reads an image: up to 8 native-resolution "
                    "crops of the network's size, averaged (default: the network's own crop, one read, as its training validated)")
    ap.add_argument("--out", type=Path, default=None, help="write one row per sample here (json)")
    args = ap.parse_args()

    from restora.perception.learned import DEGRADATIONS, LearnedPerception
    from restora.trainer import perception as tp

    folder, card, cfg, val = validation_split(args.model)
    net = LearnedPerception.load(folder, classical=False)

    sample_cfg = cfg if args.read_size is None else dataclasses.replace(cfg, crop=int(args.read_size))
    ds = tp.SynthDataset(val, sample_cfg, "val")
    j = DEGRADATIONS.index("noise")
    rows = []
    for i in range(args.n):
        spec = tp.sample_spec(cfg.seed, "val", i, len(val), sample_cfg)
        image, labels = ds.image_and_labels(i)
        noise = labels.get("noise") or {}
        rows.append({
            "index": i,
            "p": float(net.predict(image)["probability"][j]),
            "labels": sorted(labels),
            "hard": (spec["hard"] or {}).get("kind"),
            "model": noise.get("model"),
            "luma_nr": "luma_nr" in noise,
            "sigma": noise.get("sigma"),
        })
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows))

    p = np.array([r["p"] for r in rows])
    noisy = np.array([r["model"] is not None for r in rows])
    clean = np.array([not r["labels"] for r in rows])
    hard = clean & np.array([r["hard"] is not None for r in rows])
    lnr = noisy & np.array([r["luma_nr"] for r in rows])
    mild = noisy & np.array([(r["sigma"] or 0.0) < args.mild for r in rows])
    mild_lnr = lnr & mild
    size = f"{args.read_size} px, read in up to 8 crops" if args.read_size else f"{cfg.crop} px, one read"
    print(f"{folder}: {args.n} validation samples ({size}); noisy {noisy.sum()} (camera with luma_nr {lnr.sum()}, sigma < {args.mild:g}: {mild.sum()}, both {mild_lnr.sum()}); "
          f"without noise {(~noisy).sum()} (clean {clean.sum()}, hard negatives {hard.sum()}); the run's threshold {card['thresholds']['noise']}")
    print("| threshold | recall | luma_nr | mild | mild luma_nr | false alarms (no noise) | clean | hard negatives |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    chosen = None
    for t in [round(float(v), 2) for v in np.arange(0.05, 0.951, 0.01)]:
        flag = p >= t
        fa = float(flag[~noisy].mean())
        if chosen is None and fa <= args.max_false_alarm:
            chosen = t
        if t in (0.05, 0.08, 0.1, 0.12, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.67, 0.7, 0.8) or t == chosen:
            cells = [flag[m].mean() if m.any() else float("nan") for m in (noisy, lnr, mild, mild_lnr)]
            print(f"| {t:.2f} | " + " | ".join(f"{c:.3f}" for c in cells) + f" | {fa:.3f} | {flag[clean].mean():.3f} | {flag[hard].mean():.3f} |" + (" <- chosen" if t == chosen else ""))
    print(f"lowest threshold with false alarms <= {args.max_false_alarm}: {chosen}")


if __name__ == "__main__":
    main()
