"""How the two readings of haze do on synthesized validation data: the classical whole-image haze
score, the shipped network at its calibrated threshold, either of them, both, and where the
network alone may add a finding: the lowest threshold at which it adds at most ``--max-added``
false alarms to the classical reading (``restora.perception.learned.EITHER_READING``).

A benchmark script, not a test. The samples are those of the shipped network's own validation
split (``restora train perception``'s held-out photos of the clean pool, its seed and config, read
from ``restora/perception/model/model.json``): never the benchmark photos. Prints recall (samples
with haze that a reading flags) and false alarms (samples without haze that it flags), and writes
one row per sample to ``--out``.

Usage:
    python scripts/haze_readings.py --n 600 --out out/haze_readings.json
    python scripts/haze_readings.py --model out/perception-run --n 600   # then put its value in that run's model.json as "either_reading"
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from restora.perception import backend


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=600, help="validation samples to read")
    ap.add_argument("--out", type=Path, default=Path("out/haze_readings.json"))
    ap.add_argument("--model", type=Path, default=None, help="a run folder of restora train perception (default: the shipped network)")
    ap.add_argument("--max-added", type=float, default=0.01, help="false alarms the network alone may add (share of samples without haze)")
    args = ap.parse_args()

    from restora.trainer import perception as tp

    folder = args.model or Path(tp.__file__).parents[1] / "perception" / "model"
    card = json.loads((folder / "model.json").read_text())
    fields = tp.PerceptionTrainConfig.__dataclass_fields__
    cfg = tp.PerceptionTrainConfig(**{k: v for k, v in {**card["config"], "out": "unused"}.items() if k in fields})
    _, val = tp.split_photos(tp.clean_images(cfg.clean), cfg.seed, cfg.val_fraction)
    ds = tp.SynthDataset(val, cfg, "val")
    learned = backend(str(args.model)) if args.model else backend("learned")
    threshold = float(card["thresholds"]["haze"])
    rows = []
    for i in range(args.n):
        image, labels = ds.image_and_labels(i)
        report = learned(image)  # runs the classical estimators too: its judge is their reading
        p = float(report.findings["haze"].evidence["learned_probability"])
        rows.append({"index": i, "labels": sorted(labels), "haze": "haze" in labels,
                     "classical": bool(report.judge.findings["haze"].present), "network": p >= threshold, "p": round(p, 4)})
    y = np.array([r["haze"] for r in rows])
    c = np.array([r["classical"] for r in rows])
    m = np.array([r["network"] for r in rows])
    print(f"{args.n} validation samples ({int(y.sum())} with haze), network threshold {threshold}")
    print("| reading | recall | false alarms |\n|---|---:|---:|")
    for name, d in (("classical", c), ("network", m), ("either", c | m), ("both", c & m)):
        print(f"| {name} | {d[y].mean():.3f} ({int(d[y].sum())}/{int(y.sum())}) | {d[~y].mean():.3f} ({int(d[~y].sum())}/{int((~y).sum())}) |")
    p = np.array([r["p"] for r in rows])
    for t in np.arange(threshold, 1.0, 0.01):
        alone = (p >= t) & ~c
        if alone[~y].mean() <= args.max_added:
            e = c | (p >= t)
            print(f"| either, network alone at >= {t:.2f} (adds {alone[~y].mean():.3f}) | {e[y].mean():.3f} | {e[~y].mean():.3f} |")
            break
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=0))


if __name__ == "__main__":
    main()
