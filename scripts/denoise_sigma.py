"""Which sigma a white-noise denoiser should get for camera noise: SRMD's PSNR gain at multiples of
the noise sigma a perception network reads, by noise kind, on that network's own validation photos.

Camera noise is spatially correlated (demosaicking, the camera's noise reduction, its JPEG): at the
same per-pixel rms it holds more low-frequency mottle than white noise, which a denoiser told the
rms reads as picture. On the real camera noise of ``real_gt/cc_nam`` the network reads sigma 3-4
(about the rms) while SRMD keeps gaining up to sigma 8. This measures the factor on synthesized
pictures instead (never on benchmark photos): held-out photos of the network's training pool, given
a camera's own softness (as real photos at native resolution have), then white Gaussian noise or
the camera model (half of it with the luminance noise reduction), mild or strong. Each picture is
read as the agent reads it (the network's sigma and the classical white-noise estimate), SRMD runs
at ``k`` times the network's sigma for each ``--factors`` value, and the table gives the mean gain
per kind and per band of the ratio network sigma / classical sigma, the reading that tells
correlated noise from white (the classical estimate sees only the fine-grained part).

A benchmark script, not a test.

Usage:
    python scripts/denoise_sigma.py --n 48 --out out/denoise_sigma.json
    python scripts/denoise_sigma.py --model out/perception-mild --n 48
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from _pool import save_rows, validation_split

KINDS = ("white", "camera", "camera+luma_nr")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="a run folder of restora train perception (default: the shipped network)")
    ap.add_argument("--n", type=int, default=48, help="pictures per noise kind")
    ap.add_argument("--size", type=int, default=256, help="picture side, px (native-resolution crops)")
    ap.add_argument("--factors", default="1,1.4,2,2.8", help="multiples of the network's sigma SRMD runs at")
    ap.add_argument("--max-severity", type=float, default=0.5, help="noise severities are drawn from 0..this (half of them from 0..0.15)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="write one row per picture here (json)")
    args = ap.parse_args()

    from restora import degrade
    from restora.batch.workers import process_tools
    from restora.cases import crop_at, load_clean
    from restora.perception.learned import LearnedPerception
    from restora.quality.fidelity import psnr
    from restora.tools.denoise_srmd import MAX_SIGMA
    from restora.trainer.common import MILD_SEVERITY
    from restora.trainer.perception import CAMERA_PSF_SIGMA, camera_look

    folder, _, _, val = validation_split(args.model)
    perceive = LearnedPerception.load(folder)
    box, _ = process_tools()
    factors = [float(f) for f in args.factors.split(",")]
    rng = np.random.default_rng(args.seed)
    rows = []
    for kind in KINDS:
        for i in range(args.n):
            photo = load_clean(val[int(rng.integers(len(val)))].path, 10**6)
            clean = crop_at(photo, args.size, rng.random(2).tolist())
            clean = camera_look(clean, {"psf_sigma": float(rng.uniform(*CAMERA_PSF_SIGMA)), "sharpen": 0.0, "sharpen_sigma": 1.0})
            severity = float(rng.uniform(0.0, MILD_SEVERITY if i % 2 else args.max_severity))
            options = {"model": "gaussian"} if kind == "white" else {"model": "camera", "luma_nr": kind == "camera+luma_nr"}
            noisy, labels = degrade.compose(clean, "noise", seed=int(rng.integers(2**31)), severities={"noise": severity}, options={"noise": options})
            ev = perceive(noisy).findings["noise"].evidence
            net, cls = float(ev["learned_noise_sigma"]), float(ev.get("classical_noise_sigma", 0.0))
            base = psnr(noisy, clean)
            gains = {}
            for k in factors:
                out = box.run("denoise_srmd", noisy, {"sigma": round(min(max(k * net, 1.0), MAX_SIGMA), 1)})
                gains[str(k)] = round(psnr(out, clean) - base, 4)
            rows.append({"kind": kind, "severity": round(severity, 4), "label_sigma": labels["noise"]["sigma"], "net_sigma": round(net, 3),
                         "classical_sigma": round(cls, 3), "ratio": round(net / max(cls, 0.25), 3), "psnr_in": round(base, 3), "gains": gains})
            print(f"\r{kind} {i + 1}/{args.n}", end="", flush=True)
    print()
    save_rows(rows, args.out)

    def table(title: str, groups: dict[str, list[dict]]) -> None:
        print(f"\n| {title} | pictures | " + " | ".join(f"x{k:g}" for k in factors) + " | best |")
        print("|---|---:|" + "---:|" * (len(factors) + 1))
        for name, g in groups.items():
            if not g:
                continue
            means = [float(np.mean([r["gains"][str(k)] for r in g])) for k in factors]
            print(f"| {name} | {len(g)} | " + " | ".join(f"{m:+.2f}" for m in means) + f" | x{factors[int(np.argmax(means))]:g} |")

    print(f"{folder}: SRMD's mean PSNR gain (dB) at multiples of the network's sigma, {args.size} px pictures with a camera's softness")
    table("noise kind", {k: [r for r in rows if r["kind"] == k] for k in KINDS})
    table(f"kind, mild (severity < {MILD_SEVERITY:g})", {k: [r for r in rows if r["kind"] == k and r["severity"] < MILD_SEVERITY] for k in KINDS})
    bands = [(0.0, 1.5), (1.5, 3.0), (3.0, 6.0), (6.0, float("inf"))]
    table("network / classical sigma", {f"{lo:g}-{hi:g}": [r for r in rows if lo <= r["ratio"] < hi] for lo, hi in bands})
    print("\nmedian ratio per kind: " + ", ".join(f"{k} {np.median([r['ratio'] for r in rows if r['kind'] == k]):.2f}" for k in KINDS))


if __name__ == "__main__":
    main()
