"""Specialist restoration models through spandrel: one tool per ``spandrel`` model card.

spandrel recognises an architecture (NAFNet, SCUNet, DRUNet, FBCNN, SwinIR, Restormer with
``spandrel-extra-arches``, ...) and its hyper-parameters from a state dict's keys and shapes, so a
card only needs its safetensors file, its task and its tool name. The state dict is read with
``safetensors`` (never a pickle) and handed to ``ModelLoader.load_from_state_dict``; the model
is placed by :func:`restora.model_zoo.loaded.tool_placement` (GPU in bfloat16/float16 when the
architecture supports it, else float32) and held by the process-wide
:func:`restora.model_zoo.loaded.loaded_models` cache (the tool asks it on each call). Large
images run in overlapping tiles of the card's ``defaults.tile`` (default 512) with context and
feathered blending
(:func:`restora.tools._tiling.run_tiled`); spandrel pads each tile to the architecture's size
requirements itself.

Params: ``blend`` keeps that share of the model's output (the rest is the input, upscaled with
bicubic interpolation for super-resolution cards), so the planner can take a gentler step.

Examples:
    >>> from restora.tools import get_tool
    >>> cls = get_tool("denoise_scunet")              # a built-in card; weights via `restora zoo fetch`
    >>> cls.task, cls.learned
    (<Task.DENOISE: 'denoise'>, True)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from restora.tools._tiling import run_tiled
from restora.tools.base import Tool, ToolParams

DEFAULT_TILE = 512  # = CardDefaults().tile
DEFAULT_COST = 20.0  # seconds per megapixel on one CPU core: unknown for an arbitrary card, so cautious
_classes: dict[str, type[Tool]] = {}


class SpandrelParams(ToolParams):
    blend: float = Field(1.0, ge=0.0, le=1.0, description="share of the model's output kept (1: all of it)")


class SpandrelTool(Tool):
    """Base of the tools made from spandrel cards (see :func:`spandrel_tool`)."""

    Params = SpandrelParams
    learned: ClassVar[bool] = True
    card: ClassVar[str] = ""
    scale: ClassVar[int] = 1
    tile: ClassVar[int] = DEFAULT_TILE

    @classmethod
    def availability(cls) -> str | None:
        import importlib.util

        from restora.model_zoo import availability

        if importlib.util.find_spec("spandrel") is None:  # found, not imported: listing stays cheap
            return "spandrel is not installed (pip install spandrel)"
        return availability(cls.card)

    @classmethod
    def suggest_params(cls, severity: float, evidence: Mapping[str, float]) -> list[ToolParams]:
        return [SpandrelParams(blend=1.0), SpandrelParams(blend=0.6)]

    def _load(self) -> None:
        from restora.model_zoo.loaded import tool_placement

        device, dtype = tool_placement(self.device)
        self._device = device
        self._key = f"spandrel:{self.card}:{device}:{dtype}"
        self._loader = lambda: _load_descriptor(self.card, device, dtype)
        self.shared_model(self._key, self._loader)  # load now: a bad checkpoint fails here

    def run(self, image: np.ndarray, params: ToolParams) -> np.ndarray:
        assert isinstance(params, SpandrelParams)
        desc = self.shared_model(self._key, self._loader)
        tile = int(self.tile)
        overlap, context = min(32, tile // 8), min(16, tile // 16)
        out = run_tiled(lambda t: _forward(desc, t), image, scale=self.scale, tile=tile, overlap=overlap, context=context)
        h, w = image.shape[:2]
        self.last_info = {
            "card": self.card,
            "architecture": desc.architecture.name,
            "tiles": (h > tile or w > tile),
            "tile": tile,
            "device": str(self._device),
            "dtype": str(desc.dtype).replace("torch.", ""),
        }
        if params.blend >= 1.0:
            return out
        base = image
        if self.scale != 1:
            import cv2

            base = cv2.resize(image, (w * self.scale, h * self.scale), interpolation=cv2.INTER_CUBIC)
        return params.blend * out + (1.0 - params.blend) * np.clip(base, 0.0, 1.0)


def _load_descriptor(card_id: str, device: str, dtype: str) -> Any:
    import torch
    from safetensors.torch import load_file
    from spandrel import ImageModelDescriptor, ModelLoader

    from restora.errors import ToolError
    from restora.model_zoo import get_card, resolve

    try:  # Restormer and other non-MIT architectures live in a separate package
        import spandrel_extra_arches

        spandrel_extra_arches.install(ignore_duplicates=True)
    except (ImportError, TypeError):
        pass
    files = resolve(card_id)
    weights = [p for n, p in files.items() if n.endswith(".safetensors")]
    if len(weights) != 1:
        raise ToolError(f"model card {card_id!r}: expected one .safetensors file, got {sorted(files)}")
    state = load_file(str(weights[0]), device="cpu")
    try:
        desc = ModelLoader().load_from_state_dict(state)
    except Exception as e:  # spandrel raises UnsupportedModelError and friends
        raise ToolError(f"model card {card_id!r}: spandrel does not recognise the architecture ({type(e).__name__}: {e})") from e
    if not isinstance(desc, ImageModelDescriptor) or desc.input_channels != 3 or desc.output_channels != 3:
        raise ToolError(f"model card {card_id!r}: not an RGB image-to-image model ({type(desc).__name__})")
    card_scale = get_card(card_id).scale
    if desc.scale != card_scale:
        raise ToolError(f"model card {card_id!r}: the checkpoint is a x{desc.scale} {desc.architecture.name}, the card says x{card_scale}")
    want = getattr(torch, dtype)
    if want == torch.bfloat16 and not desc.supports_bfloat16 or want == torch.float16 and not desc.supports_half:
        want = torch.float32
    if device == "cpu":
        want = torch.float32
    desc.to(device, want)
    desc.eval()
    return desc


def _forward(desc: Any, tile: np.ndarray) -> np.ndarray:
    import torch

    x = torch.from_numpy(np.ascontiguousarray(tile.transpose(2, 0, 1)))[None]
    x = x.to(device=desc.device, dtype=desc.dtype)
    y = desc(x)
    return y[0].float().clamp(0, 1).cpu().numpy().transpose(1, 2, 0)


def spandrel_tool(card: Any) -> type[Tool]:
    """The tool class of a spandrel ``card`` (one class per distinct card).

    Examples:
        >>> from restora.model_zoo import get_card
        >>> spandrel_tool(get_card("fbcnn-color")).name
        'dejpeg_fbcnn'
    """
    from restora.tools.base import Task

    key = card.model_dump_json()
    cls = _classes.get(key)
    if cls is not None:
        return cls
    tasks = tuple(Task(t) for t in card.all_tasks)
    attrs: dict[str, Any] = {
        "task": tasks[0],
        "summary": (card.description or f"{card.source or card.id}") + f" (spandrel, card {card.id})",
        "cost": float(card.defaults.cost if card.defaults.cost is not None else DEFAULT_COST),
        "memory_mb": int(card.memory_mb),
        "changes_size": card.scale > 1,
        "card": card.id,
        "scale": int(card.scale),
        "tile": int(card.defaults.tile),
        "__module__": __name__,
        "__doc__": f"{card.description} (model card {card.id!r}, licence {card.licence}).",
    }
    if card.defaults.prior is not None:
        attrs["prior"] = float(card.defaults.prior)
    cls = type(f"Spandrel_{card.tool}", (SpandrelTool,), attrs)
    cls.name = card.tool
    _classes[key] = cls
    return cls
