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

from restora.taxonomy import Task


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
    every brightening of it was tried and none kept: the picture stays as dim as it was given, and no
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


def reads(reading: dict[str, Any] | None, degradation: str) -> bool:
    """Whether ``reading`` (a perception report as JSON, or None) finds ``degradation``.

    Examples:
        >>> reads({"findings": {"dark": {"present": True}}}, "dark"), reads(None, "dark")
        (True, False)
    """
    return bool((((reading or {}).get("findings") or {}).get(degradation) or {}).get("present"))


def brightening_declined(history: list[dict[str, Any]] | None, tools: list[str] | None = None) -> bool:
    """Whether a brightening (the ``low_light`` task) was tried in the run with each of ``tools``
    (None: any) and none was kept: the picture is to stay as dim as it is.

    Examples:
        >>> step = lambda tool, decision: {"tool": tool, "task": "low_light", "decision": decision}
        >>> brightening_declined([step("lowlight_gamma", "rollback"), {"task": "denoise", "decision": "rollback"}])
        True
        >>> brightening_declined([step("lowlight_gamma", "rollback")], ["lowlight_gamma", "lowlight_lime"])
        False
        >>> brightening_declined([step("lowlight_gamma", "rollback"), step("lowlight_lime", "rollback")], ["lowlight_gamma", "lowlight_lime"])
        True
        >>> brightening_declined([step("lowlight_gamma", "rollback"), step("lowlight_lime", "accept")]), brightening_declined(None)
        (False, False)
    """
    tone = [h for h in history or [] if h.get("task") == Task.LOW_LIGHT.value]
    if not tone or any(h.get("decision") == "accept" for h in tone):
        return False
    return tools is None or set(tools) <= {h.get("tool") for h in tone}


def brighteners(catalogue: dict[str, dict[str, Any]]) -> list[str]:
    """The single-task low-light tools of a catalogue (name -> ``Tool.describe()``, as in
    :attr:`Observation.catalogue`).

    Examples:
        >>> from restora.tools import ToolBox
        >>> brighteners({n: t.describe() for n, t in ToolBox().catalogue().items()})
        ['lowlight_gamma', 'lowlight_lime']
    """
    return sorted(n for n, d in catalogue.items() if d.get("tasks") == [Task.LOW_LIGHT.value])
