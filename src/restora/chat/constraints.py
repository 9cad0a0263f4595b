"""A person's instructions applied to any planner: what it may see, choose and how hard it works.

:class:`ConstrainedPlanner` wraps a planner (the heuristic one or the VLM) for one chat turn. It
changes the :class:`~restora.planners.base.Observation` the planner gets and checks the
:class:`~restora.planners.base.Action` it gives back:

- **tasks to avoid** (``avoid``; ``only`` keeps just the ``do`` tasks; preserving the colours,
  the contrast or the mood avoids the tone tasks, dehaze and low light): their degradations are
  hidden from the report and their tools from the catalogue;
- **tasks asked for** (``do``): a degradation perception did not find is put in the report as
  requested (severity at least :data:`REQUESTED_SEVERITY`), so the heuristic planner tries it;
  the accept rule still judges the step, so a request never makes the photo worse;
- **a task asked for again** in a later turn (``since_step``): its earlier tries and kept steps
  are left out of the history the planner sees, so it is tried afresh;
- **tools** (``use_tools`` ranked first through their ``prior``; ``avoid_tools`` removed);
- **strength**: the numeric strength-like params of the chosen step (:data:`STRENGTH_PARAMS`)
  are scaled, within the tool's bounds; preserving faces, skin, text, details or edges caps it at
  :data:`PRESERVE_STRENGTH`.

An action that breaks the constraints (a VLM that did not listen) is replaced by the heuristic
planner's choice on the constrained observation, marked as a fallback.

Examples:
    >>> from restora.chat.instructions import parse
    >>> from restora.planners.heuristic import HeuristicPlanner
    >>> planner = ConstrainedPlanner(HeuristicPlanner(), parse("only denoise, gentler"))
    >>> planner.allows_task("dehaze"), planner.allows_task("denoise")
    (False, True)
"""

from __future__ import annotations

from typing import Any

from restora.chat.instructions import Instructions
from restora.planners.base import Action, Observation, Planner
from restora.taxonomy import DEGRADATION_FOR, TASK_FOR, Degradation, Task

REQUESTED_SEVERITY = 0.5
"""Severity given to a degradation the person asked to remove that perception did not find."""

STRENGTH_PARAMS = ("strength", "sigma", "denoise", "clahe")
"""Param names scaled by ``Instructions.strength`` (each tool's bounds still hold)."""

PRESERVE_STRENGTH = 0.85
"""The strength cap when the person asked to preserve fine things (faces, skin, text, details, edges)."""

TONE_PRESERVES = frozenset({"colours", "contrast", "mood"})
FINE_PRESERVES = frozenset({"faces", "skin", "text", "details", "edges"})
USE_PRIOR = 10.0
"""``prior`` (expected gain) given to tools the person asked for: ranked before every other tool."""


class ConstrainedPlanner:
    """``inner`` planner under ``instructions`` (see the module docstring)."""

    def __init__(self, inner: Planner, instructions: Instructions, since_step: int | None = None) -> None:
        self.inner = inner
        self.since_step = since_step
        self.instructions = instructions
        self.name = getattr(inner, "name", type(inner).__name__)
        avoid = set(instructions.avoid)
        if set(instructions.preserve) & TONE_PRESERVES:
            avoid |= {Task.DEHAZE, Task.LOW_LIGHT}
        self.avoided = avoid - set(instructions.do)
        strength = instructions.strength
        if set(instructions.preserve) & FINE_PRESERVES:
            strength = min(strength, PRESERVE_STRENGTH)
        self.strength = strength

    def allows_task(self, task: Task | str | None) -> bool:
        if task is None:
            return True
        task = Task(task)
        if task in self.avoided:
            return False
        return not (self.instructions.only and self.instructions.do and task not in self.instructions.do)

    def allows_tool(self, name: str, describe: dict[str, Any]) -> bool:
        if name in self.instructions.avoid_tools:
            return False
        return any(self.allows_task(t) for t in describe.get("tasks") or [describe.get("task")])

    # -- the observation the inner planner sees ----------------------------------------------------
    def constrain(self, obs: Observation) -> Observation:
        """``obs`` with the report, the input's report and the catalogue constrained."""
        catalogue = {}
        for name, desc in obs.catalogue.items():
            if not self.allows_tool(name, desc):
                continue
            if name in self.instructions.use_tools:
                desc = {**desc, "prior": USE_PRIOR}
            catalogue[name] = desc
        history = obs.history
        if self.since_step is not None and self.instructions.do:
            # asked again in a later turn: the task gets a fresh start (its old tries and kept
            # steps do not count against it; banned choices stay banned)
            asked = {str(t) for t in self.instructions.do}
            history = [h for h in history if h.step >= self.since_step or h.task not in asked]
        tried = {h.task for h in history if h.task}
        return obs.model_copy(
            update={
                "history": history,
                "report": self._report(obs.report, tried),
                "input_report": self._report(obs.input_report, tried) if obs.input_report else None,
                "catalogue": catalogue,
            }
        )

    def _report(self, report: dict[str, Any], tried: set[str]) -> dict[str, Any]:
        findings = {k: dict(f) for k, f in report.get("findings", {}).items()}
        for name, f in findings.items():
            task = TASK_FOR.get(Degradation(name))
            if f.get("present") and task is not None and not self.allows_task(task):
                f.update(present=False, hidden_by="the person's instructions")
        for task in self.instructions.do:
            if not self.allows_task(task):
                continue
            name = DEGRADATION_FOR[task].value
            f = findings.get(name) or {"degradation": name, "present": False, "severity": 0.0, "evidence": {}}
            if not f.get("present"):
                f = {
                    **f,
                    "present": True,
                    "severity": max(float(f.get("severity") or 0.0), REQUESTED_SEVERITY),
                    "evidence": {**(f.get("evidence") or {}), "requested": 1.0},
                    "requested": True,
                }
            findings[name] = f
        return {**report, "findings": findings}

    # -- the action ------------------------------------------------------------------------------
    def next_action(self, obs: Observation) -> Action:
        constrained = self.constrain(obs)
        action = self.inner.next_action(constrained)
        problem = self._breaks(action, constrained)
        if problem is not None:
            from restora.planners.heuristic import HeuristicPlanner

            action = HeuristicPlanner().next_action(constrained)
            action = action.model_copy(update={"fallback": f"{self.name} {problem}; the heuristic planner chose instead"})
        if action.kind == "tool" and action.tool and self.strength != 1.0:
            action = self._scaled(action, obs)
        return action

    def _breaks(self, action: Action, obs: Observation) -> str | None:
        if action.kind != "tool" or not action.tool:
            return None
        if action.tool not in obs.catalogue:
            return f"chose {action.tool}, which the person's instructions rule out"
        task = action.params.get("task") or action.task
        if task is not None and not self.allows_task(str(task)):
            return f"chose the task {task}, which the person's instructions rule out"
        return None

    def _scaled(self, action: Action, obs: Observation) -> Action:
        from restora.tools.base import param_bounds
        from restora.tools.registry import get_tool

        cls = get_tool(action.tool)
        fields = cls.Params.model_fields
        params = dict(action.params)
        defaults = cls.Params().model_dump(mode="json") if _all_defaulted(cls) else {}
        scaled = []
        for name in STRENGTH_PARAMS:
            if name not in fields:
                continue
            value = params.get(name, defaults.get(name, fields[name].default))
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value == 0:
                continue
            lo, hi = param_bounds(fields[name])
            new = min(max(float(value) * self.strength, lo), hi)
            params[name] = round(new, 4)
            scaled.append(f"{name} {value:g} -> {params[name]:g}")
        if not scaled:
            return action
        reason = f"{action.reason}; {self.strength:g}x strength as asked ({', '.join(scaled)})".lstrip("; ")
        return action.model_copy(update={"params": params, "reason": reason})


def _all_defaulted(cls) -> bool:
    try:
        cls.Params()
    except Exception:  # a required param: no defaults to read
        return False
    return True

