"""The default planner on a CPU: degradation report -> next task -> tool by expected gain and cost.

Rules, in order:
1. Nothing present in the perception report: stop (a clean image comes back unchanged).
2. The last ``patience`` steps all failed or were rolled back: stop (quality stopped improving).
3. Take the present degradations in restoration order (the reverse of how they form: compression,
   then imaging, then scene; :data:`restora.taxonomy.RESTORATION_ORDER`). Skip a task once a step
   for it was accepted, or after ``max_tries_per_task`` attempts.
4. For the first remaining task, rank its tools by expected gain over estimated time (learned tools
   are expected to gain more than classical ones; tools that would not fit the time left are
   skipped), and interleave their suggested params (each tool's first suggestion, then each
   tool's second, ...). Return the first choice that is not banned.
5. Nothing left to try: stop.

Examples:
    >>> from restora.planners import HeuristicPlanner
    >>> planner = HeuristicPlanner(patience=3)
    >>> action = planner.next_action(observation)      # doctest: +SKIP
    >>> action.tool, action.params                      # doctest: +SKIP
    ('denoise_srmd', {'sigma': 18.0})
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import zip_longest
from typing import Any

from restora.planners.base import Action, Observation, choice_key
from restora.taxonomy import RESTORATION_ORDER, TASK_FOR, Degradation, Task
from restora.tools.registry import get_tool

LEARNED_GAIN = 1.0
CLASSICAL_GAIN = 0.6
TIME_SCALE = 30.0
"""Seconds at which a tool's expected gain counts half: ranking uses gain / (1 + seconds / this),
so a few seconds barely matter and a tool that would take minutes goes behind faster ones."""


class HeuristicPlanner:
    name = "heuristic"

    def __init__(self, patience: int = 3, max_tries_per_task: int = 3, time_scale: float = TIME_SCALE) -> None:
        self.patience = patience
        self.time_scale = time_scale
        self.max_tries_per_task = max_tries_per_task

    def next_action(self, obs: Observation) -> Action:
        present = [
            f
            for f in obs.report.get("findings", {}).values()
            if f.get("present")
        ]
        if not present:
            return Action.stop("no degradation found: the image looks clean")
        recent = obs.history[-self.patience :]
        if len(recent) == self.patience and all(h.decision != "accept" for h in recent):
            return Action.stop(f"quality stopped improving: the last {self.patience} steps were not kept")

        done: set[str] = {h.task for h in obs.history if h.decision == "accept" and h.task}
        tries: dict[str, int] = {}
        for h in obs.history:
            if h.task:
                tries[h.task] = tries.get(h.task, 0) + 1

        order = {t: i for i, t in enumerate(RESTORATION_ORDER)}
        tasks = sorted(
            ((TASK_FOR[Degradation(f["degradation"])], f) for f in present),
            key=lambda tf: order[tf[0]],
        )
        megapixels = obs.report.get("width", 512) * obs.report.get("height", 512) / 1e6
        for task, finding in tasks:
            if task in done or tries.get(task, 0) >= self.max_tries_per_task:
                continue
            action = self._choose(task, finding, obs, megapixels)
            if action is not None:
                return action
        return Action.stop("every detected degradation was handled or has no untried tool left")

    def _choose(
        self, task: Task, finding: dict[str, Any], obs: Observation, megapixels: float
    ) -> Action | None:
        tools = rank_tools(task, obs.catalogue, megapixels, obs.seconds_left, self.time_scale)
        severity = float(finding.get("severity", 0.5))
        evidence = finding.get("evidence", {})
        suggestions = [
            [(name, p.model_dump(mode="json")) for p in get_tool(name).suggest_params_for(task, severity, evidence)]
            for name in tools
        ]
        banned = set(obs.banned)
        for row in zip_longest(*suggestions):
            for item in row:
                if item is None:
                    continue
                name, params = item
                if choice_key(name, params) in banned:
                    continue
                return Action(
                    kind="tool",
                    tool=name,
                    task=str(task),
                    params=params,
                    reason=_reason(finding, severity, evidence, name),
                )
        return None


def _reason(finding: dict[str, Any], severity: float, evidence: dict[str, Any], tool: str) -> str:
    shown = ", ".join(f"{k}={v:.3g}" for k, v in list(evidence.items())[:3] if isinstance(v, (int, float)))
    return f"{finding['degradation']} (severity {severity:.2f}; {shown}) -> {tool}"


def rank_tools(
    task: Task | str,
    catalogue: Mapping[str, Mapping[str, Any]],
    megapixels: float = 0.25,
    seconds_left: float = float("inf"),
    time_scale: float = TIME_SCALE,
) -> list[str]:
    """The tools of ``catalogue`` (name -> ``Tool.describe()``) for ``task``, best first.

    Ranked by expected gain (the tool's ``prior``; without one, learned tools above classical
    ones) over ``1 + estimated seconds / time_scale``, seconds estimated at
    ``megapixels``; tools that would not finish in ``seconds_left`` are left out. Ties go by name.
    The first is the task's default tool (the benchmark's ``fixed`` and ``greedy`` use it).

    Examples:
        >>> cat = {"a_classical": {"task": "denoise", "cost": 1.0, "learned": False},
        ...        "b_learned": {"task": "denoise", "cost": 1.0, "learned": True},
        ...        "c_other": {"task": "dehaze", "cost": 0.1, "learned": False}}
        >>> rank_tools("denoise", cat)
        ['b_learned', 'a_classical']
    """
    task = Task(task)
    ranked = []
    for name, desc in catalogue.items():
        if str(task) not in (desc.get("tasks") or [desc.get("task")]):
            continue
        est_seconds = float(desc.get("cost", 1.0)) * max(megapixels, 0.01)
        if est_seconds > seconds_left:
            continue
        gain = desc.get("prior")
        if gain is None:
            gain = LEARNED_GAIN if desc.get("learned") else CLASSICAL_GAIN
        ranked.append((gain / (1.0 + est_seconds / time_scale), name))
    ranked.sort(key=lambda t: (-t[0], t[1]))
    return [name for _, name in ranked]
