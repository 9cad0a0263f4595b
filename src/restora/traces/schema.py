"""The trace schema: what the agent did, step by step, as versioned pydantic records in JSONL.

Live runs and synthesized trajectories (``restora synth``) share this schema, so traces feed the
trainer without conversion glue. One file holds one run: a ``start`` record, one ``step`` record
per planner decision (tool step, failed step, or stop), and an ``end`` record.

Examples:
    >>> from restora.traces import read_trace
    >>> records = read_trace("out/photo.trace.jsonl")       # doctest: +SKIP
    >>> [r.event for r in records][:3]                       # doctest: +SKIP
    ['start', 'step', 'step']
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1

Decision = Literal["accept", "rollback", "error", "stop"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_version: Literal[1] = SCHEMA_VERSION
    run_id: str


class ActionRecord(BaseModel):
    """The planner's action as recorded, and which planner chose it.

    The fields mirror :class:`restora.planners.Action` but are the trace's own: traces are a
    versioned file format, so a change to the planner's Action must not silently change what
    old traces mean (``ActionRecord(**action.model_dump(), planner=...)`` makes one).
    """

    model_config = ConfigDict(extra="forbid")
    kind: Literal["tool", "stop", "rollback"] = Field(description="rollback: undo the last kept step and ban it")
    tool: str | None = None
    task: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    reason: str = ""
    fallback: str | None = Field(None, description="set when the planner could not decide and fell back")
    perception: dict[str, Any] | None = Field(None, description="the planner's own perception (VLM), when it has one")
    decoding: dict[str, Any] | None = Field(
        None, description="how a model planner's reply was decoded (VLM): backend, whether it was constrained to the JSON schema (and why not), attempts"
    )
    planner: str = ""


class StartRecord(_Record):
    event: Literal["start"] = "start"
    source: str = Field(description="input file name, or a synthetic case id")
    width: int
    height: int
    image: str = Field(description="content hash of the input image")
    notes: list[str] = Field(default_factory=list, description="what loading the input had to do")
    config: dict[str, Any] = Field(default_factory=dict)
    labels: dict[str, Any] | None = Field(None, description="true degradations, for synthetic cases")
    started_at: str = Field(description="ISO 8601 UTC")


class StepRecord(_Record):
    event: Literal["step"] = "step"
    step: int = Field(description="0-based index of this planner decision")
    observation: dict[str, Any] = Field(description="perception report of the image the planner saw")
    action: ActionRecord
    decision: Decision
    image_before: str
    image_after: str | None = Field(None, description="hash of the tool's output (None on error/stop)")
    scores_before: dict[str, Any] | None = None
    scores_after: dict[str, Any] | None = None
    gain: float | None = Field(None, description="overall quality after minus before")
    error: str | None = None
    banned: list[str] = Field(default_factory=list, description="tool+params banned after this step")
    timings: dict[str, float] = Field(default_factory=dict, description="seconds: plan, act, score")
    consistency: float | None = Field(
        None, description="coarse structure kept from the step's input (1 same, ~0 unrelated); < min_consistency is rolled back"
    )
    guard: dict[str, Any] | None = Field(
        None,
        description="the no-harm guard's verdict (restora.quality.guard.GuardVerdict): checked, ok, p_harm, threshold, "
        "reason, measures; not ok is rolled back",
    )
    tool_info: dict[str, Any] = Field(
        default_factory=dict, description="what the tool decided (e.g. the DiT's resolution policy, tiles, LoRA)"
    )
    turn: int | None = Field(None, description="chat sessions: the turn (1-based) this step belongs to")
    request: str | None = Field(None, description="chat sessions: the person's words this step answered")


class EndRecord(_Record):
    event: Literal["end"] = "end"
    image: str = Field(description="hash of the final image")
    stop_reason: str
    tool_calls: int
    accepted: list[str] = Field(default_factory=list, description="tools whose steps were kept, in order")
    seconds: float
    scores_input: dict[str, Any] | None = None
    scores_final: dict[str, Any] | None = None


TraceRecord = Annotated[StartRecord | StepRecord | EndRecord, Field(discriminator="event")]
