"""Perception's confusion on the visible real folders: what each perception backend detects in
images whose folder names say what is wrong with them (``real_gt/<set>/<degraded>``,
``real_nogt/<set>``) and in clean photos that were never a training pool (``clean/kodak24``,
``clean/set5_hr``).

A benchmark script, not a test: it prints a markdown table per backend (rows: the folder's label,
columns: the share of its images in which each degradation was found) and writes the numbers to
``--out`` as JSON. Folders whose name names no degradation (``real_nogt/real47``: mixed) are shown
with the label ``mixed``.

Usage:
    python scripts/perception_confusion.py --data ../shared/data --out out/confusion.json
    python scripts/perception_confusion.py --backend learned --model out/perception-ship --limit 10
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from restora.bench.real import task_for_set
from restora.data import data_dir, image_files
from restora.imageio import load_image
from restora.taxonomy import DEGRADATION_FOR, Degradation

DEGS = [d.value for d in Degradation]


def folders(data: Path) -> list[tuple[str, str, Path]]:
    """(label, name, folder) of every folder measured."""
    out = []
    for set_dir in sorted((data / "real_gt").iterdir()) if (data / "real_gt").is_dir() else []:
        deg = [p for p in sorted(set_dir.iterdir()) if p.is_dir() and p.name.lower() not in ("gt", "target", "clean", "groundtruth")]
        if len(deg) != 1:
            continue
        task = task_for_set(set_dir, deg[0])
        out.append((str(DEGRADATION_FOR[task]) if task else "mixed", f"real_gt/{set_dir.name}", deg[0]))
    for set_dir in sorted((data / "real_nogt").iterdir()) if (data / "real_nogt").is_dir() else []:
        task = task_for_set(set_dir, set_dir)
        out.append((str(DEGRADATION_FOR[task]) if task else "mixed", f"real_nogt/{set_dir.name}", set_dir))
    for name in ("kodak24", "set5_hr"):
        if (data / "clean" / name).is_dir():
            out.append(("clean", f"clean/{name}", data / "clean" / name))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=None, help="the shared data folder (default: RESTORA_DATA or ../shared/data)")
    ap.add_argument("--backend", choices=("classical", "learned"), default="classical")
    ap.add_argument("--model", type=Path, default=None, help="learned: a run folder of restora train perception (default: the shipped network)")
    ap.add_argument("--limit", type=int, default=None, help="first N images of each folder")
    ap.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = ap.parse_args()
    data = args.data or data_dir()
    from restora.perception import backend

    perceive = backend(args.model if args.backend == "learned" and args.model else args.backend)
    rows = []
    t0 = time.perf_counter()
    for label, name, folder in folders(data):
        files = image_files(folder)[: args.limit]
        found = dict.fromkeys(DEGS, 0)
        clean = 0
        for f in files:
            report = perceive(load_image(f).pixels)
            present = [x.degradation.value for x in report.present()]
            clean += not present
            for d in present:
                found[d] += 1
        n = max(1, len(files))
        rows.append({"label": label, "folder": name, "images": len(files), "clean": round(100 * clean / n, 1), **{d: round(100 * found[d] / n, 1) for d in DEGS}})
    print(f"# perception confusion: {args.backend}{' ' + str(args.model) if args.model else ''} ({time.perf_counter() - t0:.0f} s)\n")
    print("| folder | label | images | " + " | ".join(DEGS) + " | read clean |")
    print("|---|---|---:|" + "---:|" * (len(DEGS) + 1))
    for r in rows:
        cells = [f"**{r[d]:.0f}**" if d == r["label"] else f"{r[d]:.0f}" for d in DEGS]
        clean = f"**{r['clean']:.0f}**" if r["label"] == "clean" else f"{r['clean']:.0f}"
        print(f"| {r['folder']} | {r['label']} | {r['images']} | " + " | ".join(cells) + f" | {clean} |")
    print("\nCells: % of the folder's images in which perception found that degradation (bold: the folder's own label).")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"backend": args.backend, "model": str(args.model) if args.model else None, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
