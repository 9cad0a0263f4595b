"""Typed configuration: the agent's run settings, where models run, and every ``RESTORA_*``
environment variable.

This is the one module that reads ``RESTORA_*`` variables. :func:`env` reads them all, checks
them and returns an :class:`Env`; everything else asks it (on each call, so a changed variable is
seen, e.g. in tests). :data:`ENV_VARS` lists them with their meaning, for the README and ``--help``.

Configs are dataclasses with help text in each field's ``metadata["help"]``, checked on creation
(``ValueError`` saying what is wrong and what to do), in the style of TRL's configs.

Examples:
    >>> from restora.config import RunConfig, DeviceConfig, env
    >>> RunConfig(max_steps=4).max_steps
    4
    >>> RunConfig(max_steps=-1)
    Traceback (most recent call last):
    ...
    ValueError: max_steps must be >= 0 (tool calls allowed per image), got -1
    >>> DeviceConfig(device="cpu").device
    'cpu'
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from restora.errors import RestoraError


class ConfigError(RestoraError, ValueError):
    """A configuration value (an argument or an environment variable) is invalid; says which."""


def help_field(text: str, **kw: Any) -> Any:
    """A dataclass field with ``metadata["help"] = text`` (the configs' help text)."""
    return field(metadata={"help": text}, **kw)


_DEVICE = re.compile(r"^(cpu|(cuda|xpu)(:\d+)?|mps)$")


def check_device(device: str, source: str = "device") -> str:
    """``device`` when it names one torch can place models on (cpu, cuda, cuda:N, mps, xpu[:N]).

    Examples:
        >>> check_device("cuda:1")
        'cuda:1'
        >>> check_device("gpu")
        Traceback (most recent call last):
        ...
        ValueError: device 'gpu': use auto, cpu, cuda, cuda:N (or mps, xpu)
    """
    if not _DEVICE.match(device):
        raise ValueError(f"{source} {device!r}: use auto, cpu, cuda, cuda:N (or mps, xpu)")
    return device


# -- environment ---------------------------------------------------------------------------------
ENV_VARS: dict[str, str] = {
    "RESTORA_DATA": "the shared data folder of real photos for tests and benchmarks (default ../shared/data)",
    "RESTORA_ZOO": "a zoo folder searched first for model files; a <card>/card.json in it adds a card",
    "RESTORA_ZOO_DOWNLOAD": "1: let a missing card's files be downloaded from the hub on first use (default: only `restora zoo fetch` downloads)",
    "RESTORA_DEVICE": "where models run: cpu, cuda, cuda:1, ... (default: the GPU when there is one, else the CPU)",
    "RESTORA_DTYPE": "model dtype: float32, bfloat16, float16 (default: bfloat16 on a GPU that has it, float16 on one that does not, float32 on the CPU)",
    "RESTORA_MODEL_MEMORY_MB": "memory budget of loaded models per process, MB (default: 90% of the GPU, else half the RAM)",
    "RESTORA_DIT": "the diffusers model card dit_restore uses (default: the available card with the highest preference)",
    "RESTORA_DIT_OFFLOAD": "none, model or sequential: diffusers CPU offload for the DiT (default: model when the card does not fit the GPU)",
    "RESTORA_NCNN_THREADS": "threads per ncnn network (default: all CPUs; the batch workers set 1)",
    "RESTORA_PLANNER_KEY": "API key of an OpenAI-compatible planner server (restora run --planner vlm)",
    "RESTORA_SESSIONS": "where chat sessions (restora chat, restora web) keep their images and checkpoints (default ~/.local/share/restora/sessions)",
    "RESTORA_PERCEPTION": "perception backend when a run does not name one: learned (the shipped network), classical, or a run folder of `restora train perception`",
}
"""Every ``RESTORA_*`` variable restora reads, with its meaning."""

DIT_OFFLOAD_MODES = ("none", "model", "sequential")


@dataclass(frozen=True)
class Env:
    """The ``RESTORA_*`` environment, read and checked by :func:`env` (None: not set)."""

    data: Path | None = help_field("RESTORA_DATA", default=None)
    zoo: Path | None = help_field("RESTORA_ZOO", default=None)
    zoo_download: bool = help_field("RESTORA_ZOO_DOWNLOAD", default=False)
    device: str | None = help_field("RESTORA_DEVICE", default=None)
    dtype: str | None = help_field("RESTORA_DTYPE", default=None)
    model_memory_mb: int | None = help_field("RESTORA_MODEL_MEMORY_MB", default=None)
    dit: str | None = help_field("RESTORA_DIT", default=None)
    dit_offload: str | None = help_field("RESTORA_DIT_OFFLOAD", default=None)
    ncnn_threads: int | None = help_field("RESTORA_NCNN_THREADS", default=None)
    planner_key: str | None = help_field("RESTORA_PLANNER_KEY", default=None)
    perception: str | None = help_field("RESTORA_PERCEPTION", default=None)
    sessions: Path | None = help_field("RESTORA_SESSIONS", default=None)


def _positive_int(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a positive integer, got {raw!r}") from None
    if value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {raw!r}")
    return value


def env(environ: dict[str, str] | None = None) -> Env:
    """The ``RESTORA_*`` variables of ``environ`` (default ``os.environ``), checked.

    Examples:
        >>> env({"RESTORA_NCNN_THREADS": "2"}).ncnn_threads
        2
        >>> env({"RESTORA_DIT_OFFLOAD": "all"})
        Traceback (most recent call last):
        ...
        restora.config.ConfigError: RESTORA_DIT_OFFLOAD='all': use none, model or sequential
    """
    e = os.environ if environ is None else environ

    def get(name: str) -> str | None:
        value = e.get(name, "").strip()
        return value or None

    offload = get("RESTORA_DIT_OFFLOAD")
    if offload is not None and offload not in DIT_OFFLOAD_MODES:
        raise ConfigError(f"RESTORA_DIT_OFFLOAD={offload!r}: use none, model or sequential")
    memory = get("RESTORA_MODEL_MEMORY_MB")
    threads = get("RESTORA_NCNN_THREADS")
    data, zoo = get("RESTORA_DATA"), get("RESTORA_ZOO")
    return Env(
        data=Path(data) if data else None,
        zoo=Path(zoo).expanduser() if zoo else None,
        zoo_download=get("RESTORA_ZOO_DOWNLOAD") == "1",
        device=get("RESTORA_DEVICE"),
        dtype=get("RESTORA_DTYPE"),
        model_memory_mb=_positive_int("RESTORA_MODEL_MEMORY_MB", memory) if memory else None,
        dit=get("RESTORA_DIT"),
        dit_offload=offload,
        ncnn_threads=_positive_int("RESTORA_NCNN_THREADS", threads) if threads else None,
        planner_key=get("RESTORA_PLANNER_KEY"),
        perception=get("RESTORA_PERCEPTION"),
        sessions=Path(get("RESTORA_SESSIONS")).expanduser() if get("RESTORA_SESSIONS") else None,
    )


TEST_ENV_VARS: dict[str, str] = {
    "RESTORA_VLLM_VENV": "tests: the virtual environment with vLLM (scripts/make_vllm_venv.sh); the vllm tests skip without it",
    "RESTORA_REQUIRE_VLLM": "tests: 1 makes a missing vLLM environment a failure instead of a skip (CI sets it)",
    "RESTORA_REQUIRE_BROWSER": "tests: 1 makes a missing headless Chromium or Playwright a failure instead of a skip (CI sets it)",
    "RESTORA_REQUIRE_RAY": "tests: 1 makes a missing Ray Data a failure instead of a skip for the `ray` tests (CI sets it)",
}
"""Variables only the test suite reads (tests/, not the package)."""


# -- the agent's run -----------------------------------------------------------------------------
@dataclass
class RunConfig:
    """How the agent runs on one image (``restora run`` flags map onto these).

    Examples:
        >>> RunConfig(max_steps=6, min_gain=0.0).to_dict()["max_steps"]
        6
    """

    max_steps: int = help_field("tool calls allowed per image (rolled-back and failed ones count)", default=8)
    max_seconds: float = help_field("wall-clock budget per image, seconds; the planner is not asked after it", default=600.0)
    min_gain: float = help_field("a step is kept only if overall quality rises by more than this", default=0.002)
    min_consistency: float = help_field(
        "... and only if its output keeps at least this much of its input's coarse structure "
        "(restora.quality.structure_consistency; 0.25 calibrated on benchmark cases, see there)",
        default=0.25,
    )
    request: str | None = help_field("a person's words to the planner (chat sessions), or None", default=None)
    plan_megapixels: float = help_field(
        "larger images are planned on a mosaic of native-resolution crops (perception, tool trials, scoring and the "
        "guard never see a downscale) and the kept steps are then rendered once on the whole image",
        default=2.0,
    )
    plan_crop: int = help_field("side of each planning crop, px (four crops, tiled 2 x 2)", default=256)
    sibling_trials: bool = help_field(
        "also run the tool's other suggested parameters on each step's input and keep the best-scoring one the "
        "guard passes (off: on held-out pool photos the best-scoring of a denoiser's three strengths was worse "
        "than its first suggestion, -0.1 dB for NLM and -0.9 dB for SRMD; the score over-rewards smoothing)",
        default=False,
    )
    perception: str | None = help_field(
        "what reads the image: learned (the network that ships with restora), classical (the calibrated estimators) or "
        "a run folder of `restora train perception` (None: RESTORA_PERCEPTION, else restora.perception.DEFAULT_BACKEND)",
        default=None,
    )
    guard: bool = help_field(
        "... and only if the no-harm guard finds that what it removed looks like the degradation it targets "
        "(restora.quality.guard; fitted by `restora train guard` on synthesized steps)",
        default=True,
    )
    guard_vouch: bool = help_field(
        "keep a step the guard vouches for (a family that proved reliable on its validation steps, sure this step "
        "helped) even when the NR score fell: the NR metrics read the denoise after a de-blocking as worse while it "
        "gains 3-4 dB. The structure check still applies",
        default=True,
    )

    def __post_init__(self) -> None:
        if int(self.max_steps) != self.max_steps or self.max_steps < 0:
            raise ValueError(f"max_steps must be >= 0 (tool calls allowed per image), got {self.max_steps}")
        self.max_steps = int(self.max_steps)
        if not self.max_seconds > 0:
            raise ValueError(f"max_seconds must be > 0 (the time budget per image), got {self.max_seconds}")
        self.max_seconds = float(self.max_seconds)
        if not -1.0 <= self.min_gain <= 1.0:
            raise ValueError(f"min_gain is a difference of scores in [0, 1]; got {self.min_gain}")
        self.min_gain = float(self.min_gain)
        if not -1.0 <= self.min_consistency <= 1.0:
            raise ValueError(f"min_consistency is a correlation in [-1, 1]; got {self.min_consistency}")
        self.min_consistency = float(self.min_consistency)
        self.guard = bool(self.guard)
        self.guard_vouch = bool(self.guard_vouch)
        self.sibling_trials = bool(self.sibling_trials)
        if not self.plan_megapixels > 0:
            raise ValueError(f"plan_megapixels must be > 0, got {self.plan_megapixels}")
        self.plan_megapixels = float(self.plan_megapixels)
        if int(self.plan_crop) != self.plan_crop or self.plan_crop < 64:
            raise ValueError(f"plan_crop must be an integer >= 64 px, got {self.plan_crop}")
        self.plan_crop = int(self.plan_crop)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with ``changes`` (checked again); unknown names are an error."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise TypeError(f"unknown RunConfig fields {unknown} (known: {', '.join(sorted(names))})")
        return dataclasses.replace(self, **changes)


# -- where models run ----------------------------------------------------------------------------
@dataclass
class DeviceConfig:
    """Where model tools and learned metrics run, in what dtype, within what memory.

    ``None`` fields fall back to the environment (``RESTORA_DEVICE``, ``RESTORA_DTYPE``,
    ``RESTORA_MODEL_MEMORY_MB``), then to the default: the GPU in bfloat16 (float16 where bf16 is
    unsupported) when torch sees one, else the CPU in float32. ``"auto"`` is the same as None.

    The config only holds and checks the values; :func:`restora.model_zoo.loaded.apply` puts them
    to use (that module alone picks devices and keeps the memory budget).

    Examples:
        >>> from restora.model_zoo.loaded import apply
        >>> apply(DeviceConfig(device="cpu", dtype="float32"))
        ('cpu', 'float32')
    """

    device: str | None = help_field("auto, cpu, cuda, cuda:1, ... (None/auto: RESTORA_DEVICE, else the GPU when there is one)", default=None)
    dtype: str | None = help_field("float32, bfloat16 or float16 (None: RESTORA_DTYPE, else by device)", default=None)
    memory_mb: int | None = help_field("memory budget of loaded models, MB (None: RESTORA_MODEL_MEMORY_MB, else 90% of the GPU / half the RAM)", default=None)

    def __post_init__(self) -> None:
        if self.device == "auto":
            self.device = None
        if self.device is not None:
            check_device(self.device)
        if self.dtype is not None and self.dtype not in ("float32", "bfloat16", "float16"):
            raise ValueError(f"dtype {self.dtype!r}: use float32, bfloat16 or float16")
        if self.memory_mb is not None and int(self.memory_mb) < 1:
            raise ValueError(f"memory_mb must be a positive number of MB, got {self.memory_mb}")
