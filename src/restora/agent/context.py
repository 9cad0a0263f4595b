"""Services the agent's nodes use, passed through LangGraph's runtime context (not the state)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from restora.config import RunConfig
from restora.planners.base import Planner
from restora.store import ImageStore
from restora.tools.registry import ToolBox


@dataclass
class AgentContext:
    """Everything a turn needs besides its state (a :class:`restora.agent.Run` makes one per turn).

    Attributes:
        store: content-addressed images; state holds only their references.
        toolbox: the tools this run may call (``--allow`` filters it).
        scorer: a :class:`restora.quality.QualityScorer`.
        perceive: image -> :class:`restora.perception.DegradationReport`.
        planner: chooses the next step.
        run_id: the trace's run id (every record carries it).
        config: this turn's budgets, acceptance thresholds and request
            (``max_steps`` and ``max_seconds`` count per turn).
        guard: a :class:`restora.quality.guard.NoHarmGuard`, or None (no guard; so is
            ``config.guard=False``).
        render_megapixels: when the run plans on native crops of a large image, that image's
            size: the kept steps will be rendered on it, and their estimated time (tool cost x
            megapixels) is reserved from the time budget the planner sees.
        on_event: progress callback ``(kind, data)``: perceived, plan, decide, rollback, stop, ...
        started: ``time.perf_counter()`` when this turn began (its time budget counts from here).

    Examples:
        >>> from restora.config import RunConfig
        >>> ctx = AgentContext(store, toolbox, scorer, perceive, planner, "run1", RunConfig(max_steps=4))  # doctest: +SKIP
        >>> ctx.config.max_steps                                                                        # doctest: +SKIP
        4
    """

    store: ImageStore
    toolbox: ToolBox
    scorer: Any
    perceive: Callable[[Any], Any]
    planner: Planner
    run_id: str
    config: RunConfig = field(default_factory=RunConfig)
    on_event: Callable[[str, dict[str, Any]], None] | None = None
    guard: Any = None
    render_megapixels: float | None = None
    started: float = field(default_factory=time.perf_counter)

    @property
    def planner_name(self) -> str:
        return getattr(self.planner, "name", type(self.planner).__name__)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def reserved_seconds(self, kept: list[dict[str, Any]]) -> float:
        """Estimated seconds to render the ``kept`` steps (the state's ``undo`` entries) on the
        whole image; 0 when the run works on the image itself."""
        if not self.render_megapixels:
            return 0.0
        return sum(float(self.toolbox.get_class(k["tool"]).cost) * self.render_megapixels for k in kept)

    def emit(self, kind: str, **data: Any) -> None:
        if self.on_event is not None:
            self.on_event(kind, data)
