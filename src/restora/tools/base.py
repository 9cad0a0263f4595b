"""The tool contract.

A tool is one class in one module of :mod:`restora.tools` (or one spandrel model card, see
:mod:`restora.tools._spandrel`). It declares the task it performs (a multi-task tool such as the
DiT restorer lists them all in ``tasks`` and takes the task as a ``task`` param), a
pydantic ``Params`` model that rejects unknown fields, a relative cost, whether it needs an
accelerator and how much memory its model takes, and implements ``run(image, params) -> image``.
Model tools load their weights lazily in ``_load`` (called once, on first use) so that listing
the catalogue never imports a model. A loaded model belongs to the process-wide cache
:func:`restora.model_zoo.loaded.loaded_models` (one memory budget for every model): a tool asks
for it with :meth:`Tool.shared_model` on each use and keeps no reference of its own, so the
cache can drop it when room is needed (the next use loads it again). Where a tool runs is
:func:`restora.model_zoo.loaded.tool_device` of its ``device``.

Images are float32 arrays (H, W, 3), RGB in [0, 1]. ``Tool.__call__`` checks that on the way in
and out, so a tool's ``run`` may assume it and must return the same form.

Examples:
    >>> from restora.tools import create_tool
    >>> tool = create_tool("denoise_nlm")
    >>> restored = tool(image, {"strength": 0.6})          # doctest: +SKIP
    >>> tool.Params.model_json_schema()["properties"]     # doctest: +SKIP
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from restora.errors import ToolError
from restora.imageio import check_image
from restora.taxonomy import Task


class ToolParams(BaseModel):
    """Base of every tool's ``Params``: unknown fields are an error, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def param_bounds(field: Any) -> tuple[float, float]:
    """``(low, high)`` a numeric param's pydantic field allows (``ge`` / ``gt`` / ``le`` / ``lt``;
    an open end just inside it; infinite where unbounded).

    Examples:
        >>> from restora.tools.registry import get_tool
        >>> param_bounds(get_tool("denoise_bm3d").Params.model_fields["strength"])
        (0.1, 4.0)
    """
    lo, hi = float("-inf"), float("inf")
    for m in field.metadata:
        for attr, bound in (("ge", "lo"), ("gt", "lo"), ("le", "hi"), ("lt", "hi")):
            v = getattr(m, attr, None)
            if v is None:
                continue
            if bound == "lo":
                lo = float(v) if attr == "ge" else float(v) + 1e-6
            else:
                hi = float(v) if attr == "le" else float(v) - 1e-6
    return lo, hi


class Tool(ABC):
    """One restoration operator. Subclasses set the class attributes and implement :meth:`run`.

    Examples:
        >>> from restora.tools import get_tool
        >>> tool = get_tool("denoise_nlm")(device="cpu")
        >>> out = tool(image, {"strength": 0.6})              # doctest: +SKIP
    """

    name: ClassVar[str] = ""  # set by the registry: the module name
    task: ClassVar[Task]
    Params: ClassVar[type[ToolParams]] = ToolParams
    summary: ClassVar[str] = ""  # one line for the catalogue and the planner prompt
    cost: ClassVar[float] = 1.0  # relative cost: ~seconds per megapixel on one CPU core
    needs_device: ClassVar[bool] = False  # True: only usable with an accelerator
    memory_mb: ClassVar[int] = 0  # approximate resident memory of the loaded model
    changes_size: ClassVar[bool] = False  # super-resolution may return a larger image
    learned: ClassVar[bool] = False  # runs learned weights (resolved through model_zoo)
    prior: ClassVar[float | None] = None  # expected quality of its result, 0..1 (None: by kind)
    tasks: ClassVar[tuple[Task, ...]] = ()  # every task, for a multi-task tool (its Params has `task`)
    hypothesis_params: ClassVar[tuple[str, ...]] = ()
    """Params that state what the tool assumes about the degradation (a deblur's kernel), as
    opposed to how it undoes it (the solver, its iterations); see :meth:`hypothesis`."""
    stronger_param: ClassVar[str | None] = None
    """The param a stronger setting multiplies (a denoiser's sigma or strength); see :meth:`stronger`."""

    @classmethod
    def stronger(cls, params: Mapping[str, Any], factor: float = 2.0) -> dict[str, Any] | None:
        """``params`` (complete, as a step recorded them) with ``stronger_param`` times ``factor``,
        capped at the param's bound; None for a tool without one, an unset value (the tool
        estimates it) or one already at the bound.

        Examples:
            >>> from restora.tools.registry import get_tool
            >>> get_tool("denoise_srmd").stronger({"sigma": 3.2, "rotations": 1})
            {'sigma': 6.4, 'rotations': 1}
            >>> get_tool("denoise_bm3d").stronger({"sigma": 4.0, "strength": 3.0, "stages": "all"})["strength"]
            4.0
            >>> get_tool("deblur_motion").stronger({"length": 9.0}) is None
            True
        """
        key = cls.stronger_param
        value = params.get(key) if key else None
        if key is None or value is None:
            return None
        new = min(round(float(value) * factor, 2), param_bounds(cls.Params.model_fields[key])[1])
        if new <= float(value):
            return None
        return {**params, key: new}

    @classmethod
    def handles(cls) -> tuple[Task, ...]:
        """Every task this tool performs: ``tasks``, or just ``task``."""
        return tuple(cls.tasks) or (cls.task,)

    @classmethod
    def hypothesis(cls, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """What ``params`` assume about the degradation (``hypothesis_params``' values), or None
        for a tool without such params.

        When the no-harm guard rejects a step, the planner does not retry the same hypothesis
        with another solver: a deblur whose regularised solve rings with a kernel has the wrong
        kernel, and Richardson-Lucy with it hides the ringing but not the mismatch (doubled
        edges; a real camera-shake photo, Levin im1_kernel2: -0.21 dB kept).

        Examples:
            >>> from restora.tools.registry import get_tool
            >>> get_tool("deblur_motion").hypothesis({"length": 9.0, "angle": 30.0, "method": "rl"})
            (9.0, 30.0)
            >>> get_tool("denoise_nlm").hypothesis({"h": 0.1}) is None
            True
        """
        if not cls.hypothesis_params:
            return None
        return tuple(params.get(k) for k in cls.hypothesis_params)

    @classmethod
    def multi_task(cls) -> bool:
        """True for a tool that takes the task as a param (one tool, many tasks)."""
        return len(cls.handles()) > 1

    @classmethod
    def expected_gain(cls) -> float:
        """The planner's prior on how well this tool does its task, in (0, 1]: ``prior`` when set,
        else 1.0 for learned tools and 0.6 for classical ones. Tools of one task are tried in
        order of this over their estimated time."""
        if cls.prior is not None:
            return float(cls.prior)
        return 1.0 if cls.learned else 0.6

    def __init__(self, device: str = "cpu") -> None:
        if self.needs_device:
            from restora.model_zoo.loaded import tool_device

            if tool_device(device) == "cpu":
                raise ToolError(f"tool {self.name!r} needs an accelerator; device is 'cpu' (set --device or RESTORA_DEVICE)")
        self.device = device
        self._loaded = False
        self._model_keys: set[str] = set()
        self.last_info: dict[str, Any] = {}  # what the last call decided (recorded in the trace)

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self._loaded

    def load(self) -> None:
        """Load weights (idempotent). Raises :class:`restora.errors.WeightsNotFoundError`."""
        if not self._loaded:
            self._load()
            self._loaded = True

    def unload(self) -> None:
        """Release the model (drop this tool's models from the shared cache); the next call
        loads it again.

        Examples:
            >>> tool.unload(); tool.loaded                     # doctest: +SKIP
            False
        """
        from restora.model_zoo.loaded import loaded_models

        self._unload()
        for key in sorted(getattr(self, "_model_keys", ())):
            loaded_models().evict(key)
        self._model_keys = set()
        self._loaded = False

    def shared_model(self, key: str, load: Callable[[], Any], memory_mb: int | None = None) -> Any:
        """The model under ``key`` in the process-wide cache, loaded with ``load()`` when absent
        (never loaded, or dropped since to make room). ``memory_mb`` defaults to the tool's.

        Ask for it on every use and keep no reference after the call: the cache, not the tool,
        decides what stays in memory.

        Examples:
            >>> net = self.shared_model(f"ncnn:srmd:{scale}", lambda: build(scale))   # doctest: +SKIP
        """
        from restora.model_zoo.loaded import loaded_models

        if not hasattr(self, "_model_keys"):
            self._model_keys = set()
        self._model_keys.add(key)
        return loaded_models().get(key, self.memory_mb if memory_mb is None else int(memory_mb), load)

    def _load(self) -> None:  # model tools override
        return None

    def _unload(self) -> None:  # model tools override
        return None

    @classmethod
    def availability(cls) -> str | None:
        """None when the tool can run here, else the reason it cannot (missing weights, ...)."""
        return None

    # -- parameters ------------------------------------------------------------------------
    @classmethod
    def parse_params(cls, params: ToolParams | Mapping[str, Any] | None) -> ToolParams:
        if params is None:
            return cls.Params()
        if isinstance(params, cls.Params):
            return params
        if isinstance(params, ToolParams):
            raise ToolError(f"{cls.name}: expected {cls.Params.__name__}, got {type(params).__name__}")
        try:
            return cls.Params.model_validate(dict(params))
        except ValidationError as e:
            raise ToolError(f"{cls.name}: invalid params: {_short_validation(e)}") from e

    @classmethod
    def suggest_params(cls, severity: float, evidence: Mapping[str, float]) -> list[ToolParams]:
        """Candidate params for a finding of this tool's degradation, best guess first.

        The planner walks down this list when a choice is banned, so give alternatives (e.g. a
        weaker and a stronger setting). The default is just the default params.
        """
        return [cls.Params()]

    @classmethod
    def suggest_params_for(cls, task: Task | str, severity: float, evidence: Mapping[str, float]) -> list[ToolParams]:
        """:meth:`suggest_params` for ``task``: a multi-task tool sets its ``task`` param."""
        suggestions = cls.suggest_params(severity, evidence)
        if cls.multi_task():
            suggestions = [p.model_copy(update={"task": Task(task)}) for p in suggestions]
        return suggestions

    # -- running ---------------------------------------------------------------------------
    @abstractmethod
    def run(self, image: np.ndarray, params: ToolParams) -> np.ndarray:
        """Restore ``image`` (float32 HxWx3 in [0, 1]); return the same form."""

    def __call__(
        self, image: np.ndarray, params: ToolParams | Mapping[str, Any] | None = None
    ) -> np.ndarray:
        check_image(image, f"input to {self.name}", error=ToolError)
        p = self.parse_params(params)
        self.load()
        self.last_info = {}
        try:
            out = self.run(image, p)
        except ToolError:
            raise
        except Exception as e:  # a tool crash becomes a ToolError the agent can record and ban
            raise ToolError(f"{self.name} failed: {type(e).__name__}: {e}") from e
        out = np.asarray(out)
        if out.ndim != 3 or out.shape[2] != 3:
            raise ToolError(f"{self.name} returned shape {out.shape}, expected (H, W, 3)")
        if not self.changes_size and out.shape != image.shape:
            raise ToolError(f"{self.name} changed the image size {image.shape} -> {out.shape}")
        if not np.isfinite(out).all():
            raise ToolError(f"{self.name} returned NaN or infinite values")
        return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """A JSON-able description for the catalogue and planner prompts."""
        unavailable = cls.availability()
        return {
            "name": cls.name,
            "task": str(cls.task),
            "tasks": [str(t) for t in cls.handles()],
            "summary": cls.summary,
            "cost": cls.cost,
            "needs_device": cls.needs_device,
            "memory_mb": cls.memory_mb,
            "learned": cls.learned,
            "prior": cls.expected_gain(),
            "params": cls.Params.model_json_schema(),
            "available": unavailable is None,
            "unavailable_reason": unavailable,
        }


def _short_validation(e: ValidationError) -> str:
    parts = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "params"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


class Timer:
    """Context manager measuring wall seconds."""

    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
