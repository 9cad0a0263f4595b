"""Benchmark (not a test): restore one phone-sized noisy photo and report wall time, peak memory
and the PSNR gain against its clean source.

The photo is made here, 6000x4000 by default (24 MP, a phone camera's size): a mosaic of the clean
photos of a folder at their native resolution (``--source`` a folder; flipped copies where more
tiles are needed), so every pixel holds a real photo's detail, or one photo upscaled (``--source``
a file; an upscale is smooth at the pixel level, which makes noise easier to see in a downscale).
Gaussian noise of ``--sigma`` (0-255 units, seeded) is added and the result saved as a JPEG at
quality 95. ``restora run`` runs in a child process, so its
peak resident memory is the child's own (``ru_maxrss``).

Usage:
    python scripts/bench_large_photo.py --out out/large            # 24 MP mosaic of kodak24, sigma 15
    python scripts/bench_large_photo.py --size 3000x2000 --out out/large6
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from restora.data import data_dir
from restora.imageio import load_image
from restora.quality.fidelity import psnr


def make_photo(src: Path, size: tuple[int, int], sigma: float, seed: int, dest: Path) -> np.ndarray:
    """The clean upscaled photo (returned) and its noisy JPEG (written to ``dest``)."""
    w, h = size
    if src.is_dir():
        from restora.data import image_files

        tiles = [load_image(f).pixels for f in image_files(src)]
        th, tw = min(t.shape[0] for t in tiles), min(t.shape[1] for t in tiles)
        tiles = [t[:th, :tw] for t in tiles]
        rows, cols = -(-h // th), -(-w // tw)
        grid = [tiles[i % len(tiles)][:, :: -1 if (i // len(tiles)) % 2 else 1] for i in range(rows * cols)]
        clean = np.concatenate([np.concatenate(grid[r * cols : (r + 1) * cols], axis=1) for r in range(rows)], axis=0)[:h, :w]
        clean = np.ascontiguousarray(clean, dtype=np.float32)
    else:
        clean = np.clip(cv2.resize(load_image(src).pixels, (w, h), interpolation=cv2.INTER_LANCZOS4), 0, 1).astype(np.float32)
    rng = np.random.default_rng(seed)
    noisy = np.clip(clean + rng.normal(0, sigma / 255.0, clean.shape).astype(np.float32), 0, 1)
    dest.parent.mkdir(parents=True, exist_ok=True)
    bgr = cv2.cvtColor(np.round(noisy * 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(dest), bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
    return clean


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--source", type=Path, default=None, help="a folder of clean photos (a native-resolution mosaic) or one photo (upscaled); default the shared data's clean/kodak24")
    ap.add_argument("--size", default="6000x4000", help="WxH of the photo")
    ap.add_argument("--sigma", type=float, default=15.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-seconds", type=float, default=1800.0, help="restora run's time budget")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    src = args.source or data_dir() / "clean" / "kodak24"
    photo = args.out / "input" / "large.jpg"
    clean = make_photo(src, (w, h), args.sigma, args.seed, photo)
    restora = Path(sys.executable).with_name("restora")
    cmd = [str(restora), "run", str(photo), "-o", str(args.out / "restored"), "--max-seconds", str(args.max_seconds), "-q"]
    t0 = time.perf_counter()
    rc = subprocess.run(cmd, env={**os.environ, "HF_HUB_OFFLINE": "1"}).returncode
    seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    noisy = load_image(photo).pixels
    result = {"size": [w, h], "megapixels": round(w * h / 1e6, 1), "sigma": args.sigma, "command": " ".join(cmd), "rc": rc,
              "seconds": round(seconds, 1), "peak_rss_mb": round(peak_mb), "psnr_input": round(psnr(noisy, clean), 3)}
    out_png = args.out / "restored" / "large.png"
    if out_png.is_file():
        restored = load_image(out_png).pixels
        result["psnr_output"] = round(psnr(restored, clean), 3)
        result["psnr_gain"] = round(result["psnr_output"] - result["psnr_input"], 3)
        trace = args.out / "restored" / "large.trace.jsonl"
        end = json.loads(trace.read_text().splitlines()[-1])
        result["kept"] = end.get("accepted")
        result["stop_reason"] = end.get("stop_reason")
    (args.out / "result.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
