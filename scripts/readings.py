"""How the network's and the classical estimators' readings do on synthesized validation data, per
degradation, and where one may add findings to the other: the values of
``restora.perception.learned.EITHER_READING`` (the network alone, for the frame's tone, which the
classical whole-image estimators decide) and ``CLASSICAL_ALONE`` (the classical estimators alone,
for what the network decides). The "both" column is what ``BOTH_READINGS`` asks of dark.

Each is the loosest setting at which the added reading brings at most ``--max-added`` false alarms
(share of the samples without that degradation) beyond the deciding one: a network probability
threshold, or a minimum classical severity. A degradation whose added reading gains less than
``--min-gain`` recall at that setting gets none (a little recall is not worth a new way to be
wrong on real photos). Dark never gets the network alone: synthesized data cannot show what it
gets wrong there (the shadows of dim but well-exposed real rooms; see ``WHOLE_IMAGE``).

A benchmark script, not a test. The samples are those of the shipped network's own validation
split (``restora train perception``'s held-out photos of the clean pool, its seed and config, read
from ``restora/perception/model/model.json``): never the benchmark photos. Prints recall (samples
with the degradation that a reading flags) and false alarms (samples without it that it flags),
and writes one row per sample to ``--out``.

Usage:
    python scripts/readings.py --n 3000 --out out/readings.json
    python scripts/readings.py --model out/perception-run --n 3000   # then put its values in that run's model.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from _pool import validation_split

from restora.perception import backend
from restora.perception.learned import BOTH_READINGS, DEGRADATIONS, WHOLE_IMAGE


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=3000, help="validation samples to read")
    ap.add_argument("--out", type=Path, default=Path("out/readings.json"))
    ap.add_argument("--model", type=Path, default=None, help="a run folder of restora train perception (default: the shipped network)")
    ap.add_argument("--max-added", type=float, default=0.01, help="false alarms the added reading may bring (share of samples without the degradation)")
    ap.add_argument("--min-gain", type=float, default=0.03, help="recall the added reading must bring to be used")
    args = ap.parse_args()

    from restora.trainer import perception as tp

    _, card, cfg, val = validation_split(args.model)
    ds = tp.SynthDataset(val, cfg, "val")
    learned = backend(str(args.model)) if args.model else backend("learned")
    rows = []
    for i in range(args.n):
        image, labels = ds.image_and_labels(i)
        report = learned(image)  # runs the classical estimators too: its judge is their reading
        row: dict = {"index": i, "labels": sorted(labels)}
        for d in DEGRADATIONS:
            f, c = report.findings[d], report.judge.findings[d]
            p = f.evidence.get("probability", f.evidence.get("learned_probability"))
            row[d] = {"p": round(float(p), 4), "classical": bool(c.present), "classical_severity": round(float(c.severity), 4)}
        rows.append(row)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=0))

    print(f"{args.n} validation samples; the added reading may bring at most {args.max_added:.3f} false alarms")
    print("| degradation | with it | network | classical | either | both | added reading | either, added as set |")
    print("|---|---:|---|---|---|---|---|---|")
    either_reading, classical_alone = {}, {}
    for d in DEGRADATIONS:
        y = np.array([d in r["labels"] for r in rows])
        if y.all() or not y.any():
            continue
        p = np.array([r[d]["p"] for r in rows])
        c = np.array([r[d]["classical"] for r in rows])
        s = np.array([r[d]["classical_severity"] for r in rows])
        m = p >= float(card["thresholds"][d])

        def rf(v):
            return f"{v[y].mean():.2f} / {v[~y].mean():.3f}"

        if d in BOTH_READINGS:  # needs the network's agreement: the network alone never adds it
            print(f"| {d} | {int(y.sum())} | {rf(m)} | {rf(c)} | {rf(m | c)} | {rf(m & c)} | never (real rooms) | |")
            continue
        if d in WHOLE_IMAGE:  # classical decides; the network alone may add above a stricter threshold
            base, name = c, "network alone at p >="
            settings = [(t, p >= t) for t in np.arange(float(card["thresholds"][d]), 1.0, 0.01)]
        else:  # the network decides; the classical estimators alone may add above a minimum severity
            base, name = m, "classical alone at severity >="
            settings = [(t, c & (s >= t)) for t in np.arange(0.0, 1.0, 0.01)]
        added = "none"
        cells = ""
        for t, extra in settings:
            if (extra & ~base)[~y].mean() <= args.max_added:
                e = base | extra
                if e[y].mean() >= base[y].mean() + args.min_gain:
                    added = f"{name} {t:.2f}"
                    cells = rf(e)
                    (either_reading if d in WHOLE_IMAGE else classical_alone)[d] = round(float(t), 2)
                break
        print(f"| {d} | {int(y.sum())} | {rf(m)} | {rf(c)} | {rf(m | c)} | {rf(m & c)} | {added} | {cells} |")
    print("EITHER_READING =", either_reading)
    print("CLASSICAL_ALONE =", classical_alone)


if __name__ == "__main__":
    main()
