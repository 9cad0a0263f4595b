"""The planner trainers' rows, read from a ``restora synth`` folder.

Two questions, as the live planner (:class:`restora.planners.vlm.VLMPlanner`) asks them:

* **action** rows: the SFT export's chat rows (system prompt with the tool catalogue, the image,
  the state; the answer is the teacher's JSON action), made by the live prompt builder;
* **perception** rows: the planner's perception question (:func:`restora.planners.vlm.perception_messages`)
  on every picture whose labels are known (the degraded input of a sample, before any step),
  answered from :func:`restora.degrade.compose`'s labels. Without them a fine-tuned model gives
  no valid perception, and the live planner falls back to the heuristic before it asks for a step.

Every row holds exactly one image, capped at ``max_side`` (:func:`restora.planners.hf.cap_image`).

Examples:
    >>> rows = action_rows(Path("out/synth"), "val")              # doctest: +SKIP
    >>> rows[0]["scenario"], len(rows[0]["prompt"])               # doctest: +SKIP
    ('plan', 2)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from restora.planners.hf import MAX_IMAGE_SIDE, cap_image
from restora.planners.vlm import perception_answer, perception_messages

PERCEPTION = "perception"
"""The ``scenario`` of perception rows (the action rows carry RestoreAgent's five)."""


class DataError(ValueError):
    """A synth folder that cannot be trained on (missing export, bad row)."""


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise DataError(f"{path} not found: is {path.parent.parent} a `restora synth` folder? (make one with `restora synth --clean DIR --out OUT --n N`)")
    rows = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{i}: not JSON ({e.msg})") from None
    return rows


def _one_image(row: dict[str, Any], where: str) -> str:
    images = row.get("images") or []
    if len(images) != 1:
        raise DataError(f"{where} row {row.get('id')}: one image per prompt, got {len(images)}")
    return str(images[0])


def action_rows(data: Path, split: str) -> list[dict[str, Any]]:
    """The SFT export's rows as prompt/completion pairs (image paths relative to ``data``)."""
    out = []
    for row in read_jsonl(Path(data) / "sft" / f"{split}.jsonl"):
        messages = row["messages"]
        if len(messages) != 3 or messages[-1]["role"] != "assistant":
            raise DataError(f"sft/{split} row {row.get('id')}: expected system, user, assistant messages")
        out.append(
            {
                "id": row["id"],
                "scenario": row["scenario"],
                "prompt": messages[:2],
                "completion": messages[2:],
                "image": _one_image(row, f"sft/{split}"),
                "target": messages[2]["content"][0]["text"],
            }
        )
    return out


def perception_rows(data: Path, split: str) -> list[dict[str, Any]]:
    """One perception row per distinct picture with known labels (a sample's degraded input)."""
    seen: set[str] = set()
    out = []
    for row in read_jsonl(Path(data) / "grpo" / f"{split}.jsonl"):
        if row.get("current") != row.get("degraded") or row["current"] in seen:
            continue
        seen.add(row["current"])
        answer = perception_answer(row.get("labels") or {})
        messages = perception_messages(answer)
        out.append(
            {
                "id": f"{row['id']}-perception",
                "scenario": PERCEPTION,
                "prompt": messages[:2],
                "completion": messages[2:],
                "image": row["current"],
                "target": answer,
                "labels": row.get("labels") or {},
            }
        )
    return out


def grpo_rows(data: Path, split: str) -> list[dict[str, Any]]:
    """The GRPO export's rows (what the rewards read) plus perception rows, each with a ``question``."""
    rows = []
    for row in read_jsonl(Path(data) / "grpo" / f"{split}.jsonl"):
        _one_image(row, f"grpo/{split}")
        rows.append({**row, "question": "action", "image": row["images"][0]})
    for p in perception_rows(data, split):
        rows.append({"id": p["id"], "scenario": PERCEPTION, "question": PERCEPTION, "prompt": p["prompt"], "image": p["image"], "labels": p["labels"], "target": p["target"]})
    return rows


def load_image(data: Path, rel: str, max_side: int = MAX_IMAGE_SIDE) -> Any:
    """The PIL image at ``data/rel``, capped at ``max_side``."""
    from PIL import Image

    path = Path(data) / rel
    if not path.is_file():
        raise DataError(f"{path} not found (the synth folder's images/ is incomplete)")
    with Image.open(path) as im:
        return cap_image(im.convert("RGB"), max_side)


def state_of(prompt: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON state in an action prompt's user text (step, budget, scores, history)."""
    for part in prompt[-1]["content"]:
        if part.get("type") == "text" and "State:\n" in part.get("text", ""):
            return json.loads(part["text"].split("State:\n", 1)[1])
    return {}
