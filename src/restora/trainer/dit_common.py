"""What the DiT restorer's trainers share (``restora train dit sft`` and ``restora train dit rl``).

The restorer is an image-editing DiT run by the ``dit_restore`` tool with one fixed instruction
per task (:data:`restora.tools.dit_restore.PROMPTS`, reused here, never copied). Training adapts
its transformer with a LoRA adapter; the VAE and the text encoders stay frozen, so every image
is encoded to latents once and every task's instruction to prompt embeddings once (caches).

Here:

* **the base pipeline** of a ``diffusers`` card in a zoo folder (:func:`load_base`; FLUX.1
  Kontext pipelines: their flow-matching forward pass is :class:`KontextFlow`);
* **pairs** (degraded, clean, task): synthesized from clean photos by :mod:`restora.degrade`
  (:func:`synthetic_pair`, a pure function of ``(seed, split, index)``) and real pairs from
  ``real_gt``-style folders (:func:`real_pairs`, the benchmark's folder rules);
* **LoRA** adapters made with peft through diffusers (:func:`add_lora`), loaded from ``lora``
  cards (:func:`load_adapter`) and written as ``lora`` cards in the ``load_lora_weights`` layout
  (:func:`write_lora_card`), so ``restora zoo list`` shows them and ``dit_restore`` loads them;
* **sampling** exactly as the tool does (the pipeline, the card's steps and guidance, cached
  prompt embeddings; :func:`restore_images`), checkpoints, and the report page.

Examples:
    >>> [t.value for t in served_tasks()][:3]
    ['denoise', 'motion_deblur', 'defocus_deblur']
    >>> instruction(Task.DERAIN).startswith("Remove the rain")
    True
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from restora.imageio import quantize, write_text_atomic
from restora.taxonomy import DEGRADATION_FOR, Task

LORA_WEIGHTS = "pytorch_lora_weights.safetensors"
"""The adapter file of a ``lora`` card (the name ``save_lora_weights`` gives it)."""

LORA_TARGETS: tuple[str, ...] = (
    "attn.to_k", "attn.to_q", "attn.to_v", "attn.to_out.0",
    "attn.add_k_proj", "attn.add_q_proj", "attn.add_v_proj", "attn.to_add_out",
    "ff.net.0.proj", "ff.net.2", "ff_context.net.0.proj", "ff_context.net.2",
    "proj_mlp", "proj_out",
)  # fmt: skip
"""Transformer modules adapted by default: the list diffusers' FLUX (Kontext) LoRA training
scripts use (attention, feed-forward and single-block projections of every block)."""

TRAINABLE_PIPELINES = ("FluxKontextPipeline",)
"""Pipeline classes these trainers can train (the flow-matching pass is written for them)."""


# -- tasks --------------------------------------------------------------------------------------
def served_tasks() -> list[Task]:
    """The tasks ``dit_restore`` serves with a fixed instruction that a synthetic degradation
    makes pairs for (every task today)."""
    from restora.tools.dit_restore import PROMPTS

    return [t for t in PROMPTS if t in DEGRADATION_FOR]


def instruction(task: Task) -> str:
    """The tool's fixed instruction for ``task`` (the same string it runs with)."""
    from restora.tools.dit_restore import PROMPTS

    return PROMPTS[Task(task)]


def parse_tasks(names: list[str] | None) -> list[Task]:
    """``names`` as tasks the tool serves (None or empty: all of them), checked."""
    served = served_tasks()
    if not names:
        return served
    out = []
    for n in names:
        try:
            t = Task(n)
        except ValueError:
            raise ValueError(f"unknown task {n!r}: use one of {', '.join(t.value for t in served)}") from None
        if t not in served:
            raise ValueError(f"task {n!r} has no instruction or synthetic degradation for the DiT")
        if t not in out:
            out.append(t)
    return out


# -- the zoo and the base pipeline ---------------------------------------------------------------
@contextlib.contextmanager
def using_zoo(zoo: Path) -> Iterator[None]:
    """Resolve cards with ``RESTORA_ZOO=zoo`` inside the block (then as before)."""
    from restora.config import env
    from restora.model_zoo import clear_cache
    from restora.model_zoo.resolver import ZOO_ENV

    old = env().zoo  # read through restora.config, as every RESTORA_* variable is
    os.environ[ZOO_ENV] = str(zoo)
    clear_cache()
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(ZOO_ENV, None)
        else:
            os.environ[ZOO_ENV] = str(old)
        clear_cache()


def base_card(zoo: Path, base: str) -> Any:
    """The ``diffusers`` card ``base`` as seen with ``zoo`` first, checked to be trainable."""
    from restora.model_zoo import get_card

    with using_zoo(zoo):
        card = get_card(base)
    if card.kind != "diffusers":
        raise ValueError(f"--base {base!r} is a {card.kind} card; give a diffusers (DiT pipeline) card")
    if card.pipeline_class not in TRAINABLE_PIPELINES:
        raise ValueError(
            f"--base {base!r} is a {card.pipeline_class}; the DiT trainers train {', '.join(TRAINABLE_PIPELINES)} "
            "pipelines so far"
        )
    return card


def load_base(zoo: Path, base: str, device: str, dtype: Any) -> tuple[Any, Any]:
    """(pipeline, card): the card's pipeline loaded through model_zoo (files checked), VAE, text
    encoders and transformer frozen, placed on ``device`` in ``dtype``."""
    import torch
    from diffusers import FluxKontextPipeline

    from restora.model_zoo import resolve_card
    from restora.tools.dit_restore import _quiet

    card = base_card(zoo, base)
    with using_zoo(zoo):
        folder = resolve_card(base).folder
    with _quiet():
        pipe = FluxKontextPipeline.from_pretrained(str(folder), dtype=dtype, use_safetensors=True, local_files_only=True)
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    for part in (pipe.vae, pipe.text_encoder, pipe.text_encoder_2, pipe.transformer):
        part.requires_grad_(False)
        part.eval()
    torch.manual_seed(0)  # nothing random happens at load; keep the global stream as the caller set it
    return pipe, card


def native_side(card: Any) -> int:
    """The square side (px, a multiple of 16) with the card's native pixel count.

    Examples:
        >>> from types import SimpleNamespace as NS
        >>> native_side(NS(defaults=NS(native_pixels=1024 * 1024, multiple=16)))
        1024
    """
    m = max(16, int(card.defaults.multiple))
    return max(m, round(math.sqrt(int(card.defaults.native_pixels)) / m) * m)


def lora_card(zoo: Path, name: str, base: str) -> tuple[Any, Path]:
    """(card, adapter file) of the ``lora`` card ``name`` for ``base``, files checked."""
    from restora.model_zoo import get_card, resolve_card

    with using_zoo(zoo):
        card = get_card(name)
        if card.kind != "lora":
            raise ValueError(f"--adapter {name!r} is a {card.kind} card, not a lora adapter")
        if card.base != base:
            raise ValueError(f"--adapter {name!r} adapts {card.base!r}, not --base {base!r}")
        files = resolve_card(name).files
    weights = [n for n in files if n.endswith(".safetensors")]
    if len(weights) != 1:
        raise ValueError(f"lora card {name!r}: expected one .safetensors adapter file, got {sorted(files)}")
    return card, files[weights[0]]


# -- LoRA ------------------------------------------------------------------------------------------
def add_lora(transformer: Any, rank: int, alpha: float, targets: tuple[str, ...] | str, name: str = "default") -> None:
    """A new trainable LoRA adapter ``name`` on ``transformer`` (peft, through diffusers):
    ``lora_A`` Gaussian, ``lora_B`` zero, so training starts from the base model exactly."""
    from peft import LoraConfig

    transformer.add_adapter(
        LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights="gaussian", target_modules=list(targets) if not isinstance(targets, str) else targets),
        adapter_name=name,
    )
    set_trainable(transformer, name)


def load_adapter(pipe: Any, weights: Path, name: str) -> dict[str, Any]:
    """Load a saved adapter into ``pipe`` as ``name``; return its LoRA config (rank, alpha, targets)."""
    from restora.tools.dit_restore import _quiet

    with _quiet():
        pipe.load_lora_weights(str(weights.parent), weight_name=weights.name, adapter_name=name)
    cfg = pipe.transformer.peft_config[name]
    return {"rank": int(cfg.r), "alpha": float(cfg.lora_alpha), "targets": sorted(cfg.target_modules)}


def set_trainable(transformer: Any, name: str) -> list[Any]:
    """Activate adapter ``name`` alone; its LoRA parameters (float32) are the trainable ones."""
    import torch

    transformer.set_adapters([name])
    params = []
    for pname, p in transformer.named_parameters():
        mine = (".lora_A." in pname or ".lora_B." in pname) and f".{name}." in pname
        p.requires_grad_(mine)
        if mine:
            if p.dtype != torch.float32:
                p.data = p.data.float()
            params.append(p)
    if not params:
        raise RuntimeError(f"adapter {name!r} has no LoRA parameters on the transformer")
    return params


def adapter_state(transformer: Any, name: str) -> dict[str, Any]:
    """Adapter ``name``'s tensors, keyed as ``get_peft_model_state_dict`` names them."""
    from peft.utils import get_peft_model_state_dict

    return {k: v.detach().float().cpu().contiguous() for k, v in get_peft_model_state_dict(transformer, adapter_name=name).items()}


def restore_adapter_state(transformer: Any, state: dict[str, Any], name: str) -> None:
    """Put saved tensors (from :func:`adapter_state`) back into adapter ``name``."""
    from peft.utils import set_peft_model_state_dict

    result = set_peft_model_state_dict(transformer, state, adapter_name=name)
    missing = [k for k in getattr(result, "unexpected_keys", []) if "lora" in k]
    if missing:
        raise RuntimeError(f"checkpoint keys not in adapter {name!r}: {missing[:3]}")


def save_adapter(folder: Path, transformer: Any, name: str) -> Path:
    """Write adapter ``name`` as ``pytorch_lora_weights.safetensors`` in the layout of
    ``FluxKontextPipeline.save_lora_weights`` (keys ``transformer.<module>.lora_A.weight``), with
    its LoRA config as metadata so ``load_lora_weights`` rebuilds rank and alpha exactly."""
    from diffusers import FluxKontextPipeline

    cfg = transformer.peft_config[name]
    meta = {"r": int(cfg.r), "lora_alpha": float(cfg.lora_alpha), "target_modules": sorted(cfg.target_modules)}
    folder.mkdir(parents=True, exist_ok=True)
    FluxKontextPipeline.save_lora_weights(
        folder, transformer_lora_layers=adapter_state(transformer, name), safe_serialization=True, transformer_lora_adapter_metadata=meta
    )
    return folder / LORA_WEIGHTS


def write_lora_card(
    zoo: Path, card_id: str, base: Any, tasks: list[Task], weights: Path, source: str, description: str
) -> Any:
    """Write ``zoo/<card_id>/`` (the adapter file + a pinned ``card.json``, kind ``lora``) through a
    staging folder and a rename. An existing card of that id is replaced only if a DiT trainer
    wrote it (never a card someone placed by hand)."""
    from restora.model_zoo import CARD_NAME, sha256_file
    from restora.model_zoo.cards import ModelCard

    target = zoo / card_id
    if (target / CARD_NAME).is_file():
        old = json.loads((target / CARD_NAME).read_text())
        if not str(old.get("source", "")).startswith("restora train dit"):
            raise FileExistsError(f"{target} holds a card not written by restora train dit; choose another --out-card")
    elif target.exists():
        raise FileExistsError(f"{target} exists and holds no card; choose another --out-card")
    zoo.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{card_id}.", dir=zoo))
    try:
        shutil.copyfile(weights, tmp / LORA_WEIGHTS)
        size_mb = max(1, math.ceil((tmp / LORA_WEIGHTS).stat().st_size / 2**20))
        card = ModelCard.model_validate(
            {
                "id": card_id,
                "kind": "lora",
                "format": "safetensors",
                "base": base.id,
                "task": tasks[0],
                "tasks": tuple(tasks),
                "files": [LORA_WEIGHTS],
                "sha256": {LORA_WEIGHTS: sha256_file(tmp / LORA_WEIGHTS)},
                "licence": f"{base.licence}; trained on the shared data, whose terms it inherits (research / non-commercial sets)",
                "memory_mb": size_mb,
                "source": source,
                "description": description,
            }
        )
        (tmp / CARD_NAME).write_text(json.dumps(card.model_dump(mode="json", exclude_defaults=True), indent=2) + "\n")
        old_dir = None
        if target.exists():
            old_dir = zoo / f".{card_id}.old"
            shutil.rmtree(old_dir, ignore_errors=True)
            target.rename(old_dir)
        tmp.rename(target)
        if old_dir is not None:
            shutil.rmtree(old_dir, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return card


# -- pairs --------------------------------------------------------------------------------------
@dataclass
class Pair:
    """One training or validation sample: float32 RGB in [0, 1], both the same size."""

    degraded: np.ndarray
    clean: np.ndarray
    task: Task
    source: str


class PhotoPool:
    """Clean photos loaded once (8-bit levels), by index."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = list(paths)
        self._cache: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> np.ndarray:
        if i not in self._cache:
            from restora.imageio import load_image

            self._cache[i] = quantize(load_image(self.paths[i]).pixels)
        return self._cache[i]


def square_crop(image: np.ndarray, size: int, where: tuple[float, float]) -> np.ndarray:
    """A ``size`` x ``size`` crop at fractions ``where`` (a photo smaller than that is scaled up first)."""
    import cv2

    from restora.cases import crop_at

    h, w = image.shape[:2]
    if min(h, w) < size:
        s = size / min(h, w)
        image = np.clip(cv2.resize(image, (max(size, round(w * s)), max(size, round(h * s))), interpolation=cv2.INTER_CUBIC), 0, 1)
    return crop_at(image, size, where)


def synthetic_pair(
    photos: PhotoPool, index: int, split: str, seed: int, size: int, tasks: list[Task], severity: tuple[float, float]
) -> Pair:
    """Sample ``index`` of ``split``: a crop of a seeded photo, the task ``tasks[index % n]``
    (every task equally often, as RealRestorer samples them) and its degradation at a seeded
    severity. A pure function of its arguments.

    Examples:
        >>> pair = synthetic_pair(pool, 3, "train", 0, 64, [Task.DENOISE], (0.2, 0.9))  # doctest: +SKIP
    """
    from restora import degrade

    rng = np.random.default_rng([int(seed), zlib.crc32(split.encode()), int(index)])
    p = int(rng.integers(len(photos)))
    clean = square_crop(photos[p], size, (float(rng.random()), float(rng.random())))
    task = tasks[index % len(tasks)]
    sev = float(rng.uniform(*severity))
    degraded = degrade.apply(clean, DEGRADATION_FOR[task].value, sev, seed=int(rng.integers(2**31)))
    return Pair(quantize(degraded), clean, task, f"{photos.paths[p].name} {task.value} {sev:.2f}")


@dataclass(frozen=True)
class RealPair:
    """A real degraded photo and its ground truth (files), and the task that undoes it."""

    set: str
    task: Task
    degraded: Path
    gt: Path

    @property
    def name(self) -> str:
        return f"{self.set}/{self.degraded.name}"


def real_pairs(dirs: list[Path]) -> list[RealPair]:
    """Pairs in ``dirs``: each a ``real_gt`` set (a ground-truth folder ``gt``/``target``/... and
    one degraded folder) or a folder of such sets; the task from the folder names and the pairing
    by file stem, as the benchmark's ``real`` suite does (:mod:`restora.bench.real`). Sets whose
    task the DiT does not serve are an error."""
    from restora.bench.real import GT_DIRS, pair_files, task_for_set
    from restora.data import image_files

    def is_set(d: Path) -> bool:
        return any(p.is_dir() and p.name.lower() in GT_DIRS for p in d.iterdir())

    out: list[RealPair] = []
    for d in dirs:
        d = Path(d)
        if not d.is_dir():
            raise FileNotFoundError(f"real pair folder not found: {d}")
        sets = [d] if is_set(d) else sorted(p for p in d.iterdir() if p.is_dir() and is_set(p))
        if not sets:
            raise FileNotFoundError(f"{d}: no real_gt set (a folder with {'/'.join(GT_DIRS[:3])}/ and one degraded folder)")
        for s in sets:
            subdirs = sorted(p for p in s.iterdir() if p.is_dir())
            gt = next(p for p in subdirs if p.name.lower() in GT_DIRS)
            degraded = [p for p in subdirs if p is not gt]
            if len(degraded) != 1:
                raise ValueError(f"{s}: expected one degraded folder beside {gt.name}/, found {[p.name for p in degraded]}")
            task = task_for_set(s, degraded[0])
            if task is None:
                raise ValueError(f"{s}: cannot tell the task from the folder names")
            if task not in served_tasks():
                raise ValueError(f"{s}: task {task.value} is not served by the DiT")
            out += [RealPair(s.name, task, a, b) for a, b in pair_files(image_files(degraded[0]), image_files(gt))]
    return out


def real_crop(pair: RealPair, size: int, where: tuple[float, float]) -> Pair:
    """The same ``size`` crop of a real pair's degraded image and ground truth (both centre-cropped
    to their common size first; grey images as RGB)."""
    from restora.imageio import load_image

    a, b = (quantize(load_image(p).pixels) for p in (pair.degraded, pair.gt))
    h, w = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])

    def centre(x: np.ndarray) -> np.ndarray:
        y0, x0 = (x.shape[0] - h) // 2, (x.shape[1] - w) // 2
        x = x[y0 : y0 + h, x0 : x0 + w]
        return np.repeat(x, 3, axis=2) if x.shape[2] == 1 else x[..., :3]

    a, b = centre(a), centre(b)
    return Pair(square_crop(a, size, where), square_crop(b, size, where), pair.task, pair.name)


# -- the flow-matching pass of FLUX.1 Kontext ------------------------------------------------------
class KontextFlow:
    """The rectified-flow forward pass of a FLUX.1 Kontext pipeline at one image size, exactly as
    its sampler calls the transformer: the noisy target latents and the (clean-encoded) condition
    image latents side by side in one sequence, the condition's position ids offset in their
    first axis, ``timestep = sigma``, the guidance embedding at ``guidance``.

    ``x_sigma = (1 - sigma) x0 + sigma noise`` and the model predicts the velocity
    ``noise - x0``. Training sigmas are drawn as the sampler spaces them: a logit-normal (or
    uniform) ``u`` through the same resolution-dependent shift (``mu``) the scheduler applies.
    """

    def __init__(self, pipe: Any, size: int, guidance: float, device: str, dtype: Any) -> None:
        import torch
        from diffusers.pipelines.flux.pipeline_flux_kontext import calculate_shift

        self.pipe = pipe
        self.size = size
        lat = size // pipe.vae_scale_factor  # latent side (before 2x2 packing)
        self.tokens = (lat // 2) ** 2
        ids = pipe._prepare_latent_image_ids(1, lat // 2, lat // 2, device, dtype)
        cond_ids = ids.clone()
        cond_ids[..., 0] = 1
        self.img_ids = torch.cat([ids, cond_ids], dim=0)
        sc = pipe.scheduler.config
        self.mu = calculate_shift(self.tokens, sc.get("base_image_seq_len", 256), sc.get("max_image_seq_len", 4096), sc.get("base_shift", 0.5), sc.get("max_shift", 1.15))
        self.guidance = float(guidance)
        self.device, self.dtype = device, dtype

    def sigmas(self, n: int, generator: Any, sampling: str) -> Any:
        """``n`` training sigmas in (0, 1), shifted as the sampler shifts its schedule."""
        import torch

        if sampling == "logit_normal":
            u = torch.sigmoid(torch.randn(n, generator=generator))
        else:
            u = torch.rand(n, generator=generator).clamp(1e-3, 1 - 1e-3)
        e = math.exp(self.mu)
        return e / (e + (1.0 / u - 1.0))

    def velocity(self, transformer: Any, xt: Any, cond: Any, sigma: Any, embeds: Any, pooled: Any, text_ids: Any) -> Any:
        """The transformer's velocity for noisy latents ``xt`` (B, L, C) given condition latents
        ``cond`` (B, L, C), per-sample ``sigma`` (B,), prompt embeddings (B, T, D) and pooled (B, P)."""
        import torch

        b = xt.shape[0]
        guidance = torch.full((b,), self.guidance, device=xt.device, dtype=torch.float32) if transformer.config.guidance_embeds else None
        out = transformer(
            hidden_states=torch.cat([xt, cond], dim=1).to(self.dtype),
            timestep=sigma.to(xt.device, self.dtype),
            guidance=guidance,
            pooled_projections=pooled.to(self.dtype),
            encoder_hidden_states=embeds.to(self.dtype),
            txt_ids=text_ids,
            img_ids=self.img_ids,
            return_dict=False,
        )[0]
        return out[:, : xt.shape[1]].float()


def encode_images(pipe: Any, images: list[np.ndarray], device: str, batch: int = 8) -> Any:
    """Packed, scaled VAE latents (N, L, 64) of images (each S x S, float32 RGB [0, 1]), float32 on
    the CPU: the VAE's mode, as the Kontext pipeline encodes its condition image."""
    import torch

    vae = pipe.vae
    out = []
    with torch.inference_mode():
        for i in range(0, len(images), batch):
            x = torch.from_numpy(np.stack(images[i : i + batch]).transpose(0, 3, 1, 2)).to(device, vae.dtype) * 2 - 1
            lat = vae.encode(x).latent_dist.mode()
            lat = (lat - vae.config.shift_factor) * vae.config.scaling_factor
            out.append(pipe._pack_latents(lat, lat.shape[0], lat.shape[1], lat.shape[2], lat.shape[3]).float().cpu())
    return torch.cat(out)


def decode_latents(pipe: Any, latents: Any, size: int) -> list[np.ndarray]:
    """Images (float32 RGB [0, 1]) of packed latents, as the pipeline decodes its output."""
    import torch

    vae = pipe.vae
    with torch.inference_mode():
        lat = pipe._unpack_latents(latents.to(vae.device, vae.dtype), size, size, pipe.vae_scale_factor)
        lat = lat / vae.config.scaling_factor + vae.config.shift_factor
        img = vae.decode(lat, return_dict=False)[0]
        img = pipe.image_processor.postprocess(img, output_type="np")
    return [np.clip(np.asarray(x, np.float32), 0, 1) for x in img]


def encode_prompts(pipe: Any, tasks: list[Task], device: str) -> dict[Task, tuple[Any, Any, Any]]:
    """(prompt embeddings, pooled embeddings, text ids) of each task's fixed instruction, once."""
    import torch

    out = {}
    with torch.inference_mode():
        for t in tasks:
            e, p, ids = pipe.encode_prompt(prompt=instruction(t), prompt_2=None, device=device, num_images_per_prompt=1)
            out[t] = (e.float().cpu(), p.float().cpu(), ids)
    return out


def offload_text_encoders(pipe: Any) -> None:
    """Move the text encoders to the CPU once the instructions are encoded: nothing else uses them
    (T5-XXL alone is ~9.5 GB of bf16 weights that a GPU need not hold while training)."""
    for part in (pipe.text_encoder, pipe.text_encoder_2):
        if part is not None:
            part.to("cpu")


def restore_images(
    pipe: Any, degraded: np.ndarray, task: Task, prompts: dict[Task, tuple[Any, Any, Any]], steps: int, guidance: float, seeds: list[int],
    latents: bool = False,
) -> Any:
    """The pipeline's restorations of one image, one per seed, run as ``dit_restore`` runs it
    (cached instruction embeddings, the given steps and guidance, ``_auto_resize`` off). Returns
    the images, or (packed latents, images) with ``latents=True``."""
    import torch
    from PIL import Image

    size = degraded.shape[0]
    e, p, _ = prompts[task]
    n = len(seeds)
    dev = pipe.transformer.device
    out = pipe(
        image=Image.fromarray((np.clip(degraded, 0, 1) * 255.0 + 0.5).astype(np.uint8)),
        prompt_embeds=e.repeat(n, 1, 1).to(dev, pipe.transformer.dtype),
        pooled_prompt_embeds=p.repeat(n, 1).to(dev, pipe.transformer.dtype),
        height=size,
        width=size,
        num_inference_steps=steps,
        guidance_scale=guidance,
        generator=[torch.Generator(device="cpu").manual_seed(int(s)) for s in seeds],
        output_type="latent",
        _auto_resize=False,
        max_area=size * size,
    ).images
    images = decode_latents(pipe, out, size)
    return (out.float().cpu(), images) if latents else images


# -- run folders ------------------------------------------------------------------------------
def save_checkpoint(ckpt: Path, state: dict[str, Any], extra: dict[str, Any], identity: dict[str, Any]) -> None:
    """Adapter tensors (safetensors), optimizer/scheduler/step (``torch.save`` of tensors and
    plain types, read back with ``weights_only=True``) and the run identity, written through a
    temporary folder and a rename: never half a checkpoint."""
    import torch
    from safetensors.torch import save_file

    ckpt.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".checkpoint-", dir=ckpt.parent))
    save_file(state, str(tmp / "adapter.safetensors"))
    torch.save(extra, tmp / "state.pt")
    (tmp / "config.json").write_text(json.dumps(identity, indent=1) + "\n")
    old = ckpt.with_name(ckpt.name + ".old")
    if ckpt.exists():
        ckpt.rename(old)
    tmp.rename(ckpt)
    shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(ckpt: Path, identity: dict[str, Any], out: Path) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(adapter tensors, state) of the run's checkpoint, or None; another configuration there is an error."""
    import torch
    from safetensors.torch import load_file

    if not (ckpt / "state.pt").is_file():
        return None
    saved = json.loads((ckpt / "config.json").read_text())
    if saved != identity:
        diff = sorted(k for k in set(saved) | set(identity) if saved.get(k) != identity.get(k))
        raise ValueError(f"{out} holds a run with other settings ({', '.join(diff)}); use another --out or the same settings")
    return load_file(str(ckpt / "adapter.safetensors")), torch.load(ckpt / "state.pt", weights_only=True)


def append_jsonl(path: Path, row: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")


def read_history(path: Path, upto: int) -> list[dict[str, Any]]:
    """Logged rows up to step ``upto`` (rows of a killed run after its checkpoint are dropped)."""
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r["step"] <= upto]
    write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in rows))
    return rows


def pick_device(device: str) -> str:
    """``auto``: the GPU when there is one, else the CPU."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    """Multiplier of the peak learning rate at ``step``: linear warmup, then constant or cosine to zero.

    Examples:
        >>> lr_factor(0, 100, 10, "constant"), lr_factor(50, 100, 0, "constant")
        (0.1, 1.0)
        >>> round(lr_factor(50, 100, 0, "cosine"), 3), lr_factor(100, 100, 0, "cosine")
        (0.5, 0.0)
    """
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    t = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


def fit_vae_card(zoo: Path, base: str, out_card: str, clean: list[Path], steps: int = 150, size: int = 32, seed: int = 0) -> Any:
    """Write ``zoo/<out_card>/``: a copy of the ``base`` pipeline whose VAE was trained to
    reconstruct crops of ``clean`` photos (L1 + a tiny KL), with a pinned card.

    For random-weight test pipelines only (``restora zoo tiny``): their VAE does not autoencode
    (a random decoder returns the same ~11 dB grey noise whatever the latent), so no transformer
    could raise the PSNR of what the pipeline outputs. A few hundred steps make it a real, if
    blurry, autoencoder (~19 dB), after which SFT's effect on outputs can be measured. Real
    checkpoints never need this.
    """
    import torch

    from restora.cases import clean_images
    from restora.model_zoo import CARD_NAME, resolve_card, sha256_file
    from restora.model_zoo.cards import ModelCard
    from restora.tools.dit_restore import _quiet

    card = base_card(zoo, base)
    with using_zoo(zoo):
        folder = resolve_card(base).folder
    from diffusers import FluxKontextPipeline

    with _quiet():
        pipe = FluxKontextPipeline.from_pretrained(str(folder), use_safetensors=True, local_files_only=True)
    photos = PhotoPool([p.path for p in clean_images(clean)])
    rng = np.random.default_rng(seed)
    vae = pipe.vae.train()
    opt = torch.optim.Adam(vae.parameters(), lr=2e-3)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for _ in range(steps):
            batch = np.stack([square_crop(photos[int(rng.integers(len(photos)))], size, tuple(rng.random(2))) for _ in range(8)])
            x = torch.from_numpy(batch.transpose(0, 3, 1, 2)) * 2 - 1
            post = vae.encode(x).latent_dist
            loss = (vae.decode(post.sample()).sample - x).abs().mean() + 1e-6 * post.kl().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    vae.eval().requires_grad_(False)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_card}.", dir=zoo))
    try:
        pipe.save_pretrained(tmp, safe_serialization=True)
        shutil.copytree(folder / "tokenizer", tmp / "tokenizer", dirs_exist_ok=True)  # the slow-tokenizer files too
        files = sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file())
        fields = card.model_dump(mode="json", exclude_defaults=True)
        fields.update(
            id=out_card, files=files, sha256={f: sha256_file(tmp / f) for f in files},
            source=f"restora.trainer.dit_common.fit_vae_card of {base}",
            description=f"{base} with its VAE fitted to reconstruct photos ({steps} steps; for trainer tests)",
        )
        fields.pop("allow_patterns", None)
        new = ModelCard.model_validate(fields)
        (tmp / CARD_NAME).write_text(json.dumps(new.model_dump(mode="json", exclude_defaults=True), indent=2) + "\n")
        target = zoo / out_card
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return new
