"""Does synthesized noise behave like a real set's noise under a denoiser, on the same pictures?

For each pair of a real noisy set (``real_gt/cc_nam``, ``real_gt/polyu``: a single shot and the mean
of many), the script synthesizes noise on the ground truth with ``restora.degrade`` at the real
noise's rms (white Gaussian, the camera model, the camera model with its luminance noise
reduction; the severity found by bisection), reads each noisy picture with a perception network
(noise probability and sigma) and runs SRMD at multiples of that sigma. Same content, same rms:
what differs is the noise itself. A diagnostic of the synthesizer on visible data, never a
calibration (nothing here is fitted to these photos).

    python scripts/noise_same_content.py                       # the shipped network, 6 pairs per set, 384 px
    python scripts/noise_same_content.py --model out/perception-mild --n 8

Prints per picture and per set: the network's median probability and sigma, SRMD's mean PSNR gain
at each multiple.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from restora import degrade
from restora.batch.workers import process_tools
from restora.imageio import load_image
from restora.perception import SHIPPED_MODEL
from restora.perception.learned import DEGRADATIONS, LearnedPerception
from restora.quality.fidelity import psnr
from restora.tools.denoise_srmd import MAX_SIGMA

KINDS: dict[str, dict | None] = {
    "real": None,
    "white": {"model": "gaussian"},
    "camera": {"model": "camera", "jpeg": True},
    "camera+luma_nr": {"model": "camera", "luma_nr": True, "jpeg": True},
}
MULTIPLES = (1.0, 1.5, 2.0, 3.0)


def at_rms(gt: np.ndarray, kind: dict, rms: float, seed: int) -> np.ndarray:
    """``gt`` with ``kind`` noise at the severity whose rms (0-255) matches ``rms`` (bisection)."""
    lo, hi = 0.0, 0.5
    for _ in range(14):
        mid = (lo + hi) / 2
        y, _ = degrade.compose(gt, "noise", seed=seed, severities={"noise": mid}, options={"noise": kind})
        if float(np.sqrt(np.mean((y - gt) ** 2))) * 255 < rms:
            lo = mid
        else:
            hi = mid
    return degrade.compose(gt, "noise", seed=seed, severities={"noise": (lo + hi) / 2}, options={"noise": kind})[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("RESTORA_DATA", "../shared/data")))
    ap.add_argument("--sets", default="cc_nam,polyu", help="real_gt sets (noisy/ and gt/ with the same names)")
    ap.add_argument("--model", default=None, help="a `restora train perception` run folder (default: the shipped network)")
    ap.add_argument("--n", type=int, default=6, help="pairs per set (sorted, the first N)")
    ap.add_argument("--size", type=int, default=384, help="top-left crop side in px (SRMD runs 4 times per noise kind)")
    args = ap.parse_args()
    net = LearnedPerception.load(args.model or SHIPPED_MODEL)
    noise = DEGRADATIONS.index("noise")
    box, _ = process_tools()
    for name in args.sets.split(","):
        root = args.data / "real_gt" / name
        if not (root / "noisy").is_dir():
            raise SystemExit(f"{root}/noisy not found (--data)")
        table: dict[str, list[list[float]]] = {k: [] for k in KINDS}
        for i, f in enumerate(sorted((root / "noisy").iterdir())[: args.n]):
            x = load_image(f).pixels
            gt = load_image(root / "gt" / f.name).pixels
            x, gt = x[: args.size, : args.size], gt[: args.size, : args.size]
            rms = float(np.sqrt(np.mean((x - gt) ** 2))) * 255
            line = f"{name} {f.stem[:24]:24s} rms {rms:5.2f}"
            for kname, kind in KINDS.items():
                y = x if kind is None else at_rms(gt, kind, rms, i)
                reading = net.predict(y)
                sigma = float(reading["measures"]["noise_sigma"])
                base = psnr(y, gt)
                gains = [psnr(box.run("denoise_srmd", y, {"sigma": round(min(max(1.0, k * sigma), MAX_SIGMA), 1)}), gt) - base for k in MULTIPLES]
                table[kname].append([float(reading["probability"][noise]), sigma, *gains])
                line += f" | {kname} p {table[kname][-1][0]:.2f} s {sigma:.1f} " + " ".join(f"{g:+.1f}" for g in gains)
            print(line, flush=True)
        for kname, rows in table.items():
            a = np.array(rows)
            gains = "  ".join(f"x{k:g} {a[:, 2 + j].mean():+.2f}" for j, k in enumerate(MULTIPLES))
            print(f"  {name} {kname:15s} probability {np.median(a[:, 0]):.2f}  sigma {np.median(a[:, 1]):4.1f}  SRMD: {gains}")


if __name__ == "__main__":
    main()
