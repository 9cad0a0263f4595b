"""Loaded models, shared by every tool in the process, within a memory budget.

A model is loaded once per key (a card id plus its placement) and kept until the budget needs
its room: then the least recently used models are dropped first (and the accelerator's cache is
emptied). :func:`placement` picks the device and dtype: ``RESTORA_DEVICE`` / ``RESTORA_DTYPE``
when set, else the GPU in bfloat16 (float16 on GPUs without it) when there is one, else the CPU
in float32.

Examples:
    >>> cache = LoadedModels(budget_mb=100)
    >>> a = cache.get("a", 60, lambda: object())
    >>> b = cache.get("b", 60, lambda: object())    # "a" is dropped to make room
    >>> cache.keys()
    ['b']
"""

from __future__ import annotations

import gc
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any



def placement(device: str | None = None, dtype: str | None = None) -> tuple[str, str]:
    """``(device, dtype name)`` for models: the arguments, the environment, or the default.

    Examples:
        >>> placement("cpu")
        ('cpu', 'float32')
    """
    import torch

    from restora.config import env

    e = env()
    device = device or e.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if dtype is None:
        dtype = e.dtype
    if dtype is None:
        if device.startswith("cuda"):
            dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        else:
            dtype = "float32"
    if not isinstance(getattr(torch, dtype, None), torch.dtype):
        raise ValueError(f"unknown dtype {dtype!r} (e.g. float32, bfloat16, float16)")
    return device, dtype


def tool_placement(tool_device: str) -> tuple[str, str]:
    """:func:`placement` for a tool made for ``tool_device``: a tool on the default "cpu" follows
    ``RESTORA_DEVICE`` when that is set, any other device is kept.

    Examples:
        >>> tool_placement("cpu") if "RESTORA_DEVICE" not in os.environ else ("cpu", "float32")
        ('cpu', 'float32')
    """
    from restora.config import env

    return placement(None if tool_device == "cpu" and env().device else tool_device)


def default_budget_mb() -> int:
    """``RESTORA_MODEL_MEMORY_MB``, else 90% of the GPU's memory, else half the machine's RAM."""
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
    """

    def __init__(self, budget_mb: int | None = None) -> None:
        self.budget_mb = default_budget_mb() if budget_mb is None else int(budget_mb)
        self._models: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._lock = threading.RLock()
        self.loads = 0
        self.evictions = 0

    def get(self, key: str, memory_mb: int, load: Callable[[], Any]) -> Any:
        """The model under ``key``, loaded with ``load()`` (after making room) when absent."""
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
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover
        pass


_shared: LoadedModels | None = None
_shared_lock = threading.Lock()


def loaded_models() -> LoadedModels:
    """The process-wide cache."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = LoadedModels()
        return _shared
