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

``--kinds white+jpeg,camera+jpeg``: the noise then a JPEG (the jpeg degradation, quality 60-10), and
the picture de-blocked first as the agent does it (``dejpeg_waifu2x`` at the level the network's
JPEG quality suggests); the network's sigma is read on the de-blocked picture and the gain is
against it. The de-blocking takes out part of the noise, and the network was taught the sigma of
the noise before the JPEG, so its sigma there could be too high for what is left; measured, it is
not (x1 is best; README, "Denoise after a de-blocking").

A benchmark script, not a test.

Usage:
    python scripts/denoise_sigma.py --n 48 --out out/denoise_sigma.json
    python scripts/denoise_sigma.py --model out/perception-mild --n 48
    python scripts/denoise_sigma.py --kinds white+jpeg,camera+jpeg --factors 0.35,0.5,0.7,1 --n 32
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from _pool import save_rows, soft_crop, validation_split

KINDS = ("white", "camera", "camera+luma_nr")
JPEG_KINDS = ("white+jpeg", "camera+jpeg")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="a run folder of restora train perception (default: the shipped network)")
    ap.add_argument("--n", type=int, default=48, help="pictures per noise kind")
    ap.add_argument("--size", type=int, default=256, help="picture side, px (native-resolution crops)")
    ap.add_argument("--factors", default="1,1.4,2,2.8", help="multiples of the network's sigma SRMD runs at")
    ap.add_argument("--max-severity", type=float, default=0.5, help="noise severities are drawn from 0..this (half of them from 0..0.15)")
    ap.add_argument("--kinds", default=",".join(KINDS), help=f"noise kinds, of {', '.join(KINDS + JPEG_KINDS)}")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="write one row per picture here (json)")
    args = ap.parse_args()

    from restora import degrade
    from restora.batch.workers import process_tools
    from restora.perception.learned import LearnedPerception
    from restora.quality.fidelity import psnr
    from restora.tools.dejpeg_waifu2x import DejpegWaifu2x
    from restora.tools.denoise_srmd import MAX_SIGMA
    from restora.trainer.common import MILD_SEVERITY

    folder, _, _, val = validation_split(args.model)
    perceive = LearnedPerception.load(folder)
    box, _ = process_tools()
    factors = [float(f) for f in args.factors.split(",")]
    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    unknown = set(kinds) - set(KINDS + JPEG_KINDS)
    if unknown:
        ap.error(f"unknown kinds {sorted(unknown)}")
    rng = np.random.default_rng(args.seed)
    rows = []
    for kind in kinds:
        for i in range(args.n):
            clean = soft_crop(val, args.size, rng)
            severity = float(rng.uniform(0.0, MILD_SEVERITY if i % 2 else args.max_severity))
            options = {"model": "gaussian"} if kind.startswith("white") else {"model": "camera", "luma_nr": kind == "camera+luma_nr"}
            seed = int(rng.integers(2**31))
            noisy, labels = degrade.compose(clean, "noise", seed=seed, severities={"noise": severity}, options={"noise": options})
            if kind in JPEG_KINDS:  # then a JPEG, and the de-blocking the agent does first
                noisy, jl = degrade.compose(noisy, "jpeg", seed=seed, severities={"jpeg": float(rng.uniform(0.0, 1.0))})
                labels["jpeg"] = jl["jpeg"]
                found = perceive(noisy).findings["jpeg"]
                level = DejpegWaifu2x.suggest_params(found.severity, found.evidence)[0]
                noisy = box.run("dejpeg_waifu2x", noisy, level.model_dump(mode="json"))
            ev = perceive(noisy).findings["noise"].evidence
            net, cls = float(ev["learned_noise_sigma"]), float(ev.get("classical_noise_sigma", 0.0))
            base = psnr(noisy, clean)
            gains = {}
            for k in factors:
                out = box.run("denoise_srmd", noisy, {"sigma": round(min(max(k * net, 1.0), MAX_SIGMA), 1)})
                gains[str(k)] = round(psnr(out, clean) - base, 4)
            rows.append({"kind": kind, "severity": round(severity, 4), "label_sigma": labels["noise"]["sigma"], "net_sigma": round(net, 3),
                         "jpeg_quality": labels.get("jpeg", {}).get("quality"),
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
    table("noise kind", {k: [r for r in rows if r["kind"] == k] for k in kinds})
    table(f"kind, mild (severity < {MILD_SEVERITY:g})", {k: [r for r in rows if r["kind"] == k and r["severity"] < MILD_SEVERITY] for k in kinds})
    bands = [(0.0, 1.5), (1.5, 3.0), (3.0, 6.0), (6.0, float("inf"))]
    table("network / classical sigma", {f"{lo:g}-{hi:g}": [r for r in rows if lo <= r["ratio"] < hi] for lo, hi in bands})
    print("\nmedian ratio per kind: " + ", ".join(f"{k} {np.median([r['ratio'] for r in rows if r['kind'] == k]):.2f}" for k in kinds))
    if any(k in JPEG_KINDS for k in kinds):
        qbands = [(0, 25), (25, 45), (45, 61)]
        table("JPEG quality (de-blocked first)", {f"{lo}-{hi - 1}": [r for r in rows if r["kind"] in JPEG_KINDS and lo <= r["jpeg_quality"] < hi] for lo, hi in qbands})
        print("median network sigma / label sigma after the de-blocking: "
              + ", ".join(f"{k} {np.median([r['net_sigma'] / r['label_sigma'] for r in rows if r['kind'] == k]):.2f}" for k in kinds if k in JPEG_KINDS))


if __name__ == "__main__":
    main()
