"""The all-in-one restorer: an image-editing DiT (diffusers) told what to remove.

RealRestorer showed that an instruction-following image editor fine-tuned on restoration pairs
restores real photos well, one fixed instruction per degradation. This tool runs such a model
through diffusers: any ``diffusers`` model card whose ``pipeline_class`` is importable
(``QwenImageEditPipeline``, ``QwenImageEditPlusPipeline``, ``FluxKontextPipeline``; a
Step1X-Edit/RealRestorer pipeline as soon as its class can be imported, named by the card's
``defaults.module``), with

* **one tool, every task**: the task is a param (``task``), and each task has its fixed
  instruction (:data:`PROMPTS`);
* **LoRA adapters from the zoo**: every ``lora`` card whose ``base`` is the pipeline's card is
  loaded as a named adapter and switched on for the tasks it lists (our trainer writes them);
* **a resolution policy**: the model works at its native size (``native_pixels``, about 1 MP, in
  multiples of ``multiple``). An image up to twice that is resized to the native area (aspect
  kept), restored and resized back; a larger one is restored in overlapping native-size tiles,
  feathered together. The choice, the size run and the tile count go to the trace
  (``tool_info``);
* **prompts encoded once**: where the text conditioning does not depend on the image (FLUX
  Kontext: T5 + CLIP), each task's fixed instruction is encoded on first use and its embeddings
  reused, so the text encoders leave the per-image path (Qwen-Image-Edit's VL encoder sees the
  image, so it encodes every call);
* **steps, guidance and seed** as params (``None``: the card's defaults), run with a seeded CPU
  generator so a step is reproducible;
* **placement**: :func:`restora.model_zoo.loaded.tool_placement` picks device and dtype, and the
  pipeline (with its encoded prompts) lives in the process-wide
  :func:`restora.model_zoo.loaded.loaded_models` cache, asked on each call;
  ``RESTORA_DIT_OFFLOAD`` = ``none`` | ``model`` | ``sequential`` chooses diffusers' CPU offload
  (default: ``model`` when the card's memory does not fit in the GPU, else ``none``).

Which card: ``RESTORA_DIT`` names one; otherwise the available card with the highest
``defaults.preference`` (the real models outrank the tiny test pipeline).

Examples:
    >>> from restora.tools import get_tool
    >>> cls = get_tool("dit_restore")
    >>> len(cls.handles()) > 1, cls.Params(task="derain").task
    (True, <Task.DERAIN: 'derain'>)
"""

from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Iterator
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from restora.errors import ToolError
from restora.taxonomy import Task
from restora.tools._tiling import run_tiled
from restora.tools.base import Tool, ToolParams

DIT_ENV = "RESTORA_DIT"
TILE_ABOVE = 2.0
"""Images with more than this many times the native pixel count are restored in tiles."""
DEFAULT_COST = 60.0
"""The tool's cost when the card's ``defaults.cost`` is None."""
NEEDS_DEVICE_ABOVE_MB = 16_000
"""A card larger than this needs an accelerator, unless its ``defaults.needs_device`` says."""

PROMPTS: dict[Task, str] = {
    Task.DENOISE: "Remove the noise and grain artefacts from this photo. Keep every detail, texture, colour and the composition unchanged.",
    Task.MOTION_DEBLUR: "Remove the motion blur from this photo and make it sharp. Keep the content, colours and composition unchanged.",
    Task.DEFOCUS_DEBLUR: "Remove the out-of-focus blur from this photo and restore sharp detail. Keep the content, colours and composition unchanged.",
    Task.DEHAZE: "Remove the haze and fog from this photo, restoring clear contrast and natural colours. Keep the content unchanged.",
    Task.DERAIN: "Remove the rain streaks and raindrops from this photo. Keep everything else unchanged.",
    Task.LOW_LIGHT: "Brighten this underexposed photo to a natural exposure without adding noise. Keep the content and colours natural.",
    Task.DEJPEG: "Remove the JPEG compression artefacts, blocking and ringing from this photo. Keep every detail unchanged.",
    Task.SUPER_RESOLUTION: "Restore the fine detail of this low-resolution photo, making it sharp and clean. Keep the content unchanged.",
}


class DiTParams(ToolParams):
    task: Task = Field(Task.DENOISE, description="what to remove; selects the instruction (and LoRA adapter)")
    steps: int | None = Field(None, ge=1, le=100, description="denoising steps (None: the model card's default)")
    guidance: float | None = Field(None, ge=0.0, le=20.0, description="guidance scale (None: the card's default)")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="seed of the sampling noise")
    resolution: Literal["auto", "native", "tiles"] = Field(
        "auto", description="native: resize to ~1 MP and back; tiles: native-size tiles; auto: tiles above 2x native"
    )


def select_card() -> Any:
    """The diffusers model card this process uses, or None; see the module docstring.

    Examples:
        >>> select_card().kind                        # doctest: +SKIP
        'diffusers'
    """
    from restora.model_zoo import availability, get_card, list_cards

    from restora.config import env

    wanted = env().dit
    if wanted:
        card = get_card(wanted)
        if card.kind != "diffusers":
            raise ToolError(f"{DIT_ENV}={wanted}: card {wanted!r} is a {card.kind} card, not a diffusers pipeline")
        return card
    cards = [c for c in list_cards() if c.kind == "diffusers"]
    cards.sort(key=lambda c: (-float(c.defaults.preference), c.id))
    for card in cards:
        if availability(card) is None and _pipeline_class(card, import_=False) is not None:
            return card
    return cards[0] if cards else None


def _pipeline_class(card: Any, import_: bool = True) -> Any:
    """The pipeline class named by ``card`` (from diffusers, or ``defaults.module``), or None."""
    import importlib
    import importlib.util

    module = card.defaults.module
    if not import_:
        if module == "diffusers":
            return "diffusers" if importlib.util.find_spec("diffusers") is not None else None
        return module if importlib.util.find_spec(module.split(".")[0]) is not None else None
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return None
    return getattr(mod, str(card.pipeline_class), None)


class DiTRestore(Tool):
    task = Task.DENOISE
    tasks: ClassVar[tuple[Task, ...]] = tuple(Task)
    Params = DiTParams
    summary = "all-in-one restorer: an image-editing DiT told what to remove (any task; set `task`)"
    cost = 60.0
    memory_mb = 58_000
    learned = True
    needs_device = False

    @classmethod
    def availability(cls) -> str | None:
        from restora.model_zoo import availability

        try:
            card = select_card()
        except Exception as e:  # noqa: BLE001 - a bad RESTORA_DIT is a reason, not a crash
            return str(e)
        if card is None:
            return "no diffusers model card is known"
        cls._adopt(card)
        reason = availability(card)
        if reason is not None:
            return reason
        if _pipeline_class(card, import_=False) is None:
            return f"model card {card.id!r}: pipeline {card.pipeline_class} cannot be imported (module {card.defaults.module})"
        return None

    @classmethod
    def _adopt(cls, card: Any) -> None:
        """Take cost, memory and whether a GPU is needed from the selected card."""
        d = card.defaults
        cls.memory_mb = int(card.memory_mb)
        cls.cost = float(d.cost if d.cost is not None else DEFAULT_COST)
        cls.needs_device = bool(d.needs_device if d.needs_device is not None else card.memory_mb > NEEDS_DEVICE_ABOVE_MB)
        cls.prior = None if d.prior is None else float(d.prior)

    def __init__(self, device: str = "cpu") -> None:
        card = select_card()
        if card is not None:
            type(self)._adopt(card)
        super().__init__(device=device)

    # -- loading ---------------------------------------------------------------------------
    def _load(self) -> None:
        from restora.model_zoo.loaded import tool_placement

        card = select_card()
        if card is None:
            raise ToolError("dit_restore: no diffusers model card is known")
        self._card = card
        device, dtype = tool_placement(self.device)
        offload = _offload_mode(card, device)
        self._device, self._dtype, self._offload = device, dtype, offload
        self._key = f"dit:{card.id}:{device}:{dtype}:{offload}"
        # the cache holds (pipeline, adapters, its encoded prompts): they go and come back together
        self._loader = lambda: (*_load_pipeline(card, device, dtype, offload), {})
        self._pipe = self._adapters = self._prompt_cache = None
        self.shared_model(self._key, self._loader, card.memory_mb)  # load now: errors surface here

    def _unload(self) -> None:
        self._pipe = self._adapters = self._prompt_cache = None

    # -- running ---------------------------------------------------------------------------
    def run(self, image: np.ndarray, params: ToolParams) -> np.ndarray:
        assert isinstance(params, DiTParams)
        self._pipe, self._adapters, self._prompt_cache = self.shared_model(self._key, self._loader, self._card.memory_mb)
        try:
            return self._run(image, params)
        finally:  # no reference kept between calls: the shared cache decides what stays loaded
            self._pipe = self._adapters = self._prompt_cache = None

    def _run(self, image: np.ndarray, params: DiTParams) -> np.ndarray:
        card = self._card
        d = card.defaults
        native, multiple = int(d.native_pixels), int(d.multiple)
        steps = int(params.steps or d.steps)
        guidance = float(params.guidance if params.guidance is not None else d.guidance)
        prompt = PROMPTS[params.task]
        adapter = self._activate_adapter(params.task)
        h, w = image.shape[:2]
        mode = params.resolution
        if mode == "auto":
            mode = "tiles" if h * w > TILE_ABOVE * native else "native"
        sizes: list[tuple[int, int]] = []

        def restore(part: np.ndarray) -> np.ndarray:
            ph, pw = part.shape[:2]
            rh, rw = native_size(ph, pw, native, multiple) if mode == "native" else fit_multiple(ph, pw, multiple)
            sizes.append((rh, rw))
            out = self._generate(_resize(part, rh, rw), prompt, rh, rw, steps, guidance, params.seed)
            return _resize(out, ph, pw)

        if mode == "native":
            out = restore(image)
            tiles = 1
        else:
            side = max(multiple, round(math.sqrt(native) / multiple) * multiple)
            overlap = max(multiple, side // 8)
            tile = tile_size(h, w, side, overlap, multiple)
            out = run_tiled(restore, image, scale=1, tile=tile, overlap=overlap, context=0)
            tiles = len(sizes)
        self.last_info = {
            "card": card.id,
            "pipeline": card.pipeline_class,
            "resolution": mode,
            "run_size": list(sizes[0]) if sizes else None,
            "tiles": tiles,
            "steps": steps,
            "guidance": guidance,
            "seed": params.seed,
            "prompt": prompt,
            "lora": adapter,
            "device": self._device,
            "dtype": self._dtype,
            "offload": self._offload,
        }
        return out

    def _activate_adapter(self, task: Task) -> str | None:
        if not self._adapters:
            return None
        chosen = next((name for name, tasks in self._adapters.items() if task in tasks), None)
        if chosen is None:
            self._pipe.disable_lora()
            return None
        self._pipe.enable_lora()
        self._pipe.set_adapters([chosen], adapter_weights=[1.0])
        return chosen

    def _encoded(self, prompt: str) -> tuple[Any, Any]:
        """(prompt_embeds, pooled_prompt_embeds) of ``prompt``, encoded once per pipeline."""
        import torch

        hit = self._prompt_cache.get(prompt)
        if hit is None:
            with torch.inference_mode():
                embeds, pooled, _ = self._pipe.encode_prompt(
                    prompt=prompt, prompt_2=None, device=_execution_device(self._pipe), num_images_per_prompt=1
                )
            hit = self._prompt_cache[prompt] = (embeds, pooled)
        return hit

    def _generate(self, image: np.ndarray, prompt: str, h: int, w: int, steps: int, guidance: float, seed: int) -> np.ndarray:
        import torch
        from PIL import Image

        pil = Image.fromarray((np.clip(image, 0, 1) * 255.0 + 0.5).astype(np.uint8))
        accepted = set(inspect.signature(self._pipe.__call__).parameters)
        kwargs: dict[str, Any] = {
            "image": pil,
            "prompt": prompt,
            "height": h,
            "width": w,
            "num_inference_steps": steps,
            "generator": torch.Generator(device="cpu").manual_seed(seed),
            "output_type": "np",
        }
        if str(self._card.pipeline_class).startswith("QwenImage"):
            kwargs.update(true_cfg_scale=guidance, negative_prompt=" ")
        else:
            kwargs["guidance_scale"] = guidance
        if "_auto_resize" in accepted:  # Kontext would snap to its preferred resolutions
            kwargs.update(_auto_resize=False, max_area=h * w)
        if {"prompt_embeds", "pooled_prompt_embeds"} <= accepted and hasattr(self._pipe, "encode_prompt"):
            kwargs["prompt_embeds"], kwargs["pooled_prompt_embeds"] = self._encoded(prompt)
            del kwargs["prompt"]
        kwargs = {k: v for k, v in kwargs.items() if k in accepted}
        with torch.inference_mode():
            result = self._pipe(**kwargs)
        out = np.asarray(result.images[0] if hasattr(result, "images") else result[0], dtype=np.float32)
        if out.ndim != 3 or out.shape[2] != 3:
            raise ToolError(f"dit_restore: the pipeline returned shape {out.shape}")
        return np.clip(out, 0.0, 1.0)


def _execution_device(pipe: Any) -> Any:
    return getattr(pipe, "_execution_device", None) or getattr(pipe, "device", None)


def native_size(h: int, w: int, native_pixels: int, multiple: int) -> tuple[int, int]:
    """(height, width) with about ``native_pixels`` pixels, the aspect of ``h`` x ``w``, and
    both sides multiples of ``multiple``.

    Examples:
        >>> native_size(3000, 4000, 1024 * 1024, 16)
        (880, 1184)
        >>> native_size(100, 100, 1024 * 1024, 16)
        (1024, 1024)
    """
    s = math.sqrt(native_pixels / float(h * w))
    return (max(multiple, round(h * s / multiple) * multiple), max(multiple, round(w * s / multiple) * multiple))


def tile_size(h: int, w: int, side: int, overlap: int, multiple: int, slack: float = 1.08) -> int:
    """The square tile for an ``h`` x ``w`` image: the fewest tiles per axis whose side (with
    ``overlap``) stays within ``slack`` times the native ``side``, as a multiple of ``multiple``.

    Every tile is a full DiT call, so a 2048-pixel side takes two tiles of 1088 (a little over
    the native 1024) rather than three of 1024.

    Examples:
        >>> tile_size(2048, 2048, 1024, 128, 16)
        1088
        >>> tile_size(3000, 1000, 1024, 128, 16)     # three tiles down, one across
        1088
        >>> tile_size(1200, 900, 1024, 128, 16)      # two tiles down, of 912 x 900
        912
    """
    limit = side * slack

    def per_axis(length: int) -> int:
        n = 1
        while math.ceil((length + (n - 1) * overlap) / n) > limit:
            n += 1
        return math.ceil((length + (n - 1) * overlap) / n)

    need = max(per_axis(h), per_axis(w))
    return min(max(multiple, math.ceil(need / multiple) * multiple), max(h, w))


def fit_multiple(h: int, w: int, multiple: int) -> tuple[int, int]:
    """``h`` x ``w`` rounded to multiples of ``multiple`` (a tile keeps its size).

    Examples:
        >>> fit_multiple(1000, 37, 16)
        (992, 32)
    """
    return max(multiple, round(h / multiple) * multiple), max(multiple, round(w / multiple) * multiple)


def _resize(image: np.ndarray, h: int, w: int) -> np.ndarray:
    import cv2

    if image.shape[:2] == (h, w):
        return image
    shrink = h * w < image.shape[0] * image.shape[1]
    out = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)


def _offload_mode(card: Any, device: str) -> str:
    from restora.config import env

    mode = env().dit_offload  # checked there: none, model or sequential
    if mode:
        return mode if device != "cpu" else "none"
    if not device.startswith("cuda"):
        return "none"
    import torch

    total_mb = torch.cuda.get_device_properties(0).total_memory / 2**20
    return "model" if card.memory_mb > 0.9 * total_mb else "none"


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Loading without progress bars and info-level chatter from diffusers and transformers."""
    import diffusers.utils.logging as dlog
    import transformers.utils.logging as tlog

    d_level, t_level = dlog.get_verbosity(), tlog.get_verbosity()
    dlog.disable_progress_bar()
    tlog.disable_progress_bar()
    dlog.set_verbosity_error()
    tlog.set_verbosity_error()
    try:
        yield
    finally:
        dlog.set_verbosity(d_level)
        tlog.set_verbosity(t_level)
        dlog.enable_progress_bar()
        tlog.enable_progress_bar()


def _load_pipeline(card: Any, device: str, dtype: str, offload: str) -> tuple[Any, dict[str, tuple[Task, ...]]]:
    """The card's pipeline, checked and placed, with its LoRA adapters loaded (name -> tasks)."""
    import torch

    from restora.model_zoo import availability, list_cards, resolve_card

    resolved = resolve_card(card.id)
    cls = _pipeline_class(card)
    if cls is None:
        raise ToolError(f"model card {card.id!r}: pipeline class {card.pipeline_class} cannot be imported")
    try:
        with _quiet():
            pipe = cls.from_pretrained(
                str(resolved.folder), dtype=getattr(torch, dtype), use_safetensors=True, local_files_only=True
            )
    except Exception as e:
        raise ToolError(f"model card {card.id!r}: loading {card.pipeline_class} from {resolved.folder} failed: {type(e).__name__}: {e}") from e
    if offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    else:
        pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    adapters: dict[str, tuple[Task, ...]] = {}
    for lora in list_cards():
        if lora.kind != "lora" or lora.base != card.id or availability(lora) is not None:
            continue
        files = resolve_card(lora.id).files
        weights = [n for n in files if n.endswith(".safetensors")]
        if len(weights) != 1:
            raise ToolError(f"model card {lora.id!r}: expected one .safetensors adapter file, got {sorted(files)}")
        folder = files[weights[0]].parent
        name = lora.id.replace(".", "_").replace("-", "_")
        with _quiet():  # diffusers warns that the adapter has no text-encoder keys: expected
            pipe.load_lora_weights(str(folder), weight_name=files[weights[0]].name, adapter_name=name)
        adapters[name] = tuple(Task(t) for t in lora.all_tasks)
    if adapters:
        pipe.disable_lora()
    return pipe, adapters
