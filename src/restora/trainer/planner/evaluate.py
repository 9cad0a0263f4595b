"""``restora eval planner``: how well a planner answers the synthesized rows it was not trained on.

Each validation row is asked the way the live planner asks it (the same messages, one image, the
action schema: a server constrains its reply with it, the in-process backend does not), and the
reply is validated by the same code (:func:`restora.planners.schema.parse_action`,
:func:`restora.planners.vlm.parse_perception`). Figures:

* ``valid_rate``: share of action replies that are a valid action;
* ``action_accuracy``: share whose action is the teacher's (same kind, and the same tool for a
  tool step; params are not compared), overall and per scenario (plan, adjust, rollback,
  avoid_repeat, stop); ``task_accuracy``: the same task (or kind);
* ``decision_accuracy``: the decision read from the start of the reply (``{"kind": ..., "tool": ...``)
  against the teacher's, valid reply or not: what the model chose, which a server's constrained
  decoding would complete into a valid action (an invalid reply without a readable decision is wrong);
* ``perception``: valid share and F1 of ``present`` against the true labels (micro over
  degradations) on the perception rows;
* baselines on the same rows: ``chance`` (a uniform pick among the tools, rollback and stop) and
  ``constant_best`` (the best single answer given to every row: what a model that ignores its
  input can reach).

Examples:
    >>> from restora.planners.hf import HFBackend
    >>> m = evaluate_backend(HFBackend("out/tiny-planner"), Path("out/synth"), limit=16)   # doctest: +SKIP
    >>> m["action_accuracy"]["overall"]                                                     # doctest: +SKIP
    0.0
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from restora.planners.hf import MAX_IMAGE_SIDE
from restora.planners.schema import ActionError, action_schema, parse_action
from restora.planners.teacher import SCENARIOS
from restora.planners.vlm import parse_perception, perception_schema
from restora.taxonomy import Degradation
from restora.trainer.planner.data import action_rows, load_image, perception_rows


def catalogue() -> dict[str, Any]:
    """The tool catalogue the synthesized rows were made with (every single-task tool here)."""
    from restora.batch.workers import process_tools

    return {n: t.describe() for n, t in process_tools()[0].catalogue().items()}


def action_key(action: Any) -> str:
    """``tool:NAME`` for a tool step, else the kind (``stop``, ``rollback``)."""
    return f"tool:{action.tool}" if action.kind == "tool" else str(action.kind)


_DECISION = re.compile(r'^\s*\{\s*"kind"\s*:\s*"(tool|stop|rollback)"(?:\s*,\s*"tool"\s*:\s*"([A-Za-z0-9_]+)")?')


def decision_key(reply: str) -> str | None:
    """The decision at the start of a reply (``tool:NAME``, ``stop``, ``rollback``), None when unreadable.

    Examples:
        >>> decision_key('{"kind":"tool","tool":"denoise_nlm","params":{"sigma":'), decision_key('{"kind":"stop","rea')
        ('tool:denoise_nlm', 'stop')
        >>> decision_key('{"kind":"dejpeg"') is None
        True
    """
    m = _DECISION.match(reply)
    if m is None:
        return None
    if m.group(1) == "tool":
        return f"tool:{m.group(2)}" if m.group(2) else None
    return m.group(1)


def _task_key(action: Any) -> str:
    return f"task:{action.task}" if action.kind == "tool" else str(action.kind)


def select(rows: list[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
    """At most ``limit`` rows spread evenly over ``rows`` (all of them when None)."""
    if limit is None or limit >= len(rows):
        return rows
    step = len(rows) / limit
    return [rows[int(i * step)] for i in range(limit)]


def f1(pred: list[set[str]], true: list[set[str]]) -> float | None:
    """Micro F1 of predicted against true sets of present degradations (None without positives or predictions)."""
    tp = sum(len(p & t) for p, t in zip(pred, true, strict=True))
    fp = sum(len(p - t) for p, t in zip(pred, true, strict=True))
    fn = sum(len(t - p) for p, t in zip(pred, true, strict=True))
    return None if tp + fp + fn == 0 else round(2 * tp / (2 * tp + fp + fn), 4)


def evaluate_backend(
    backend: Any,
    data: Path,
    split: str = "val",
    *,
    limit: int | None = None,
    perception_limit: int | None = None,
    max_side: int = MAX_IMAGE_SIDE,
    out: Path | None = None,
    on_row: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Ask ``backend`` (:class:`restora.planners.vlm.Backend`) every selected row; return the figures
    (and write ``out/metrics.json`` and ``out/predictions.jsonl`` when ``out`` is given)."""
    data = Path(data)
    cat = catalogue()
    schema = action_schema(cat)
    arows = select(action_rows(data, split), limit)
    prows = select(perception_rows(data, split), perception_limit if perception_limit is not None else limit)
    total = len(arows) + len(prows)
    predictions: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for i, row in enumerate(arows + prows):
        image = np.asarray(load_image(data, row["image"], max_side), dtype=np.float32) / 255.0  # the backends' image contract
        q0 = time.perf_counter()
        perception = row["scenario"] == "perception"
        try:
            reply = backend.complete(row["prompt"], [image], perception_schema() if perception else schema, "restora_perception" if perception else "restora_action")
            error = None
        except Exception as e:  # noqa: BLE001 - a backend failure is a failed row, reported, never silent
            reply, error = "", f"backend: {type(e).__name__}: {e}"
        pred: dict[str, Any] = {"id": row["id"], "scenario": row["scenario"], "reply": reply[:600], "target": row["target"], "seconds": round(time.perf_counter() - q0, 3)}
        if perception:
            truth = sorted(row["labels"])
            pred["true"] = truth
            try:
                found = parse_perception(reply)["findings"]
                pred["found"] = sorted(k for k, v in found.items() if v["present"])
                pred["valid"] = True
            except ActionError as e:
                pred["valid"], pred["error"] = False, error or str(e)
        else:
            want = parse_action(row["target"], cat)
            pred["want"] = action_key(want)
            pred["want_task"] = _task_key(want)
            pred["decision"] = decision_key(reply)
            try:
                got = parse_action(reply, cat)
                pred["got"], pred["got_task"], pred["valid"] = action_key(got), _task_key(got), True
            except ActionError as e:
                pred["got"], pred["got_task"], pred["valid"], pred["error"] = None, None, False, error or str(e)
        predictions.append(pred)
        if on_row is not None:
            on_row(i + 1, total)
    metrics = summarize(predictions, n_choices=len(cat) + 2)
    metrics.update({"split": split, "backend": getattr(backend, "name", type(backend).__name__), "seconds": round(time.perf_counter() - t0, 1)})
    if out is not None:
        from restora.imageio import write_text_atomic

        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out / "predictions.jsonl", "".join(json.dumps(p) + "\n" for p in predictions))
        write_text_atomic(out / "metrics.json", json.dumps(metrics, indent=1) + "\n")
    return metrics


def summarize(predictions: list[dict[str, Any]], n_choices: int) -> dict[str, Any]:
    """The figures of a list of predictions (see the module docstring)."""
    actions = [p for p in predictions if p["scenario"] != "perception"]
    percs = [p for p in predictions if p["scenario"] == "perception"]
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for p in actions:
        by[p["scenario"]].append(p)

    def acc(rows: list[dict[str, Any]], got: str = "got", want: str = "want") -> float | None:
        return round(sum(p[got] == p[want] for p in rows) / len(rows), 4) if rows else None

    wants = Counter(p["want"] for p in actions)
    valid_p = [p for p in percs if p["valid"]]
    # an invalid perception reply finds nothing: it counts as missing every true degradation
    perc_f1 = f1([set(p.get("found", [])) for p in percs], [set(p["true"]) for p in percs]) if percs else None
    return {
        "rows": len(actions),
        "valid_rate": round(sum(p["valid"] for p in actions) / len(actions), 4) if actions else None,
        "action_accuracy": {"overall": acc(actions), **{s: acc(by[s]) for s in SCENARIOS if by[s]}},
        "task_accuracy": acc(actions, "got_task", "want_task"),
        "decision_accuracy": {"overall": acc(actions, "decision"), **{s: acc(by[s], "decision") for s in SCENARIOS if by[s]}},
        "scenarios": {s: len(by[s]) for s in SCENARIOS if by[s]},
        "baselines": {
            "chance": round(1.0 / n_choices, 4),
            "constant_best": round(wants.most_common(1)[0][1] / len(actions), 4) if actions else None,
            "constant_best_answer": wants.most_common(1)[0][0] if actions else None,
        },
        "perception": {
            "rows": len(percs),
            "valid_rate": round(len(valid_p) / len(percs), 4) if percs else None,
            "f1": perc_f1,
            "f1_valid_only": f1([set(p["found"]) for p in valid_p], [set(p["true"]) for p in valid_p]) if valid_p else None,
            "degradations": [d.value for d in Degradation],
        },
        "seconds_per_question": round(sum(p["seconds"] for p in predictions) / len(predictions), 3) if predictions else None,
    }
