"""The planner protocol: given what the agent sees, choose the next tool step, roll the last
kept step back, or stop.

A planner gets an :class:`Observation` (the perception report and quality scores of the current
image, the history of steps with their decisions, what is banned, the budget left and the tool
catalogue) and returns an :class:`Action`. Planners never touch pixels unless they need to (a VLM
planner looks at the image through ``Observation.image``).

Examples:
    >>> class AlwaysStop:
    ...     name = "always-stop"
    ...     def next_action(self, obs):
    ...         return Action.stop("nothing to do")
"""

from __future__ import annotations

import json
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


def choice_key(tool: str, params: dict[str, Any]) -> str:
    """The identity of a (tool, params) choice, as banned by a rollback."""
    return f"{tool}|{json.dumps(params, sort_keys=True, separators=(',', ':'))}"


class Action(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["tool", "stop", "rollback"]  # rollback: undo the last kept step and ban it
    tool: str | None = None
    task: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    reason: str = ""
    fallback: str | None = None  # set when the planner could not decide and fell back
    perception: dict[str, Any] | None = None  # the planner's own perception, when it has one (VLM)
    # how a model planner's reply was decoded (VLM): backend, constrained to the schema or not (and
    # why not), attempts; None for planners that do not generate text
    decoding: dict[str, Any] | None = None

    @classmethod
    def stop(cls, reason: str) -> Action:
        return cls(kind="stop", reason=reason)

    @classmethod
    def rollback(cls, reason: str) -> Action:
        return cls(kind="rollback", reason=reason)

    @property
    def key(self) -> str:
        return choice_key(self.tool or "", self.params)


class HistoryItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    step: int
    tool: str
    task: str | None
    params: dict[str, Any]
    decision: Literal["accept", "rollback", "error"]
    gain: float | None = None
    error: str | None = None
    guard_rejected: bool = False
    """The no-harm guard rejected the step: what it removed did not look like its target. For a
    tool with ``hypothesis`` params (a deblur's kernel) that blames the hypothesis, not the solver
    (see :meth:`restora.tools.base.Tool.hypothesis`)."""
    guard_faint: bool = False
    """... and the step was too faint for it to judge (:attr:`restora.quality.guard.GuardVerdict.faint`):
    the rejection says little about the tool; a stronger setting of it may be judged."""
    kept_dim: bool = False
    """The step was kept on the guard's vouch, measured on the dim picture viewed brightened, after
    a brightening of it was tried and not kept: the picture stays as dim as it was given, and no
    tone step follows (see :func:`restora.agent.nodes.vouch_withheld`)."""


class Observation(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
    step: int
    report: dict[str, Any]  # restora.perception.DegradationReport as JSON
    scores: dict[str, Any]  # restora.quality.QualityScores as JSON
    # perception of the run's input: a degradation found there and not yet tried may be hidden,
    # not gone, after another step (rain under a super-resolved image)
    input_report: dict[str, Any] | None = None
    history: list[HistoryItem] = Field(default_factory=list)
    banned: list[str] = Field(default_factory=list)  # choice_key()s
    steps_left: int
    seconds_left: float
    catalogue: dict[str, dict[str, Any]] = Field(default_factory=dict)  # name -> Tool.describe()
    request: str | None = None  # a user's words, in chat sessions
    image: np.ndarray | None = Field(None, exclude=True)  # current pixels, for planners that look
    original: np.ndarray | None = Field(None, exclude=True)


@runtime_checkable
class Planner(Protocol):
    name: str

    def next_action(self, obs: Observation) -> Action: ...
