"""Why real camera noise reads clean: the real noise of ``real_gt/cc_nam`` and ``real_gt/polyu``
against restora's camera-noise model, as statistics and as the default perception reads them.

For each noisy/ground-truth pair (the first ``--pairs`` of each set) it prints, averaged over the
set: the noise's rms against the ground truth (0-255) and how much of it survives averaging over
2x2, 4x4 and 8x8 blocks (white noise keeps 1/2, 1/4, 1/8: real camera noise is spatially
correlated); the same for :func:`restora.degrade.apply` ``noise`` with ``model="camera"`` added to
the ground truth at each ``--severities``, plain and with the camera's luminance noise reduction
(``luma_nr``, each sigma of ``--luma-nr``); and the default perception's noise probability on the
real noisy picture, the ground truth and each synthesized one. A diagnostic: it sets nothing.

Usage:
    python scripts/camera_noise_gap.py --pairs 6 --severities 0,0.05,0.1,0.2 --luma-nr 1.5
    python scripts/camera_noise_gap.py --severities 0.2 --luma-nr 1.5 --jpeg on   # with the camera's JPEG
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from restora import degrade
from restora.data import image_files
from restora.imageio import load_image


def block_retention(residual: np.ndarray) -> list[float]:
    """rms of ``residual`` (0-255) and the share of it left after averaging k x k blocks, k = 2, 4, 8."""
    rms = float(np.sqrt(np.mean(residual**2)))
    out = [rms * 255.0]
    for k in (2, 4, 8):
        h, w = (residual.shape[0] // k) * k, (residual.shape[1] // k) * k
        blocks = residual[:h, :w].reshape(h // k, k, w // k, k, -1).mean(axis=(1, 3))
        out.append(float(blocks.std()) / max(rms, 1e-12))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("RESTORA_DATA", "../shared/data")))
    ap.add_argument("--pairs", type=int, default=6, help="pairs per set")
    ap.add_argument("--severities", default="0,0.05,0.1", help="camera-noise severities to synthesize")
    ap.add_argument("--jpeg", choices=("drawn", "on", "off"), default="drawn", help="the camera model's JPEG: as drawn (half the time), always, never")
    ap.add_argument("--luma-nr", default="", help="comma-separated sigmas (px) of the luminance noise reduction to add rows for")
    args = ap.parse_args()
    from restora.perception import backend

    perceive = backend()
    severities = [float(s) for s in args.severities.split(",")]
    luma = [None] + [float(s) for s in args.luma_nr.split(",") if s]
    jpeg = {"drawn": None, "on": True, "off": False}[args.jpeg]

    def prob(img: np.ndarray) -> float:
        return float(perceive(np.clip(img, 0, 1)).findings["noise"].evidence.get("probability", float("nan")))

    print(f"{'set / picture':36}{'rms':>7}{'2x2':>7}{'4x4':>7}{'8x8':>7}   noise probability (min .. median .. max)")
    for name in ("cc_nam", "polyu"):
        folder = args.data / "real_gt" / name
        noisy_files = image_files(folder / "noisy")[: args.pairs]
        rows: dict[str, list] = {}
        for path in noisy_files:
            noisy = load_image(path).pixels
            gt = load_image(folder / "gt" / path.name).pixels
            rows.setdefault("real noise", []).append((block_retention(noisy - gt), prob(noisy)))
            rows.setdefault("ground truth", []).append(([np.nan] * 4, prob(gt)))
            for nr in luma:
                for sev in severities:
                    synth = np.clip(degrade.apply(gt, "noise", sev, seed=1, model="camera", jpeg=jpeg, luma_nr=nr), 0, 1)
                    label = f"camera model @{sev:g}" + ("" if nr is None else f" luma NR {nr:g}")
                    rows.setdefault(label, []).append((block_retention(synth - gt), prob(synth)))
        for label, vals in rows.items():
            stats = np.nanmean([v[0] for v in vals], axis=0) if label != "ground truth" else [np.nan] * 4
            p = np.array([v[1] for v in vals])
            print(f"{name + ' ' + label:36}" + "".join(f"{x:7.2f}" for x in stats)
                  + f"   {p.min():.3f} .. {np.median(p):.3f} .. {p.max():.3f}")


if __name__ == "__main__":
    main()
