"""A planner that replays a fixed list of actions: for tests and for replaying a trace.

Examples:
    >>> p = ScriptedPlanner([("denoise_nlm", {"h": 10}), ("dehaze_dcp", {})])
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from restora.planners.base import Action, Observation


class ScriptedPlanner:
    """Returns the given steps in order (skipping none), then stops."""

    name = "scripted"

    def __init__(self, steps: Iterable[tuple[str, dict[str, Any]] | Action]) -> None:
        self.steps = [
            s if isinstance(s, Action) else Action(kind="tool", tool=s[0], params=dict(s[1]))
            for s in steps
        ]
        self.calls = 0

    def next_action(self, obs: Observation) -> Action:
        self.calls += 1
        if not self.steps:
            return Action.stop("script finished")
        return self.steps.pop(0)
