"""Agent state: small and serializable. Images are referenced by their key in the
:class:`restora.store.ImageStore`; accept and rollback are data (``current``, ``banned``,
``history``), not checkpoint tricks.

Nodes do not write the trace: a node that decides something returns its
:class:`restora.traces.StepRecord` (as JSON) under ``emitted``, and the
:class:`restora.agent.Run` driving the graph writes it out.
"""

from __future__ import annotations

from typing import Any, TypedDict


class Candidate(TypedDict, total=False):
    ref: str | None  # the tool's output, or None when it failed
    report: dict[str, Any] | None
    scores: dict[str, Any] | None
    error: str | None
    act_seconds: float
    score_seconds: float
    info: dict[str, Any]  # the tool's last_info (recorded in the trace)
    consistency: float  # restora.quality.structure_consistency(input of the step, output)
    guard: dict[str, Any] | None  # restora.quality.guard.GuardVerdict.to_json() of the step
    alternatives: list[dict[str, Any]]  # planning on crops: the tool's other suggested params, run too


class AgentState(TypedDict, total=False):
    input_ref: str
    current_ref: str  # the accepted image so far (the best: only improvements are accepted)
    report: dict[str, Any]  # perception of current
    input_report: dict[str, Any]  # perception of the input (what the planner may still owe it)
    scores: dict[str, Any]  # quality of current
    input_scores: dict[str, Any]
    pending: dict[str, Any] | None  # the planner's chosen Action, as JSON
    plan_seconds: float
    candidate: Candidate | None
    history: list[dict[str, Any]]  # restora.planners.HistoryItem as JSON
    banned: list[str]  # choice_key()s of rolled-back or failed (tool, params)
    accepted: list[str]  # tools whose steps were kept, in order
    undo: list[dict[str, Any]]  # per kept step: what it replaced (ref, report, scores) and its choice
    tool_calls: int  # over the whole run (all turns)
    turn_tool_calls: int  # in this turn: the step budget is per turn
    turn_first_step: int  # `step` when this turn began (a planner-error streak counts from here)
    step: int  # planner decisions so far (all turns)
    stop_reason: str | None  # why this turn ended; None while it runs
    emitted: list[dict[str, Any]]  # StepRecords (JSON) of the node that just ran, for the Run to write
