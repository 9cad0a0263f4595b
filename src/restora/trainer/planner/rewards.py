"""The GRPO reward functions: plain callables ``fn(completions, **columns) -> list[float | None]``
(TRL's contract), each logged on its own by TRL and summed with the config's weights, never
multiplied. A function returns None for the rows it does not judge (TRL skips them).

* :func:`valid` (every row): 1 when the reply is a valid action (action rows: the registry's
  schema, :func:`restora.planners.schema.parse_action`) or a valid perception, else 0;
* :func:`perception_f1` (perception rows): F1 of the degradations said present against the
  sample's true labels (1 when both are empty; an invalid reply 0);
* :func:`step_quality` (action rows): the proposed step is **executed** with the real tool library
  on the row's current image and scored against the clean image with the teacher's score
  (0.7 fidelity: PSNR and SSIM, + 0.3 no-reference quality, :func:`restora.planners.teacher.teacher_score`);
  the reward is the score's change over ``GAIN_SCALE``, clipped to [-1, 1]. A rollback is scored
  as going back to the image before the last kept step, a stop as no change; an invalid reply 0;
* :func:`penalties` (action rows): -1 for proposing a (tool, params) the history rolled back
  (banned), -0.5 for stopping when the teacher still had a step to take, -0.5 for a tool step
  when the teacher stopped.

Examples:
    >>> r = Rewards(Path("out/synth"))                                                        # doctest: +SKIP
    >>> r.valid([[{"role": "assistant", "content": '{"kind":"stop"}'}]], question=["action"])  # doctest: +SKIP
    [1.0]
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np

from restora.planners.base import choice_key
from restora.planners.schema import ActionError, parse_action
from restora.planners.vlm import parse_perception

GAIN_SCALE = 0.05
"""A change of the teacher score by this much is a reward of 1 (a clearly good step on these crops)."""
PERCEPTION = "perception"


def completion_text(completion: Any) -> str:
    """The reply text of a TRL completion (conversational: a list of messages; or a string)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion:
        content = completion[-1].get("content", "")
        if isinstance(content, list):
            return "".join(p.get("text", "") or "" for p in content if isinstance(p, dict))
        return str(content)
    return ""


def _labels(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else dict(value or {})


def _f1(found: set[str], true: set[str]) -> float:
    if not found and not true:
        return 1.0
    tp = len(found & true)
    return 2 * tp / (len(found) + len(true))


class Rewards:
    """The reward functions over one synth folder (images, traces) with the tools and scorer loaded once."""

    def __init__(self, data: Path, catalogue: dict[str, Any] | None = None) -> None:
        from restora.trainer.planner.evaluate import catalogue as default_catalogue

        self.data = Path(data)
        self.catalogue = catalogue or default_catalogue()
        self._images: dict[str, np.ndarray] = {}
        self._scores: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self.tool_runs = 0

    # -- helpers ---------------------------------------------------------------------------------
    def image(self, rel: str) -> np.ndarray:
        from restora.imageio import load_image

        if rel not in self._images:
            self._images[rel] = load_image(self.data / rel).pixels
        return self._images[rel]

    def teacher(self, image: np.ndarray, clean_rel: str) -> float:
        from restora.batch.workers import process_tools
        from restora.planners.teacher import teacher_score
        from restora.quality.fidelity import psnr, ssim

        clean = self.image(clean_rel)
        _, scorer = process_tools()
        return teacher_score(psnr(image, clean), ssim(image, clean), scorer.score(image).nr)

    def _score_of(self, key: tuple[str, str], make) -> float:
        with self._lock:
            if key not in self._scores:
                self._scores[key] = make()
            return self._scores[key]

    def _previous_image(self, trace_rel: str) -> str | None:
        """The image before the last kept step of a row's history (what a rollback returns to)."""
        from restora.traces import read_trace

        steps = [r for r in read_trace(self.data / trace_rel) if r.event == "step"][:-1]  # the last step is the target
        kept = [s for s in steps if s.decision == "accept"]
        return f"images/{kept[-1].image_before[4:]}.png" if kept and kept[-1].image_before else None

    # -- the reward functions -----------------------------------------------------------------------
    def valid(self, completions: list[Any], question: list[str], **_: Any) -> list[float | None]:
        out: list[float | None] = []
        for c, q in zip(completions, question, strict=True):
            text = completion_text(c)
            try:
                parse_perception(text) if q == PERCEPTION else parse_action(text, self.catalogue)
                out.append(1.0)
            except ActionError:
                out.append(0.0)
        return out

    def perception_f1(self, completions: list[Any], question: list[str], labels: list[Any], **_: Any) -> list[float | None]:
        out: list[float | None] = []
        for c, q, lab in zip(completions, question, labels, strict=True):
            if q != PERCEPTION:
                out.append(None)
                continue
            try:
                found = {k for k, v in parse_perception(completion_text(c))["findings"].items() if v["present"]}
            except ActionError:
                out.append(0.0)
                continue
            out.append(_f1(found, set(_labels(lab))))
        return out

    def step_quality(self, completions: list[Any], question: list[str], current: list[str], clean: list[str], trace: list[str], **_: Any) -> list[float | None]:
        out: list[float | None] = []
        for c, q, cur, cl, tr in zip(completions, question, current, clean, trace, strict=True):
            if q == PERCEPTION:
                out.append(None)
                continue
            try:
                action = parse_action(completion_text(c), self.catalogue)
            except ActionError:
                out.append(0.0)
                continue
            before = self._score_of((cur, ""), lambda cur=cur, cl=cl: self.teacher(self.image(cur), cl))
            if action.kind == "stop":
                after = before
            elif action.kind == "rollback":
                prev = self._previous_image(tr)
                after = before if prev is None else self._score_of((prev, ""), lambda prev=prev, cl=cl: self.teacher(self.image(prev), cl))
            else:
                after = self._score_of((cur, choice_key(action.tool or "", action.params)), lambda a=action, cur=cur, cl=cl: self._run(a, cur, cl))
            out.append(float(np.clip((after - before) / GAIN_SCALE, -1.0, 1.0)))
        return out

    def _run(self, action: Any, current_rel: str, clean_rel: str) -> float:
        from restora.batch.workers import process_tools

        box, _ = process_tools()
        self.tool_runs += 1
        try:
            result = box.run(action.tool, self.image(current_rel), action.params)
        except Exception:  # noqa: BLE001 - a tool that fails on this image is a step that did nothing good
            return self._score_of((current_rel, ""), lambda: self.teacher(self.image(current_rel), clean_rel)) - GAIN_SCALE
        image = result.image if hasattr(result, "image") else result
        return self.teacher(np.clip(image, 0, 1).astype(np.float32), clean_rel)

    def penalties(self, completions: list[Any], question: list[str], prompts: list[Any], target: list[str], **_: Any) -> list[float | None]:
        from restora.trainer.planner.data import state_of

        out: list[float | None] = []
        for c, q, p, t in zip(completions, question, prompts, target, strict=True):
            if q == PERCEPTION:
                out.append(None)
                continue
            try:
                action = parse_action(completion_text(c), self.catalogue)
            except ActionError:
                out.append(0.0)
                continue
            want = json.loads(t)["kind"]
            history = state_of(p).get("history", [])
            banned = {choice_key(h.get("tool") or "", h.get("params") or {}) for h in history if h.get("decision") == "rollback"}
            penalty = 0.0
            if action.kind == "tool" and choice_key(action.tool or "", action.params) in banned:
                penalty -= 1.0
            if action.kind == "stop" and want != "stop":
                penalty -= 0.5
            if action.kind == "tool" and want == "stop":
                penalty -= 0.5
            out.append(penalty)
        return out

    def functions(self) -> list[Any]:
        """The four reward functions, named as TRL logs them."""
        return [self.valid, self.perception_f1, self.step_quality, self.penalties]
