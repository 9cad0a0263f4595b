"""Time each hard-negative kind's render against a baseline from the same run.

The perception trainer renders a negative for about a third of its crops on the fly, so a slow
kind slows training. Per kind: the mean wall time of ``restora.synth.negatives.render`` over
``--repeats`` seeds (with a photo crop every other seed, as training gives it), and its ratio to
the baseline: one ``restora.degrade.apply`` of Gaussian noise on a crop of the same size (a cheap,
common step of the same pipeline), timed in the same run. Before this was a script it was a test
asserting 0.05 s per render, which failed under load; timings belong here, not in tests.

    .venv/bin/python scripts/bench_negatives.py --size 128 --repeats 20
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from restora import degrade
from restora.synth import negatives


def _photo(size: int) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    r = 0.5 + 0.35 * np.sin(xx * 9.0) * np.cos(yy * 5.0)
    return np.stack([r, 0.2 + 0.6 * xx, 0.3 + 0.5 * yy], 2).astype(np.float32)


def _mean_seconds(fn, repeats: int) -> float:
    fn(0)  # warm up (imports, caches)
    t = time.perf_counter()
    for seed in range(repeats):
        fn(seed)
    return (time.perf_counter() - t) / repeats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=128, help="crop side, px (the trainer's default crop is 128)")
    ap.add_argument("--repeats", type=int, default=20, help="seeds timed per kind")
    args = ap.parse_args()
    photo = _photo(args.size)
    base = _mean_seconds(lambda s: degrade.apply(photo, "noise", 0.5, seed=s), args.repeats)
    print(f"baseline (degrade noise, {args.size} px): {base * 1e3:.2f} ms")
    print(f"{'kind':<14} {'ms':>8} {'x baseline':>11}")
    for kind in negatives.KINDS:
        sec = _mean_seconds(lambda s: negatives.render(kind, args.size, s, photo if s % 2 else None), args.repeats)
        print(f"{kind:<14} {sec * 1e3:8.2f} {sec / base:11.1f}")


if __name__ == "__main__":
    main()
