"""Agent state: small and serializable. Images are referenced by their key in the
:class:`restora.store.ImageStore`; accept and rollback are data (``current``, ``banned``,
``history``), not checkpoint tricks.
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


class AgentState(TypedDict, total=False):
    input_ref: str
    current_ref: str  # the accepted image so far (the best: only improvements are accepted)
    report: dict[str, Any]  # perception of current
    scores: dict[str, Any]  # quality of current
    input_scores: dict[str, Any]
    pending: dict[str, Any] | None  # the planner's chosen Action, as JSON
    plan_seconds: float
    candidate: Candidate | None
    history: list[dict[str, Any]]  # restora.planners.HistoryItem as JSON
    banned: list[str]  # choice_key()s of rolled-back or failed (tool, params)
    accepted: list[str]  # tools whose steps were kept, in order
    undo: list[dict[str, Any]]  # per kept step: what it replaced (ref, report, scores) and its choice
    tool_calls: int
    step: int  # planner decisions so far
    stop_reason: str | None
