"""Where models run and what stays loaded: the one owner of device and memory.

* :func:`resolve_device` turns ``"auto"`` (or None) into a device: ``RESTORA_DEVICE`` when set,
  else ``cuda`` when torch sees a GPU, else ``cpu``. The CLI, :class:`restora.tools.ToolBox` and
  :class:`restora.quality.QualityScorer` all ask it.
* :func:`tool_device` is where a tool (or learned metric) made for a device runs: a tool on the
  default ``"cpu"`` follows ``RESTORA_DEVICE`` when that is set; :func:`placement` adds the dtype
  (``RESTORA_DTYPE``, else bfloat16 on a GPU that has it, float16 on one that does not, float32 on
  the CPU).
* :func:`loaded_models` is the process-wide cache of loaded models, within one memory budget
  (``RESTORA_MODEL_MEMORY_MB``, else 90% of the GPU, else half the RAM). Every tool model (ncnn
  networks, spandrel models, DiT pipelines) and every learned metric is loaded through it, once
  per key (a card id plus its placement), and kept until the budget needs its room: then the
  least recently used are dropped first (and the accelerator's cache is emptied). Holders fetch a
  model from the cache on each use instead of keeping it, so a dropped model is really freed and
  comes back, loaded again, when next asked for.

Examples:
    >>> cache = LoadedModels(budget_mb=100)
    >>> a = cache.get("a", 60, lambda: object())
    >>> b = cache.get("b", 60, lambda: object())    # "a" is dropped to make room
    >>> cache.keys()
    ['b']
    >>> resolve_device("cpu")
    'cpu'
"""

from __future__ import annotations

import gc
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from restora.config import DeviceConfig, check_device

def apply(config: DeviceConfig) -> tuple[str, str]:
    """Put a :class:`restora.config.DeviceConfig` to use: its memory budget (when set) becomes this
    process's, and its ``(device, dtype)`` placement is returned (see :func:`placement`).

    Examples:
        >>> apply(DeviceConfig(device="cpu"))
        ('cpu', 'float32')
    """
    if config.memory_mb is not None:
        loaded_models().set_budget(int(config.memory_mb))
    return placement(config.device, config.dtype)


def resolve_device(device: str | None = None) -> str:
    """The device for models: ``device`` itself (checked), or for ``"auto"``/None
    ``RESTORA_DEVICE`` when set, else ``"cuda"`` when torch sees a GPU, else ``"cpu"``.

    Examples:
        >>> resolve_device("cuda:1")
        'cuda:1'
        >>> resolve_device("auto") in ("cpu", "cuda") or "RESTORA_DEVICE" in os.environ
        True
        >>> resolve_device("gpu")
        Traceback (most recent call last):
        ...
        ValueError: device 'gpu': use auto, cpu, cuda, cuda:N (or mps, xpu)
    """
    device = (device or "").strip()
    if device and device != "auto":
        return check_device(device)
    from restora.config import env

    from_env = env().device
    if from_env:
        return check_device(from_env, "RESTORA_DEVICE")
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def tool_device(device: str | None = "cpu") -> str:
    """Where a tool (or learned metric) made for ``device`` runs: ``"auto"``/None as
    :func:`resolve_device`; the default ``"cpu"`` follows ``RESTORA_DEVICE`` when that is set;
    any other device is kept.

    Examples:
        >>> tool_device("cuda:1")
        'cuda:1'
        >>> tool_device("cpu") if "RESTORA_DEVICE" not in os.environ else "cpu"
        'cpu'
    """
    from restora.config import env

    if device == "cpu" and env().device:
        device = None
    return resolve_device(device)


def placement(device: str | None = None, dtype: str | None = None) -> tuple[str, str]:
    """``(device, dtype name)`` for models: the arguments, the environment, or the default
    (the device as :func:`resolve_device`).

    Examples:
        >>> placement("cpu")
        ('cpu', 'float32')
    """
    import torch

    from restora.config import env

    device = resolve_device(device)
    if dtype is None:
        dtype = env().dtype
    if dtype is None:
        if device.startswith("cuda"):
            dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        else:
            dtype = "float32"
    if not isinstance(getattr(torch, dtype, None), torch.dtype):
        raise ValueError(f"unknown dtype {dtype!r} (e.g. float32, bfloat16, float16)")
    return device, dtype


def tool_placement(tool_device_: str | None) -> tuple[str, str]:
    """:func:`placement` for a tool made for ``tool_device_`` (see :func:`tool_device`).

    Examples:
        >>> tool_placement("cpu") if "RESTORA_DEVICE" not in os.environ else ("cpu", "float32")
        ('cpu', 'float32')
    """
    return placement(tool_device(tool_device_))


def default_budget_mb() -> int:
    """``RESTORA_MODEL_MEMORY_MB``, else 90% of the GPU's memory, else half the machine's RAM.

    Examples:
        >>> default_budget_mb() > 0
        True
    """
    from restora.config import env

    budget = env().model_memory_mb
    if budget is not None:
        return budget
    try:
        import torch

        if torch.cuda.is_available():
            return int(torch.cuda.get_device_properties(0).total_memory / 2**20 * 0.9)
    except Exception:  # noqa: BLE001 - no usable GPU: fall back to RAM
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20 / 2)
    except (ValueError, OSError, AttributeError):
        return 8192


class LoadedModels:
    """Models by key, least recently used first out when ``budget_mb`` would be exceeded.

    A model larger than the whole budget is still loaded (alone): refusing would make the tool
    unusable, and the caller's estimate is approximate anyway.

    Examples:
        >>> cache = LoadedModels(budget_mb=100)
        >>> cache.get("a", 40, lambda: "model a"), cache.used_mb()
        ('model a', 40)
        >>> cache.set_budget(30); cache.keys()                # shrinking drops what no longer fits
        []
    """

    def __init__(self, budget_mb: int | None = None) -> None:
        self.budget_mb = default_budget_mb() if budget_mb is None else int(budget_mb)
        self._models: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._lock = threading.RLock()
        self.loads = 0
        self.evictions = 0

    def get(self, key: str, memory_mb: int, load: Callable[[], Any]) -> Any:
        """The model under ``key``, loaded with ``load()`` (after making room) when absent.

        Examples:
            >>> LoadedModels(budget_mb=10).get("spandrel:my-card:cpu:float32", 4, lambda: "model")
            'model'
        """
        with self._lock:
            hit = self._models.get(key)
            if hit is not None:
                self._models.move_to_end(key)
                return hit[0]
            self._make_room(memory_mb)
            model = load()
            self.loads += 1
            self._models[key] = (model, int(memory_mb))
            return model

    def set_budget(self, budget_mb: int) -> None:
        """Change the budget; models that no longer fit are dropped, least recently used first.

        Examples:
            >>> loaded_models().set_budget(24_000)             # doctest: +SKIP
        """
        if int(budget_mb) < 1:
            raise ValueError(f"budget_mb must be a positive number of MB, got {budget_mb}")
        with self._lock:
            self.budget_mb = int(budget_mb)
            self._make_room(0)

    def used_mb(self) -> int:
        with self._lock:
            return sum(mb for _, mb in self._models.values())

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._models)

    def evict(self, key: str) -> bool:
        """Drop ``key``'s model; True when it was loaded."""
        with self._lock:
            found = self._models.pop(key, None) is not None
        if found:
            self.evictions += 1
            _free()
        return found

    def clear(self) -> None:
        with self._lock:
            self._models.clear()
        _free()

    def _make_room(self, memory_mb: int) -> None:
        while self._models and self.used_mb() + memory_mb > self.budget_mb:
            self._models.popitem(last=False)
            self.evictions += 1
            _free()


def _free() -> None:
    gc.collect()
    torch = sys.modules.get("torch")  # not imported: nothing of torch's to free (ncnn-only processes)
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


_shared: LoadedModels | None = None
_shared_lock = threading.Lock()


def loaded_models() -> LoadedModels:
    """The process-wide cache: every tool model and learned metric of this process, one budget.

    Examples:
        >>> loaded_models() is loaded_models()
        True
    """
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = LoadedModels()
        return _shared
