"""Running the agent on one image: a :class:`Run` (a session of turns) and :func:`restore` (one turn).

A :class:`Run` keeps one image store, one trace and the agent state for its lifetime. Each
:meth:`Run.turn` drives the graph from the current state (the first one perceives nothing again:
:meth:`Run.open` did), streams the nodes' updates and writes the trace records they carry as they
arrive; the trace file is committed by :meth:`Run.close`.

Examples:
    >>> from restora.agent import Run, restore
    >>> from restora.imageio import load_image
    >>> result = restore(load_image("photo.jpg").pixels, trace_path="out/photo.trace.jsonl")  # doctest: +SKIP
    >>> result.stop_reason, result.tool_calls, result.accepted                                 # doctest: +SKIP
    ('no degradation found: the image looks clean', 2, ['denoise_srmd'])
    >>> with Run.open(image, trace_path="out/chat.trace.jsonl") as run:                      # doctest: +SKIP
    ...     run.turn("remove the noise")
    ...     run.turn("now make it brighter", max_steps=2)
    ...     run.undo()
    ...     result = run.close()
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from restora.agent import nodes
from restora.agent.context import AgentContext
from restora.agent.graph import build_graph
from restora.config import RunConfig
from restora.errors import RestoraError
from restora.imageio import check_image
from restora.planners.base import Planner
from restora.store import ImageStore
from restora.tools.registry import ToolBox
from restora.traces.io import TraceWriter
from restora.traces.schema import EndRecord, StartRecord, StepRecord

_GRAPH = None


def graph():
    global _GRAPH
    if _GRAPH is None:
        _GRAPH = build_graph()
    return _GRAPH


@dataclass
class RestoreResult:
    """Where a run stands: after :func:`restore`, :meth:`Run.close`, :meth:`Run.turn` or :meth:`Run.result`.

    ``tool_calls``, ``accepted``, ``seconds`` and ``records`` cover the whole run so far (all
    turns); ``stop_reason`` is why the last turn ended ("" before any turn).
    """

    image: np.ndarray
    stop_reason: str
    tool_calls: int
    accepted: list[str]
    seconds: float
    records: list = field(default_factory=list)  # trace records (start, steps, end once closed)
    store: ImageStore | None = None
    state: dict[str, Any] = field(default_factory=dict)


class Run:
    """One image's restoration session: open it, take turns, undo, close.

    The first :meth:`turn` does what :func:`restore` does; a later turn continues from the
    current image, history, bans and kept steps, with a fresh per-turn budget. Use
    :meth:`Run.open` to make one; as a context manager it closes on exit (committing the trace
    file only when no exception escaped).

    Examples:
        >>> run = Run.open(image, config=RunConfig(max_steps=4), trace_path="t.jsonl")  # doctest: +SKIP
        >>> run.turn().accepted                                                          # doctest: +SKIP
        ['denoise_srmd']
        >>> run.turn("sharpen it a little", max_steps=2).accepted                        # doctest: +SKIP
        ['denoise_srmd', 'deblur_defocus']
        >>> run.undo(), run.result().accepted                                            # doctest: +SKIP
        (True, ['denoise_srmd'])
        >>> run.close().records[-1].event                                                # doctest: +SKIP
        'end'
    """

    def __init__(
        self,
        ctx: AgentContext,
        tracer: TraceWriter,
        state: dict[str, Any],
        started: float,
        full: np.ndarray | None = None,
    ) -> None:
        # use Run.open
        self.config = ctx.config
        self._full = full  # the whole image when the run plans on a proxy of native crops
        self._rendered: tuple[tuple[Any, ...], np.ndarray] | None = None
        self._ctx = ctx
        self._tracer = tracer
        self._state = state
        self._started = started
        self._seconds: float | None = None  # set when closed
        self.turns = 0

    @classmethod
    def open(
        cls,
        image: np.ndarray,
        *,
        config: RunConfig | None = None,
        planner: Planner | None = None,
        toolbox: ToolBox | None = None,
        scorer: Any = None,
        perceive: Callable | None = None,
        trace_path: str | os.PathLike | None = None,
        source: str = "<array>",
        notes: list[str] | None = None,
        labels: dict[str, Any] | None = None,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
        guard: Any = None,
    ) -> Run:
        """Check ``image``, start its trace (the start record) and perceive and score it once.

        Defaults: :class:`restora.planners.HeuristicPlanner`, every available tool, the
        :class:`restora.quality.QualityScorer`, the perception ``config.perception`` names
        (:func:`restora.perception.backend`) and the
        shipped :class:`restora.quality.guard.NoHarmGuard` (none when ``config.guard`` is False).
        ``trace_path`` None keeps the trace in memory only (:attr:`records`).

        Examples:
            >>> run = Run.open(image, planner=HeuristicPlanner(), toolbox=ToolBox(allow=["denoise_nlm"]))  # doctest: +SKIP
            >>> run.state["tool_calls"], run.records[0].event                                           # doctest: +SKIP
            (0, 'start')
        """
        check_image(image, "input image")
        config = config or RunConfig()
        full, plan_crops = None, None
        height, width = image.shape[:2]
        if height * width > config.plan_megapixels * 1e6:
            from restora.agent.proxy import ROLES, mosaic, planning_crops

            boxes = planning_crops(image, config.plan_crop)
            plan_crops = [{"role": r, "y": b[0], "x": b[1], "h": b[2], "w": b[3]} for r, b in zip(ROLES, boxes, strict=True)]
            full, image = image, mosaic(image, boxes)
            notes = [
                *(notes or []),
                f"planned on {len(boxes)} native-resolution {boxes[0][2]} px crops ({', '.join(ROLES)}) of the "
                f"{width}x{height} image; the kept steps were then rendered once on the whole image",
            ]
        if planner is None:
            from restora.planners.heuristic import HeuristicPlanner

            planner = HeuristicPlanner()
        if scorer is None:
            from restora.quality import QualityScorer

            scorer = QualityScorer()
        if perceive is None:
            from restora.perception import backend

            perceive = backend(config.perception)
        if full is not None:
            perceive = _WholeSize(perceive, width, height)
        if guard is None and config.guard:
            from restora.quality.guard import NoHarmGuard

            guard = NoHarmGuard.default()
        toolbox = toolbox or ToolBox()
        store = ImageStore()
        input_ref = store.put(image)
        source_ref = input_ref if full is None else store.put(full)  # the trace's input is the whole image
        ctx = AgentContext(
            store=store,
            toolbox=toolbox,
            scorer=scorer,
            perceive=perceive,
            planner=planner,
            run_id=uuid.uuid4().hex[:12],
            config=config,
            on_event=on_event,
            guard=guard if config.guard else None,
            render_megapixels=None if full is None else width * height / 1e6,
        )
        tracer = TraceWriter(trace_path)
        started = time.perf_counter()
        try:
            tracer.write(
                StartRecord(
                    run_id=ctx.run_id,
                    source=source,
                    width=width,
                    height=height,
                    image=source_ref,
                    notes=list(notes or []),
                    config={
                        "planner": ctx.planner_name,
                        "max_steps": config.max_steps,
                        "max_seconds": config.max_seconds,
                        "min_gain": config.min_gain,
                        "min_consistency": config.min_consistency,
                        "guard": config.guard,
                        "guard_vouch": config.guard_vouch,
                        "plan_crops": plan_crops,
                        "tools": sorted(toolbox.catalogue()),
                        "metrics": list(getattr(scorer, "metrics", [])),
                        "request": config.request,
                    },
                    labels=labels,
                    started_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                )
            )
            state = nodes.initial_state(ctx, input_ref)
        except BaseException:
            tracer.close(commit=False)
            raise
        return cls(ctx, tracer, state, started, full=full)

    # -- turns -------------------------------------------------------------------------------------
    def turn(
        self, request: str | None = None, *, max_steps: int | None = None, max_seconds: float | None = None
    ) -> RestoreResult:
        """Run the agent from the current state until the planner stops or this turn's budget is spent.

        ``request`` (the planner sees it as ``Observation.request``), ``max_steps`` and
        ``max_seconds`` apply to this turn only; None takes the Run's config. The budgets count
        per turn: a later turn gets a fresh ``max_steps`` tool calls whatever stopped the last.
        Returns :meth:`result` (totals over all turns; this turn's tool calls are
        ``state["turn_tool_calls"]``).

        Examples:
            >>> run.turn().stop_reason                                       # doctest: +SKIP
            'no degradation found: the image looks clean'
            >>> run.turn("brighten the shadows", max_steps=2).accepted       # doctest: +SKIP
            ['denoise_srmd', 'lowlight_gamma']
        """
        self._check_open()
        changes = {"request": request, "max_steps": max_steps, "max_seconds": max_seconds}
        config = self.config.replace(**{k: v for k, v in changes.items() if v is not None})
        ctx = dataclasses.replace(self._ctx, config=config, started=time.perf_counter())
        start = {
            **self._state,
            "stop_reason": None,
            "pending": None,
            "candidate": None,
            "turn_tool_calls": 0,
            "turn_first_step": self._state["step"],
        }
        self._state = start
        self.turns += 1
        for mode, chunk in graph().stream(
            start,
            context=ctx,
            config={"recursion_limit": 8 * config.max_steps + 50},
            stream_mode=["updates", "values"],
        ):
            if mode == "updates":
                for update in chunk.values():
                    if isinstance(update, dict):
                        self._write(update.get("emitted"))
            else:
                self._state = {k: v for k, v in chunk.items() if k != "emitted"}
        return self.result()

    def undo(self) -> bool:
        """Restore what the last kept step replaced; False (and nothing recorded) when none is kept.

        Recorded as a ``rollback`` step whose action's ``planner`` is ``"user"``. Unlike the
        planner's own rollback, it bans nothing: the planner may choose that step again.

        Examples:
            >>> run.undo()                    # doctest: +SKIP
            True
            >>> run.records[-1].decision      # doctest: +SKIP
            'rollback'
        """
        self._check_open()
        if not self._state.get("undo"):
            return False
        update = nodes.undo_last(self._state, self._ctx, "undone by the user", ban=False, by="user")
        self._write(update.pop("emitted"))
        self._state = {**self._state, **update}
        return True

    # -- what it has -------------------------------------------------------------------------------
    @property
    def image(self) -> np.ndarray:
        """The current image (a copy). A run planned on native crops renders its kept steps on
        the whole image here (once per set of kept steps)."""
        if self._full is None:
            return np.array(self._ctx.store.get(self._state["current_ref"]))
        kept = tuple((u["tool"], repr(sorted(u["params"].items()))) for u in self._state.get("undo", []))
        if self._rendered is None or self._rendered[0] != kept:
            out = self._full
            for u in self._state.get("undo", []):
                out = self._ctx.toolbox.run(u["tool"], out, u["params"])
            self._rendered = (kept, out)
        return np.array(self._rendered[1])

    @property
    def planned_on_crops(self) -> bool:
        """Whether this run plans on a mosaic of native-resolution crops of a large image."""
        return self._full is not None

    @property
    def state(self) -> dict[str, Any]:
        """The agent state now (serializable; a copy)."""
        return copy.deepcopy(self._state)

    @property
    def records(self) -> list:
        """The trace records written so far."""
        return list(self._tracer.records)

    @property
    def store(self) -> ImageStore:
        return self._ctx.store

    @property
    def closed(self) -> bool:
        return self._seconds is not None

    def result(self) -> RestoreResult:
        """A :class:`RestoreResult` for the state now.

        Examples:
            >>> run.result().tool_calls       # doctest: +SKIP
            3
        """
        s = self._state
        return RestoreResult(
            image=self.image,
            stop_reason=s.get("stop_reason") or "",
            tool_calls=s["tool_calls"],
            accepted=list(s["accepted"]),
            seconds=self._seconds if self._seconds is not None else time.perf_counter() - self._started,
            records=self.records,
            store=self._ctx.store,
            state=dict(s),
        )

    # -- closing -----------------------------------------------------------------------------------
    def close(self, commit: bool = True) -> RestoreResult:
        """Write the end record and commit the trace file atomically; without ``commit`` neither
        (a partial ``<trace>.part`` stays). Closing again returns the same result.

        Examples:
            >>> result = run.close()                   # doctest: +SKIP
            >>> result.records[-1].event               # doctest: +SKIP
            'end'
        """
        if self.closed:
            return self.result()
        seconds = time.perf_counter() - self._started
        ok = False
        try:
            if commit:
                s = self._state
                final_ref = s["current_ref"] if self._full is None else self._ctx.store.put(self.image)
                self._tracer.write(
                    EndRecord(
                        run_id=self._ctx.run_id,
                        image=final_ref,
                        stop_reason=s.get("stop_reason") or "",
                        tool_calls=s["tool_calls"],
                        accepted=s["accepted"],
                        seconds=seconds,
                        scores_input=s["input_scores"],
                        scores_final=s["scores"],
                    )
                )
                ok = True
        finally:
            self._tracer.close(commit=ok)
            self._seconds = seconds
        return self.result()

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(commit=exc_type is None)

    def _check_open(self) -> None:
        if self.closed:
            raise RestoraError("this Run is closed; open a new one")

    def _write(self, emitted: list[dict[str, Any]] | None) -> None:
        for record in emitted or []:
            self._tracer.write(StepRecord.model_validate(record))


class _WholeSize:
    """A perceive callable whose reports carry the whole image's size (the planner budgets tool
    time by it) while it looks at the planning proxy."""

    def __init__(self, perceive: Callable, width: int, height: int) -> None:
        self._perceive, self.width, self.height = perceive, width, height

    def __call__(self, image: np.ndarray) -> Any:
        report = self._perceive(image)
        return report.model_copy(update={"width": self.width, "height": self.height})


def restore(
    image: np.ndarray,
    *,
    config: RunConfig | None = None,
    planner: Planner | None = None,
    toolbox: ToolBox | None = None,
    scorer: Any = None,
    perceive: Callable | None = None,
    trace_path: str | os.PathLike | None = None,
    source: str = "<array>",
    notes: list[str] | None = None,
    labels: dict[str, Any] | None = None,
    on_event: Callable[[str, dict[str, Any]], None] | None = None,
    **overrides: Any,
) -> RestoreResult:
    """Restore one image in one turn; write its trace to ``trace_path`` if given.

    ``overrides`` are :class:`restora.config.RunConfig` fields (``max_steps``, ``max_seconds``,
    ``min_gain``, ``min_consistency``, ``request``) applied to ``config``; an unknown name is a
    ``TypeError``. The same as ``Run.open(...)``, one :meth:`Run.turn`, :meth:`Run.close`.

    Examples:
        >>> result = restore(image, max_steps=4, trace_path="out/photo.trace.jsonl")  # doctest: +SKIP
        >>> result.accepted, result.stop_reason                                       # doctest: +SKIP
        (['denoise_srmd'], 'no degradation found: the image looks clean')
        >>> restore(image, max_step=4)                                                # doctest: +SKIP
        Traceback (most recent call last):
        ...
        TypeError: unknown RunConfig fields ['max_step'] (known: guard, max_seconds, max_steps, min_consistency, min_gain, plan_crop, plan_megapixels, request, sibling_trials)
    """
    config = (config or RunConfig()).replace(**overrides)
    with Run.open(
        image,
        config=config,
        planner=planner,
        toolbox=toolbox,
        scorer=scorer,
        perceive=perceive,
        trace_path=trace_path,
        source=source,
        notes=notes,
        labels=labels,
        on_event=on_event,
    ) as run:
        run.turn()
        return run.close()
