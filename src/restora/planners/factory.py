"""A planner named on the command line (``--planner heuristic|vlm|hf ...``), made fresh per image.

:class:`PlannerSpec` is what ``restora run``, ``restora chat`` and ``restora bench mio`` are told;
it is a plain picklable value (bench workers are spawned processes, each makes its own planners),
checked by :meth:`PlannerSpec.check` before anything runs. :func:`planner_factory` turns it into a
function returning a new planner per image (planners keep per-image caches); the model behind an
``hf`` planner is loaded once per process and shared.

Examples:
    >>> spec = PlannerSpec("heuristic")
    >>> planner_factory(spec)().name
    'heuristic'
    >>> PlannerSpec("hf", model="out/tiny-planner", adapter="runs/sft").describe()
    {'name': 'hf', 'model': 'out/tiny-planner', 'adapter': 'runs/sft', 'decoding': 'auto'}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PLANNERS = ("heuristic", "vlm", "hf")
DECODINGS = ("auto", "constrained", "free")
"""``hf`` only: ``auto`` constrains replies to the JSON schema with xgrammar when it is installed,
``constrained`` requires it, ``free`` never constrains (the raw model)."""


@dataclass(frozen=True)
class PlannerSpec:
    """Which planner, and what it needs.

    Args:
        name: ``heuristic``, ``vlm`` (an OpenAI-compatible server, e.g. vLLM) or ``hf`` (in process).
        url: vlm: the server's base URL.
        model: vlm: the served model name; hf: a local checkpoint folder.
        adapter: hf: a LoRA adapter (folder, ``restora train planner`` run folder or planner card id).
        key: vlm: the API key (never written to results).
        timeout: vlm: seconds per request.
        decoding: hf: one of :data:`DECODINGS`.
    """

    name: str = "heuristic"
    url: str | None = None
    model: str | None = None
    adapter: str | None = None
    key: str = "EMPTY"
    timeout: float = 60.0
    decoding: str = "auto"

    def check(self) -> None:
        """Raise ValueError (or the adapter's or xgrammar's own error) when this cannot make a planner."""
        if self.name not in PLANNERS:
            raise ValueError(f"unknown planner {self.name!r} (available: {', '.join(PLANNERS)})")
        if self.adapter is not None and self.name != "hf":
            raise ValueError("--planner-adapter is for --planner hf (a vLLM server loads adapters itself: --lora-modules NAME=PATH, then --planner-model NAME)")
        if self.decoding not in DECODINGS:
            raise ValueError(f"unknown --planner-decoding {self.decoding!r} (available: {', '.join(DECODINGS)})")
        if self.decoding != "auto" and self.name != "hf":
            raise ValueError("--planner-decoding is for --planner hf (a vlm server is always asked to decode under the schema)")
        if self.name == "vlm" and (not self.url or not self.model):
            raise ValueError("--planner vlm needs --planner-url and --planner-model")
        if self.name == "hf":
            if not self.model or not Path(self.model).is_dir():
                raise ValueError("--planner hf needs --planner-model pointing at a local checkpoint folder")
            if self.adapter is not None:
                from restora.model_zoo.planner import planner_adapter

                planner_adapter(self.adapter)  # a missing or corrupt adapter is an error before anything runs
            if self.decoding == "constrained":
                from restora.planners.hf import XGRAMMAR_HINT, ConstrainedDecodingError, xgrammar_version

                if xgrammar_version() is None:
                    raise ConstrainedDecodingError(f"--planner-decoding constrained needs xgrammar, which is not installed: {XGRAMMAR_HINT}")

    @property
    def constrained(self) -> bool | None:
        """:class:`~restora.planners.hf.HFBackend`'s ``constrained`` for :attr:`decoding`."""
        return {"auto": None, "constrained": True, "free": False}[self.decoding]

    def describe(self) -> dict[str, Any]:
        """What results and reports say about this planner (no key)."""
        out: dict[str, Any] = {"name": self.name}
        if self.name == "vlm":
            out.update(url=self.url, model=self.model)
        elif self.name == "hf":
            out.update(model=self.model, adapter=self.adapter, decoding=self.decoding)
        return out


def planner_factory(spec: PlannerSpec) -> Callable[[], Any]:
    """A function making a fresh planner per image; the backend (HTTP client, loaded model) is shared."""
    from restora.planners.heuristic import HeuristicPlanner

    spec.check()
    if spec.name == "heuristic":
        return HeuristicPlanner
    from restora.planners.vlm import OpenAIBackend, TransformersBackend, VLMPlanner

    if spec.name == "vlm":
        assert spec.url and spec.model
        backend: Any = OpenAIBackend(spec.url, model=spec.model, api_key=spec.key, timeout=spec.timeout)
    else:
        assert spec.model
        backend = TransformersBackend(spec.model, adapter=spec.adapter, constrained=spec.constrained)
    return lambda: VLMPlanner(backend)
