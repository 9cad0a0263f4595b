"""Benchmark restora batch: images per minute with 1 and N workers on the same folder (the
ratio), Ray against the local pool on the same folder (and whether their outputs are identical),
and the ledger's overhead per image.

Run it on an otherwise idle machine (a busy one makes the worker ratio meaningless):

    nice -n 0 .venv/bin/python scripts/bench_batch.py --n 200 --size 128 --workers 1,2 --ray --out out/bench-batch

It builds a nested folder of ``--n`` centre-ish crops of the shared clean photos (kodak24,
cbsd68, live1, set5_hr; PNG with Gaussian noise sigma 15 and JPEG q 40), runs ``restora batch``'s driver in-process on fresh
output folders, and prints and writes ``OUT/bench_batch.json``. Throughput is given two ways:
over the whole run (start-up included) and steady (from the first finished image to the last).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from PIL import Image

from restora.batch.engine import run_batch
from restora.batch.job import BatchSettings, Job
from restora.batch.ledger import Ledger


def make_folder(data: Path, root: Path, n: int, size: int) -> list[Path]:
    photos = sorted(p for sub in ("kodak24", "cbsd68", "live1", "set5_hr") for p in (data / "clean" / sub).glob("*") if p.suffix.lower() in (".png", ".jpg", ".bmp"))
    if not photos:
        sys.exit(f"no photos under {data}/clean")
    made = []
    for i in range(n):
        im = Image.open(photos[i % len(photos)]).convert("RGB")
        w, h = im.size
        k = i // len(photos)
        x = min(max(0, w // 2 - size + 37 * k), max(0, w - size))
        y = min(max(0, h // 2 - size // 2 + 23 * k), max(0, h - size))
        crop = im.crop((x, y, x + size, y + size))
        if i % 2 == 0:  # the PNGs carry seeded Gaussian noise (sigma 15): every image has work to do
            import numpy as np

            a = np.asarray(crop, np.float32) + np.random.default_rng(i).normal(0.0, 15.0, (size, size, 3))
            crop = Image.fromarray(np.clip(a + 0.5, 0, 255).astype(np.uint8))
        folder = root / f"set{i % 5}" / ("sub" if i % 3 == 0 else "")
        folder.mkdir(parents=True, exist_ok=True)
        p = folder / f"img{i:04d}.{'jpg' if i % 2 else 'png'}"
        crop.save(p, quality=40)
        made.append(p)
    return made


def timed_run(src: Path, out: Path, settings: BatchSettings, workers: int, engine: str = "local") -> dict:
    finish_times: list[float] = []
    t0 = time.perf_counter()
    report = run_batch([src], out, settings, workers=workers, engine=engine, on_result=lambda r: finish_times.append(time.perf_counter()))
    wall = time.perf_counter() - t0
    n = len(report.results)
    steady = (finish_times[-1] - finish_times[0]) if len(finish_times) > 1 else 0.0
    return {
        "engine": engine,
        "workers": workers,
        "images": n,
        "failed": sum(r["state"] != "done" for r in report.results),
        "wall_s": round(wall, 2),
        "images_per_min": round(n / wall * 60, 2) if wall else 0.0,
        "steady_images_per_min": round((n - 1) / steady * 60, 2) if steady else None,
    }


def ledger_overhead(tmp: Path, n: int = 2000) -> dict:
    """Seconds of ledger work per image: one claim and one finish (each its own durable commit)."""
    with Ledger.open(tmp / "bench.sqlite") as led:
        jobs = [Job(f"/in/{i:05d}.png", f"{i:05d}", 1000, 1) for i in range(n)]
        t0 = time.perf_counter()
        led.sync(jobs, None)
        sync_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for j in jobs:
            led.claim(j.source)
            led.finish({"source": j.source, "state": "done", "output": f"/out/{j.name}.png", "found": ["noise"], "kept": ["denoise_nlm"], "tool_calls": 2, "seconds": 1.0})
        per = (time.perf_counter() - t0) / n
    return {"rows": n, "sync_s": round(sync_s, 4), "per_image_ms": round(per * 1000, 3)}


def same_outputs(a: Path, b: Path) -> bool:
    def files(d: Path) -> dict[str, bytes]:
        return {p.relative_to(d).as_posix(): p.read_bytes() for p in d.rglob("img*") if "restora-batch" not in p.parts and p.is_file()}

    fa, fb = files(a), files(b)
    return bool(fa) and fa == fb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("RESTORA_DATA", "../shared/data")))
    ap.add_argument("--out", type=Path, default=Path("out/bench-batch"))
    ap.add_argument("--n", type=int, default=200, help="images in the folder")
    ap.add_argument("--size", type=int, default=128, help="crop side, px")
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts to compare")
    ap.add_argument("--ray", action="store_true", help="also run Ray with the largest worker count")
    ap.add_argument("--max-steps", type=int, default=4)
    ap.add_argument("--allow", default=None, help="comma-separated tools (default: all available)")
    args = ap.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    src = args.out / "in"
    if not src.exists():
        make_folder(args.data, src, args.n, args.size)
    settings = BatchSettings(max_steps=args.max_steps, allow=args.allow.split(",") if args.allow else None)
    counts = [int(w) for w in args.workers.split(",")]
    runs = []
    for w in counts:
        out = args.out / f"local-w{w}"
        if out.exists():
            import shutil

            shutil.rmtree(out)
        runs.append(timed_run(src, out, settings, w))
        print(json.dumps(runs[-1]), flush=True)
    result: dict = {"n": args.n, "size": args.size, "max_steps": args.max_steps, "cpus": os.cpu_count(), "runs": runs}
    if len(counts) > 1:
        base = runs[0]
        for r in runs[1:]:
            key = "steady_images_per_min" if base["steady_images_per_min"] and r["steady_images_per_min"] else "images_per_min"
            result[f"ratio_w{r['workers']}_over_w{base['workers']}"] = round(r[key] / base[key], 3)
            result[f"ratio_w{r['workers']}_over_w{base['workers']}_wall"] = round(r["images_per_min"] / base["images_per_min"], 3)
    if args.ray:
        w = max(counts)
        out = args.out / f"ray-w{w}"
        if out.exists():
            import shutil

            shutil.rmtree(out)
        ray_run = timed_run(src, out, settings, w, engine="ray")
        print(json.dumps(ray_run), flush=True)
        local = next(r for r in runs if r["workers"] == w)
        result["ray"] = ray_run
        result["ray_over_local"] = round(ray_run["images_per_min"] / local["images_per_min"], 3)
        result["ray_outputs_identical"] = same_outputs(args.out / f"local-w{w}", out)
    result["ledger"] = ledger_overhead(args.out)
    per_image_s = runs[0]["wall_s"] / max(runs[0]["images"], 1)
    result["ledger"]["share_of_image_time"] = round(result["ledger"]["per_image_ms"] / 1000 / per_image_s, 5) if per_image_s else None
    (args.out / "bench_batch.json").write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=1))


if __name__ == "__main__":
    main()
