"""Kill -9 a `restora batch` twice, rerun it, and compare with one uninterrupted run.

The issue's acceptance check at full size (the tests do it on 6-10 images): a nested folder of
``--n`` crops (noisy PNGs and JPEG q40, as ``scripts/bench_batch.py`` makes them), one batch run
without interruption, and one killed with SIGKILL (its whole process group: driver and workers) at
two seeded moments and then run to the end. It checks that every output decodes to the same
pixels in both, that the ledger has every input done exactly once (``done_count`` 1), and that no
``.part`` file is left. Prints a JSON summary; exits non-zero on any difference.

Usage:
    python scripts/check_batch_resume.py --n 200 --out out/batch-resume
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_batch import make_folder  # noqa: E402

from restora.data import data_dir  # noqa: E402


def batch(src: Path, out: Path, workers: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "restora.cli", "batch", str(src), "-o", str(out), "--workers", str(workers), "--max-steps", "4", "-q"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def outputs(out: Path) -> dict[str, Path]:
    return {
        str(p.relative_to(out)): p
        for p in out.rglob("*")
        if p.is_file() and "restora-batch" not in p.parts and p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff")
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("out/batch-resume"))
    args = ap.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    src = args.out / "in"
    make_folder(data_dir(), src, args.n, args.size)
    a, b = args.out / "uninterrupted", args.out / "killed"
    t0 = time.perf_counter()
    if batch(src, a, args.workers).wait() != 0:
        sys.exit("the uninterrupted run failed")
    full = time.perf_counter() - t0
    rng = np.random.default_rng(args.seed)
    kills = []
    for _ in range(2):
        p = batch(src, b, args.workers)
        wait = float(rng.uniform(0.15, 0.45)) * full
        time.sleep(wait)
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        done = sqlite3.connect(b / "restora-ledger.sqlite").execute("SELECT COUNT(*) FROM files WHERE state = 'done'").fetchone()[0]
        kills.append({"after_s": round(wait, 1), "done_so_far": done})
    if batch(src, b, args.workers).wait() != 0:
        sys.exit("the resumed run failed")
    oa, ob = outputs(a), outputs(b)
    differ = [k for k in oa if k not in ob or not np.array_equal(np.asarray(Image.open(oa[k])), np.asarray(Image.open(ob[k])))]
    rows = sqlite3.connect(b / "restora-ledger.sqlite").execute("SELECT state, done_count FROM files").fetchall()
    parts = [str(p) for p in b.rglob("*.part")]
    summary = {
        "inputs": args.n,
        "uninterrupted_s": round(full, 1),
        "kills": kills,
        "outputs": len(oa),
        "outputs_missing_or_different": differ,
        "rows": len(rows),
        "rows_not_done_once": sum(1 for s, c in rows if s != "done" or c != 1),
        "part_files_left": parts,
    }
    print(json.dumps(summary, indent=1))
    if differ or summary["rows_not_done_once"] or parts or len(oa) != args.n or len(rows) != args.n:
        sys.exit(1)


if __name__ == "__main__":
    main()
