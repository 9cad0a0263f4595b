"""What a language-model planner reads: the system prompt (the tool catalogue, generated from the
registry) and the per-step user text (budget, scores, history), plus chat messages in the format
Qwen-VL trainers and servers take.

Synthesized training rows (``restora synth``) and the live VLM planner build their prompts here,
so what the planner is trained on is what it is asked at run time.

Examples:
    >>> from restora.tools import list_tools
    >>> catalogue = {n: t.describe() for n, t in list_tools().items()}
    >>> "denoise_srmd" in system_prompt(catalogue)
    True
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

SYSTEM_HEADER = """You are restora's planner: you restore a damaged photo one tool call at a time.
Each turn you see the current image, the quality scores of the current image, and the steps so far
with what happened to them. Answer with exactly one JSON object, no other text:
  {"kind": "tool", "tool": NAME, "task": TASK, "params": {...}, "reason": "..."}  run one tool
  {"kind": "rollback", "reason": "..."}  undo the last kept step: it made the image worse
  {"kind": "stop", "reason": "..."}  the image is done (also for a photo with nothing to fix)
Fix what is wrong in the reverse order it happened: compression first, then blur, noise and
resolution, then scene effects (rain, haze, low light). Never repeat a step that was rolled back
with the same params. Params omitted take the tool's defaults."""


def _param_line(name: str, spec: Mapping[str, Any]) -> str:
    kinds = []
    for option in spec.get("anyOf", [spec]):
        if "enum" in option:
            kinds.append("|".join(json.dumps(v) for v in option["enum"]))
        elif option.get("type") == "null":
            kinds.append("null")
        else:
            rng = ""
            lo = option.get("minimum", option.get("exclusiveMinimum"))
            hi = option.get("maximum", option.get("exclusiveMaximum"))
            if lo is not None or hi is not None:
                rng = f" {lo if lo is not None else ''}..{hi if hi is not None else ''}"
            kinds.append(f"{option.get('type', 'any')}{rng}")
    default = json.dumps(spec.get("default")) if "default" in spec else "required"
    return f"    {name}: {' or '.join(kinds)} (default {default})"


def catalogue_text(catalogue: Mapping[str, Mapping[str, Any]]) -> str:
    """The tools, grouped by task, with their params (from each tool's pydantic schema)."""
    by_task: dict[str, list[str]] = {}
    for name in sorted(catalogue):
        by_task.setdefault(str(catalogue[name]["task"]), []).append(name)
    lines = []
    for task in sorted(by_task):
        lines.append(f"task {task}:")
        for name in by_task[task]:
            desc = catalogue[name]
            lines.append(f"  {name}: {desc.get('summary', '')}")
            for pname, spec in desc.get("params", {}).get("properties", {}).items():
                lines.append(_param_line(pname, spec))
    return "\n".join(lines)


def system_prompt(catalogue: Mapping[str, Mapping[str, Any]]) -> str:
    return f"{SYSTEM_HEADER}\n\nTools:\n{catalogue_text(catalogue)}"


def user_text(
    *,
    step: int,
    steps_left: int,
    scores: Mapping[str, Any] | None,
    history: Sequence[Mapping[str, Any]],
    request: str | None = None,
) -> str:
    """The per-turn text: the user's request, budget, current scores and the history so far."""
    score_view = None
    if scores:
        score_view = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in scores.items() if k in ("overall", "nr", "degradation")}
    hist = [
        {
            "step": h.get("step"),
            "tool": h.get("tool"),
            "params": h.get("params", {}),
            "decision": h.get("decision"),
            **({"gain": round(float(h["gain"]), 4)} if h.get("gain") is not None else {}),
        }
        for h in history
    ]
    body = {"step": step, "steps_left": steps_left, "scores": score_view, "history": hist}
    if request:
        body = {"request": request, **body}
    return "Current image above. State:\n" + json.dumps(body, separators=(",", ":"))


def chat_messages(system: str, user: str, answer: str | None = None) -> list[dict[str, Any]]:
    """Chat messages with one image placeholder in the user turn (TRL / Qwen-VL conversational
    format: the pixels travel in a separate ``images`` column, in order)."""
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": [{"type": "text", "text": system}]},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": user}]},
    ]
    if answer is not None:
        messages.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    return messages
