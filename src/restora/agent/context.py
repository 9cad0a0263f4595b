"""Services the agent's nodes use, passed through LangGraph's runtime context (not the state)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from restora.planners.base import Planner
from restora.store import ImageStore
from restora.tools.registry import ToolBox
from restora.traces.io import TraceWriter


@dataclass
class AgentContext:
    """Everything a run needs besides its state.

    Attributes:
        store: content-addressed images; state holds only their references.
        toolbox: the tools this run may call (``--allow`` filters it).
        scorer: a :class:`restora.quality.QualityScorer`.
        perceive: image -> :class:`restora.perception.DegradationReport`.
        planner: chooses the next step.
        tracer: receives one :class:`restora.traces.StepRecord` per planner decision.
        max_steps: tool calls allowed (rolled-back and failed ones count).
        max_seconds: wall-clock budget; the planner is not asked again after it.
        min_gain: a step is kept only if overall quality rises by more than this.
        min_consistency: ... and only if its output keeps at least this much of its input's
            coarse structure (:func:`restora.quality.structure_consistency`).
    """

    store: ImageStore
    toolbox: ToolBox
    scorer: Any
    perceive: Callable[[Any], Any]
    planner: Planner
    tracer: TraceWriter
    run_id: str
    max_steps: int = 8
    max_seconds: float = 600.0
    min_gain: float = 0.002
    min_consistency: float = 0.25
    request: str | None = None
    on_event: Callable[[str, dict[str, Any]], None] | None = None
    started: float = field(default_factory=time.perf_counter)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def emit(self, kind: str, **data: Any) -> None:
        if self.on_event is not None:
            self.on_event(kind, data)
