"""Copy a ``restora train perception`` run into the package as the shipped default perception.

Writes ``src/restora/perception/model/``: ``model.safetensors``, ``model.json`` (the run's card plus
the weights' sha256, the command that made them, the data and its terms) and ``CARD.md`` (the same
for people). The loader checks the checksum on every load.

Usage:
    python scripts/ship_perception.py out/perception-cam \\
        --command "restora train perception --out out/perception-cam --steps 10000 --eval-every 1000 --checkpoint-every 500"
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

DEST = Path(__file__).resolve().parents[1] / "src" / "restora" / "perception" / "model"

TERMS = (
    "Trained only on pictures synthesized from the shared data's clean/cbsd68 (CBSD68, Berkeley segmentation "
    "photos: BSDS terms, research / non-commercial use) and clean/live1 (LIVE1 reference photos: LIVE IQA "
    "database, free for research use). The weights inherit those terms: research and non-commercial use."
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a finished run folder of restora train perception")
    ap.add_argument("--command", required=True, help="the exact command that made the run")
    ap.add_argument("--dest", type=Path, default=DEST)
    args = ap.parse_args()

    card = json.loads((args.run / "model.json").read_text())
    metrics = json.loads((args.run / "metrics.json").read_text())
    weights = (args.run / "model.safetensors").read_bytes()
    val = metrics["val"]
    # a fine-tune: the run's identity (checkpoint/config.json) holds the checksum of the weights it started from
    init = json.loads((args.run / "checkpoint" / "config.json").read_text()).get("init")
    if init:
        card["init_sha256"] = init.removeprefix("sha256:")
    card.update(
        {
            "sha256": hashlib.sha256(weights).hexdigest(),
            "command": args.command,
            "seed": metrics["config"]["seed"],
            "steps": metrics["steps"],
            "data": {
                "train_photos": len(metrics["photos"]["train"]),
                "val_photos": len(metrics["photos"]["val"]),
                "pool": ["clean/cbsd68", "clean/live1"],
                "held_out": "clean/kodak24 and clean/set5_hr (the benchmark) are never used",
            },
            "terms": TERMS,
            "val_per_degradation": {
                d: {k: v[k] for k in ("auc", "f1_at_threshold", "threshold", "severity_mae")} for d, v in val["degradations"].items()
            },
        }
    )
    args.dest.mkdir(parents=True, exist_ok=True)
    (args.dest / "model.safetensors").write_bytes(weights)
    (args.dest / "model.json").write_text(json.dumps(card, indent=1) + "\n")
    rows = "\n".join(
        f"| {d} | {v['auc']} | {v['f1_at_threshold']} | {v['threshold']} | {v['severity_mae']} |" for d, v in card["val_per_degradation"].items()
    )
    (args.dest / "CARD.md").write_text(
        f"""# restora's default perception network

- **What**: `{card['arch']}` (torchvision, random initial weights{', then fine-tuned' if init else ''}), {card['crop']} px crops at native resolution;
  per degradation a presence probability and a severity, plus noise sigma, JPEG quality, motion-blur length,
  defocus radius and low-res factor. Read by `restora.perception.learned.LearnedPerception`.
- **Made by**: `{card['command']}` (seed {card['seed']}, {card['steps']} steps{f" from the weights of sha256 `{card['init_sha256']}`" if init else ''}, on a 2-core CPU).
- **Data**: pictures synthesized on the fly by `restora.degrade` and `restora.synth.negatives` from
  {card['data']['train_photos']} training photos of the pool (clean/cbsd68 + clean/live1);
  {card['data']['val_photos']} pool photos held out for validation; {card['data']['held_out']}.
- **Terms**: {TERMS}
- **sha256** of `model.safetensors`: `{card['sha256']}` (checked on every load).

## Validation (synthesized from the held-out pool photos)

Mean AUC {val['mean_auc']}, mean F1 at the calibrated thresholds {val['mean_f1']}, clean samples read clean {val['clean_read_clean']}.

| degradation | AUC | F1 at threshold | threshold | severity MAE |
|---|---:|---:|---:|---:|
{rows}

Each threshold maximises F1 on that validation split among those that flag at most
{val.get('max_false_alarm', '?')} of the samples without the degradation; no benchmark photo was used to set anything.

## How restora uses it

- It reads up to 8 native-resolution crops spread over the image and averages them.
- The frame's tone (dark, haze) is decided by the classical whole-image estimators (a crop cannot
  tell an under-exposed photo from the shadows of a dim room); the network's reading is kept as
  evidence.
- Noise tools get the larger of the classical and the learned noise sigma (the white-noise
  estimate misses in-camera, demosaicked noise).
- Steps are judged by the classical reading, not by this network (the perception that chose a
  tool reads its result clean too readily).
- `restora perceive --backend classical` / `RESTORA_PERCEPTION=classical` uses the classical
  estimators alone.
"""
    )
    print(f"shipped {args.run} -> {args.dest} (sha256 {card['sha256'][:12]}...)")


if __name__ == "__main__":
    main()
