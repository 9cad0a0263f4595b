"""Running the agent on one image.

Examples:
    >>> from restora.agent import restore
    >>> from restora.imageio import load_image
    >>> result = restore(load_image("photo.jpg").pixels, trace_path="out/photo.trace.jsonl")  # doctest: +SKIP
    >>> result.stop_reason, result.tool_calls, result.accepted                                 # doctest: +SKIP
    ('no degradation found: the image looks clean', 2, ['denoise_srmd'])
"""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from restora.agent.context import AgentContext
from restora.agent.graph import build_graph
from restora.planners.base import Planner
from restora.store import ImageStore
from restora.tools.base import check_image
from restora.tools.registry import ToolBox
from restora.traces.io import TraceWriter
from restora.traces.schema import EndRecord, StartRecord

_GRAPH = None


def graph():
    global _GRAPH
    if _GRAPH is None:
        _GRAPH = build_graph()
    return _GRAPH


@dataclass
class RestoreResult:
    image: np.ndarray
    stop_reason: str
    tool_calls: int
    accepted: list[str]
    seconds: float
    records: list = field(default_factory=list)  # trace records (start, steps, end)
    store: ImageStore | None = None
    state: dict[str, Any] = field(default_factory=dict)


def restore(
    image: np.ndarray,
    *,
    planner: Planner | None = None,
    toolbox: ToolBox | None = None,
    scorer: Any = None,
    perceive: Callable | None = None,
    max_steps: int = 8,
    max_seconds: float = 600.0,
    min_gain: float = 0.002,
    min_consistency: float = 0.25,
    trace_path: str | os.PathLike | None = None,
    source: str = "<array>",
    notes: list[str] | None = None,
    labels: dict[str, Any] | None = None,
    request: str | None = None,
    on_event: Callable[[str, dict[str, Any]], None] | None = None,
) -> RestoreResult:
    """Restore one image with the agent loop; write its trace to ``trace_path`` if given."""
    check_image(image, "input image")
    if planner is None:
        from restora.planners.heuristic import HeuristicPlanner

        planner = HeuristicPlanner()
    if scorer is None:
        from restora.quality import QualityScorer

        scorer = QualityScorer()
    if perceive is None:
        from restora.perception import perceive as _perceive

        perceive = _perceive
    toolbox = toolbox or ToolBox()
    store = ImageStore()
    input_ref = store.put(image)
    run_id = uuid.uuid4().hex[:12]
    tracer = TraceWriter(trace_path)
    ctx = AgentContext(
        store=store,
        toolbox=toolbox,
        scorer=scorer,
        perceive=perceive,
        planner=planner,
        tracer=tracer,
        run_id=run_id,
        max_steps=max_steps,
        max_seconds=max_seconds,
        min_gain=min_gain,
        min_consistency=min_consistency,
        request=request,
        on_event=on_event,
    )
    t0 = time.perf_counter()
    ok = False
    try:
        tracer.write(
            StartRecord(
                run_id=run_id,
                source=source,
                width=image.shape[1],
                height=image.shape[0],
                image=input_ref,
                notes=list(notes or []),
                config={
                    "planner": getattr(planner, "name", type(planner).__name__),
                    "max_steps": max_steps,
                    "max_seconds": max_seconds,
                    "min_gain": min_gain,
                    "min_consistency": min_consistency,
                    "tools": sorted(toolbox.catalogue()),
                    "metrics": list(getattr(scorer, "metrics", [])),
                    "request": request,
                },
                labels=labels,
                started_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            )
        )
        state = graph().invoke(
            {"input_ref": input_ref},
            context=ctx,
            config={"recursion_limit": 8 * max_steps + 50},
        )
        seconds = time.perf_counter() - t0
        tracer.write(
            EndRecord(
                run_id=run_id,
                image=state["current_ref"],
                stop_reason=state["stop_reason"] or "",
                tool_calls=state["tool_calls"],
                accepted=state["accepted"],
                seconds=seconds,
                scores_input=state["input_scores"],
                scores_final=state["scores"],
            )
        )
        ok = True
    finally:
        tracer.close(commit=ok)
    return RestoreResult(
        image=np.array(store.get(state["current_ref"])),
        stop_reason=state["stop_reason"] or "",
        tool_calls=state["tool_calls"],
        accepted=list(state["accepted"]),
        seconds=seconds,
        records=list(tracer.records),
        store=store,
        state=dict(state),
    )
