"""Calibrate the deconvolution noise floor for JPEG-compressed blurred pictures
(``restora.tools._classical.JPEG_DECONV_SIGMA``) on the training pool, never on benchmark photos.

Per sample: a 192 px crop of a training-pool photo (``clean/cbsd68``, ``clean/live1``), blurred by
a disc (radius 1.5-5 px) or a straight motion kernel (5-25 px), JPEG-compressed at a quality drawn
from 15-90; then, as it is and after waifu2x de-blocked it (level 2, what the agent keeps first),
deconvolved by the true kernel (conjugate gradients) at the balance ``deconv_balance(sigma)`` for
each sigma of a grid. Prints, per quality bin, the mean PSNR change against the deconvolution's
input for each sigma, and the sigma of the best mean: the table's values (seed 0, 160 samples). The noise estimate
itself reads these pictures as 0.1-0.5 (the JPEG error is not white noise).

    .venv/bin/python scripts/calibrate_deconv_jpeg.py --n 160 --out out/cal_jpeg.json   # about 5 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from restora.cases import clean_images, load_clean
from restora.degrade import disc_kernel, jpeg_roundtrip, motion_kernel
from restora.perception.measures import luma
from restora.quality import psnr
from restora.quality.guard import noise_sigma
from restora.tools import ToolBox
from restora.tools._classical import JPEG_DECONV_SIGMA, deconv_balance, deconvolve
from restora.trainer.common import default_clean_pool

SIGMAS = (0.3, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)
BINS = ((15, 30), (30, 45), (45, 60), (60, 75), (75, 90))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=160, help="samples")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("out/cal_jpeg.json"))
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    photos = clean_images(default_clean_pool())
    box = ToolBox(allow=["dejpeg_waifu2x"])
    rows = []
    for _ in range(args.n):
        clean = load_clean(photos[int(rng.integers(len(photos)))].path, 192)
        quality = int(rng.integers(15, 90))
        if rng.random() < 0.5:
            kernel, kind = disc_kernel(float(rng.uniform(1.5, 5.0))), "disc"
        else:
            kernel, kind = motion_kernel(float(rng.uniform(5.0, 25.0)), float(rng.uniform(0.0, 180.0))), "motion"
        # a true convolution with reflected borders, as restora.degrade blurs
        blurred = cv2.filter2D(clean, -1, kernel[::-1, ::-1].astype(np.float32), borderType=cv2.BORDER_REFLECT_101)
        compressed = jpeg_roundtrip(np.clip(blurred, 0, 1), quality)
        for deblocked in (False, True):
            y = box.run("dejpeg_waifu2x", compressed, {"level": 2}) if deblocked else compressed
            psnrs = [psnr(np.clip(deconvolve(y, kernel, "cg", balance=deconv_balance(s)), 0, 1), clean) for s in SIGMAS]
            rows.append({"quality": quality, "kind": kind, "deblocked": deblocked, "psnr_in": psnr(y, clean), "psnr": psnrs,
                         "noise_sigma": noise_sigma(luma(y)) * 255.0})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows))
    print("sigma grid:", " ".join(f"{s:g}" for s in SIGMAS))
    for deblocked in (False, True):
        print(f"\n{'after waifu2x' if deblocked else 'as it is'} (shipped: {JPEG_DECONV_SIGMA['deblocked' if deblocked else 'as_is']})")
        for lo, hi in BINS:
            rs = [r for r in rows if r["deblocked"] == deblocked and lo <= r["quality"] < hi]
            if not rs:
                continue
            gain = np.array([r["psnr"] for r in rs]).mean(0) - np.mean([r["psnr_in"] for r in rs])
            best = SIGMAS[int(np.argmax(gain))]
            cells = " ".join(f"{g:+.2f}" for g in gain)
            print(f"  quality {lo}-{hi} (n {len(rs)}): {cells} | best sigma {best:g} | noise estimate {np.mean([r['noise_sigma'] for r in rs]):.2f}")


if __name__ == "__main__":
    main()
