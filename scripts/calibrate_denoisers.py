"""Calibrate the strength of restora's sigma-driven denoisers on the training pool, never on the
benchmark's photos.

For a seeded draw of photos from the training pool (``clean/cbsd68`` and ``clean/live1``), this
takes native-resolution crops, adds noise with :mod:`restora.degrade` (Gaussian, Poisson-Gaussian
and camera-pipeline models, severities 0.05-0.9, optionally followed by a camera's JPEG at
quality 85-95), estimates the noise level the way the agent does (perception's ``noise_sigma``), and
runs each denoiser at a grid of strength multipliers on that estimate. It prints the mean PSNR
per multiplier, per noise model and overall, and the best multiplier (``denoise_nlm``'s
``H_PER_SIGMA`` times it is the strength to ship; 2026-12-04: 1.0 for Gaussian and
Poisson-Gaussian noise, so it stays 0.55).

Usage:
    python scripts/calibrate_denoisers.py --photos 24 --tools denoise_nlm

Examples:
    RESTORA_DATA=../shared/data python scripts/calibrate_denoisers.py --workers 2 --json out/calib_nlm.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _pool import draw, pool_photos, run_photos, save_rows

from restora import degrade
from restora.cases import crop_at
from restora.imageio import read_rgb
from restora.quality.fidelity import psnr

MODELS = ("gaussian", "poisson_gaussian", "camera")
SEVERITIES = (0.05, 0.15, 0.3, 0.5, 0.7, 0.9)
STRENGTHS = (0.6, 0.8, 1.0, 1.2, 1.4, 1.7, 2.0, 2.5, 3.0, 4.0)


def _job(args: tuple) -> list[dict]:
    from restora.perception.measures import noise_sigma
    from restora.tools import create_tool

    path, index, tools, crop, jpeg = args
    rng = np.random.default_rng([7, index])
    clean = crop_at(read_rgb(path), crop, tuple(rng.random(2)))
    rows = []
    for model in MODELS:
        sev = float(SEVERITIES[int(rng.integers(len(SEVERITIES)))])
        noisy, lab = degrade.apply_labeled(clean, "noise", sev, seed=int(rng.integers(1 << 30)), model=model)
        if jpeg:  # a camera's or phone's own JPEG, quality 85-95
            noisy = degrade.jpeg_roundtrip(noisy, int(rng.integers(85, 96)))
        ns = noise_sigma(noisy)
        est = ns["noise_sigma"]
        base = psnr(noisy, clean)
        for name in tools:
            tool = create_tool(name)
            for s in STRENGTHS:
                out = tool(noisy, {"sigma": max(est, 1.0), "strength": s})
                rows.append({"photo": path.name, "model": model, "sigma": lab.get("sigma"), "estimate": est, "coarse": ns["noise_sigma_coarse"], "tool": name, "strength": s, "gain": psnr(out, clean) - base})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=None, help="shared data folder (default: RESTORA_DATA or ../shared/data)")
    ap.add_argument("--photos", type=int, default=24, help="photos drawn from the pool")
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--tools", default="denoise_nlm", help="comma-separated sigma-driven denoisers with a 'strength' parameter")
    ap.add_argument("--jpeg", action="store_true", help="compress after the noise (quality 85-95, as cameras do)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None, help="write every row here")
    args = ap.parse_args()
    tools = args.tools.split(",")
    jobs = [(path, k, tools, args.crop, args.jpeg) for k, path in enumerate(draw(pool_photos(args.data), args.photos, 0))]
    rows = run_photos(_job, jobs, args.workers)
    save_rows(rows, args.json)
    for name in tools:
        print(f"\n{name}: mean PSNR gain (dB) by strength multiplier, {len(jobs)} pool photos, crop {args.crop}, jpeg {args.jpeg}")
        print("model".ljust(18) + "".join(f"{s:>7}" for s in STRENGTHS))
        best = {}
        for model in (*MODELS, "all"):
            sel = [r for r in rows if r["tool"] == name and (model == "all" or r["model"] == model)]
            means = [np.mean([r["gain"] for r in sel if r["strength"] == s]) for s in STRENGTHS]
            best[model] = STRENGTHS[int(np.argmax(means))]
            print(model.ljust(18) + "".join(f"{m:7.2f}" for m in means))
        print("best multiplier:", best)


if __name__ == "__main__":
    main()
