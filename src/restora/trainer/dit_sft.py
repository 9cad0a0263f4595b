"""``restora train dit sft``: LoRA supervised fine-tuning of the DiT restorer, RealRestorer's two
stages.

RealRestorer fine-tunes an image-editing DiT for restoration in two stages, the VAE and text
encoder frozen and one fixed instruction per task:

* ``transfer``: synthetic pairs only (every task sampled equally often), constant learning rate;
* ``sft``: starting from the transfer stage's adapter (``init_adapter``), real pairs mixed in
  *progressively* while a share of synthetic pairs stays (the real share rises linearly from
  ``real_start`` to ``real_end`` over the first ``real_ramp`` of the steps), the learning rate
  annealed to zero by a cosine.

Here the transformer gets a peft LoRA adapter (through diffusers); pairs are (degraded, clean,
task) from :mod:`restora.degrade` on crops of clean photos (held-out photos for validation) and,
in stage ``sft``, crops of real pairs from ``real_gt``-style folders. Every image is encoded by
the frozen VAE once and every task's instruction (the tool's own, :data:`PROMPTS
<restora.tools.dit_restore.PROMPTS>`) by the frozen text encoders once; the step is the
rectified-flow objective ``|| v(x_sigma, cond, sigma) - (noise - x0) ||^2`` of
:class:`~restora.trainer.dit_common.KontextFlow`. Validation runs the pipeline as the tool runs
it (the card's steps and guidance) on held-out pairs and measures PSNR and SSIM of its outputs
against the clean images, before training, every ``eval_every`` steps and at the end.

Writes, in ``out``::

    checkpoint/                        adapter tensors, optimizer, step (resume from here)
    cache/                             the VAE latents of the training pairs (reused on resume)
    history.jsonl, evals.jsonl         the loss per step; validation as it went
    evals/step_NNNNNN.png              validation images (degraded | output | clean) as it went
    adapter/pytorch_lora_weights.safetensors
    metrics.json, report.md, curves.png, samples.png

and the adapter as a ``lora`` card ``zoo/<out_card>/`` (its tasks listed), which ``restora zoo
list`` shows and ``dit_restore`` loads for those tasks.

Examples:
    >>> from restora.trainer.dit_sft import DiTSFTConfig, train_dit_sft
    >>> cfg = DiTSFTConfig(zoo=Path("zoo"), base="flux-kontext-dev", out_card="restorer-transfer",
    ...                    out=Path("runs/transfer"), max_steps=2000)          # doctest: +SKIP
    >>> train_dit_sft(cfg)["val"]["after"]["psnr"]                              # doctest: +SKIP
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from restora.config import help_field
from restora.imageio import save_image, write_text_atomic
from restora.trainer.common import check_all, config_json, default_clean_pool
from restora.trainer.dit_common import LORA_TARGETS, parse_tasks


def default_real_pool() -> list[Path]:
    """The shared data's ``real_gt`` sets (real camera noise, rain, haze, camera shake)."""
    from restora.data import data_dir

    return [data_dir() / "real_gt"]


@dataclass
class DiTSFTConfig:
    """Everything that decides a DiT SFT run (``restora train dit sft`` flags).

    Examples:
        >>> DiTSFTConfig(zoo=Path("zoo"), base="b", out_card="a", out=Path("r"), max_steps=5).lr_schedule
        'constant'
        >>> DiTSFTConfig(zoo=Path("zoo"), base="b", out_card="a", out=Path("r"), stage="sft", real=[]).lr_schedule
        Traceback (most recent call last):
        ...
        ValueError: stage sft mixes in real pairs: give --real folders (real_gt sets)
    """

    zoo: Path = help_field("zoo folder: holds the base card (or RESTORA_ZOO/built-in cards do) and receives the adapter card")
    base: str = help_field("the diffusers card (DiT pipeline) to adapt, e.g. flux-kontext-dev or tiny-flux-kontext")
    out_card: str = help_field("id of the lora card to write into the zoo")
    out: Path = help_field("run folder: checkpoints, latent cache, metrics, report")
    stage: Literal["transfer", "sft"] = help_field(
        "transfer: synthetic pairs only, constant lr; sft: real pairs progressively mixed in, cosine lr to zero (RealRestorer)",
        default="transfer",
    )
    init_adapter: str | None = help_field("a lora card to continue from (stage sft: the transfer stage's card)", default=None)
    clean: list[Path] = help_field(
        "folders of clean photos for synthetic pairs (default: the shared data's clean/cbsd68 and clean/live1)",
        default_factory=default_clean_pool,
    )
    real: list[Path] = help_field(
        "real_gt sets (or folders of them) for stage sft (default: the shared data's real_gt)", default_factory=default_real_pool
    )
    tasks: list[str] = help_field("tasks to train (default: every task dit_restore serves)", default_factory=list)
    size: int | None = help_field("training crop side in px, a multiple of 16 (None: the card's native size, ~1024 for FLUX)", default=None)
    pool: int = help_field("synthetic training pairs (made once, latents cached)", default=512)
    real_crops: int = help_field("crops per real training pair (latents cached)", default=4)
    severity: tuple[float, float] = help_field("severity range of synthetic degradations", default=(0.2, 0.9))
    val_fraction: float = help_field("share of photos (and real pairs) held out for validation", default=0.15)
    val_samples: int = help_field("held-out pairs validated (synthetic; stage sft adds as many real ones)", default=16)
    max_steps: int = help_field("optimizer steps in all (a resumed run continues to this number)", default=1000)
    batch_size: int = help_field("pairs per step", default=4)
    lr: float = help_field("peak learning rate (AdamW on the LoRA parameters)", default=1e-4)
    lr_schedule: Literal["constant", "cosine"] | None = help_field("None: the stage's (transfer constant, sft cosine to zero)", default=None)
    warmup: int = help_field("linear warmup steps", default=0)
    weight_decay: float = help_field("AdamW weight decay", default=1e-4)
    rank: int = help_field("LoRA rank", default=16)
    alpha: float | None = help_field("LoRA alpha (None: = rank, scale 1)", default=None)
    targets: list[str] = help_field("transformer modules adapted (peft suffix match)", default_factory=lambda: list(LORA_TARGETS))
    timestep_sampling: Literal["logit_normal", "uniform"] = help_field(
        "how training sigmas are drawn (before the sampler's resolution shift)", default="logit_normal"
    )
    guidance: float | None = help_field("guidance embedding value (None: the card's default guidance)", default=None)
    real_start: float = help_field("stage sft: share of real pairs at the first step", default=0.1)
    real_end: float = help_field("stage sft: share of real pairs after the ramp (the rest stays synthetic)", default=0.7)
    real_ramp: float = help_field("stage sft: fraction of the steps over which the real share rises linearly", default=0.5)
    eval_every: int = help_field("steps between validations (images written each time)", default=100)
    eval_steps: int | None = help_field("sampling steps when validating (None: the card's default, as the tool runs)", default=None)
    eval_images: int = help_field("validation pairs shown in the image sheets", default=4)
    checkpoint_every: int = help_field("steps between checkpoints", default=100)
    device: str = help_field("auto (GPU if any), cpu or cuda[:N]", default="auto")
    mixed_precision: Literal["no", "bf16", "fp16"] = help_field(
        "accelerate mixed precision; with bf16/fp16 the frozen weights are stored in it, the LoRA parameters stay float32",
        default="no",
    )
    gradient_checkpointing: bool = help_field("recompute the transformer's activations in the backward pass (GPU memory)", default=False)
    micro_batch: int | None = help_field("pairs per forward/backward, gradients accumulated over the batch (None: the whole batch at once)", default=None)
    threads: int | None = help_field("torch threads (None: torch's default)", default=None)
    seed: int = help_field("seed of the split, the pairs, the noise and the LoRA init", default=0)

    def __post_init__(self) -> None:
        self.zoo, self.out = Path(self.zoo), Path(self.out)
        self.clean = [Path(p) for p in self.clean]
        self.real = [Path(p) for p in self.real]
        self.severity = (float(self.severity[0]), float(self.severity[1]))
        self.tasks = [t.value for t in parse_tasks(self.tasks)]
        if self.lr_schedule is None:
            self.lr_schedule = "constant" if self.stage == "transfer" else "cosine"
        check_all(
            [
                (self.stage in ("transfer", "sft"), f"stage must be transfer or sft, got {self.stage!r}"),
                (self.stage == "transfer" or bool(self.real), "stage sft mixes in real pairs: give --real folders (real_gt sets)"),
                (self.size is None or (self.size >= 16 and self.size % 16 == 0), f"size must be a multiple of 16 (VAE x8, 2x2 packing), got {self.size}"),
                (self.pool >= 1 and self.real_crops >= 1, "pool and real_crops must be >= 1"),
                (0.0 <= self.severity[0] <= self.severity[1] <= 1.0, f"severity must be a range in [0, 1], got {self.severity}"),
                (0.0 < self.val_fraction < 1.0, f"val_fraction must be in (0, 1), got {self.val_fraction}"),
                (self.val_samples >= 1, f"val_samples must be >= 1, got {self.val_samples}"),
                (self.max_steps >= 1 and self.batch_size >= 1, "max_steps and batch_size must be >= 1"),
                (self.lr > 0, f"lr must be > 0, got {self.lr}"),
                (self.rank >= 1, f"rank must be >= 1, got {self.rank}"),
                (bool(self.targets), "targets: name at least one transformer module"),
                (0.0 <= self.real_start <= 1.0 and 0.0 <= self.real_end <= 1.0, "real_start and real_end are shares in [0, 1]"),
                (0.0 < self.real_ramp <= 1.0, f"real_ramp is a fraction of the steps in (0, 1], got {self.real_ramp}"),
                (self.eval_every >= 1 and self.checkpoint_every >= 1, "eval_every and checkpoint_every must be >= 1"),
                (self.eval_steps is None or self.eval_steps >= 1, "eval_steps must be >= 1"),
                (self.micro_batch is None or self.micro_batch >= 1, "micro_batch must be >= 1"),
                (self.mixed_precision in ("no", "bf16", "fp16"), f"mixed_precision must be no, bf16 or fp16, got {self.mixed_precision!r}"),
            ]
        )

    def to_json(self) -> dict[str, Any]:
        d = config_json(self)
        d.update(zoo=str(self.zoo), real=[str(p) for p in self.real], severity=list(self.severity))
        return d

    def identity(self) -> dict[str, Any]:
        """What must not change when a run is resumed."""
        d = self.to_json()
        for k in ("out", "max_steps", "eval_every", "eval_steps", "eval_images", "checkpoint_every", "device", "threads", "gradient_checkpointing", "micro_batch", "out_card"):
            d.pop(k)
        return d

    def real_share(self, step: int) -> float:
        """Share of real pairs at ``step`` (0 in stage transfer).

        Examples:
            >>> c = DiTSFTConfig(zoo=Path("z"), base="b", out_card="a", out=Path("r"), stage="sft", real=[Path("x")], max_steps=100)
            >>> c.real_share(0), c.real_share(25), c.real_share(99)
            (0.1, 0.4, 0.7)
        """
        if self.stage != "sft":
            return 0.0
        t = min(1.0, step / max(1.0, self.real_ramp * self.max_steps))
        return round(self.real_start + (self.real_end - self.real_start) * t, 6)


# -- the data -------------------------------------------------------------------------------------
def build_pairs(cfg: DiTSFTConfig, size: int) -> dict[str, Any]:
    """Training and validation pairs: synthetic from split photos, real (stage sft) from split pairs."""
    from restora.cases import clean_images, split_by_photo
    from restora.trainer.dit_common import PhotoPool, real_crop, real_pairs, synthetic_pair

    tasks = parse_tasks(cfg.tasks)
    photos = clean_images(cfg.clean)
    if len(photos) < 2:
        raise ValueError(f"DiT training needs at least 2 clean photos (one held out), got {len(photos)}")
    val_names = split_by_photo([p.name for p in photos], cfg.seed, cfg.val_fraction, salt="dit-split")
    train_pool = PhotoPool([p.path for p in photos if p.name not in val_names])
    val_pool = PhotoPool([p.path for p in photos if p.name in val_names])
    out: dict[str, Any] = {
        "train": [synthetic_pair(train_pool, i, "train", cfg.seed, size, tasks, cfg.severity) for i in range(cfg.pool)],
        "val": [synthetic_pair(val_pool, i, "val", cfg.seed, size, tasks, cfg.severity) for i in range(cfg.val_samples)],
        "real_train": [],
        "real_val": [],
        "photos": {"train": len(train_pool), "val": len(val_pool)},
    }
    if cfg.stage == "sft":
        pairs = real_pairs(cfg.real)
        if len(pairs) < 2:
            raise ValueError(f"stage sft needs at least 2 real pairs in {', '.join(map(str, cfg.real))}, found {len(pairs)}")
        held = split_by_photo([p.name for p in pairs], cfg.seed, cfg.val_fraction, salt="dit-real-split")
        rng = np.random.default_rng([cfg.seed, 7])
        out["real_train"] = [real_crop(p, size, tuple(rng.random(2))) for p in pairs if p.name not in held for _ in range(cfg.real_crops)]
        out["real_val"] = [real_crop(p, size, (0.5, 0.5)) for p in pairs if p.name in held][: cfg.val_samples]
    return out


def _cached_latents(pipe: Any, pairs: list[Any], key: dict[str, Any], folder: Path, device: str) -> tuple[Any, Any]:
    """(clean latents, degraded latents) of ``pairs``, from ``folder`` when its key matches."""
    from safetensors.torch import load_file, save_file

    from restora.trainer.dit_common import encode_images

    if (folder / "key.json").is_file() and json.loads((folder / "key.json").read_text()) == key:
        t = load_file(str(folder / "latents.safetensors"))
        return t["clean"], t["degraded"]
    clean = encode_images(pipe, [p.clean for p in pairs], device)
    degraded = encode_images(pipe, [p.degraded for p in pairs], device)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({"clean": clean.contiguous(), "degraded": degraded.contiguous()}, str(folder / "latents.safetensors"))
    write_text_atomic(folder / "key.json", json.dumps(key, indent=1) + "\n")
    return clean, degraded


def evaluate(
    pipe: Any, pairs: list[Any], prompts: dict[Any, Any], steps: int, guidance: float, n_synthetic: int | None = None
) -> tuple[dict[str, Any], list[np.ndarray]]:
    """PSNR/SSIM of the pipeline's outputs (seed 0, as the tool runs) against the clean images:
    the mean, the degraded inputs' own, per task, and (when the first ``n_synthetic`` pairs are
    synthetic and the rest real) per source; and the outputs."""
    from restora.quality.fidelity import psnr, ssim
    from restora.trainer.dit_common import restore_images

    pipe.transformer.eval()
    outs, rows = [], []
    for p in pairs:
        y = restore_images(pipe, p.degraded, p.task, prompts, steps, guidance, [0])[0]
        outs.append(y)
        rows.append((p.task.value, psnr(y, p.clean), ssim(y, p.clean), psnr(p.degraded, p.clean)))
    pipe.transformer.train()
    per_task: dict[str, Any] = {}
    for t in sorted({r[0] for r in rows}):
        sel = [r for r in rows if r[0] == t]
        per_task[t] = {"psnr": round(float(np.mean([r[1] for r in sel])), 3), "ssim": round(float(np.mean([r[2] for r in sel])), 4), "n": len(sel)}
    sources = {}
    if n_synthetic is not None and 0 < n_synthetic < len(rows):
        for name, sel in (("synthetic", rows[:n_synthetic]), ("real", rows[n_synthetic:])):
            sources[name] = {"psnr": round(float(np.mean([r[1] for r in sel])), 3), "input_psnr": round(float(np.mean([r[3] for r in sel])), 3), "n": len(sel)}
    return {
        "sources": sources,
        "psnr": round(float(np.mean([r[1] for r in rows])), 3),
        "ssim": round(float(np.mean([r[2] for r in rows])), 4),
        "input_psnr": round(float(np.mean([r[3] for r in rows])), 3),
        "n": len(rows),
        "tasks": per_task,
    }, outs


def _sheet(pairs: list[Any], outputs: list[list[np.ndarray]], names: list[str]) -> np.ndarray:
    """Per pair: degraded, each output column, clean; captions with PSNR."""
    from restora.quality.fidelity import psnr
    from restora.trainer.report import labelled_grid

    tiles = []
    for i, p in enumerate(pairs):
        tiles.append((p.degraded, [f"{p.task.value}", f"input {psnr(p.degraded, p.clean):.1f} dB"]))
        for name, outs in zip(names, outputs, strict=True):
            tiles.append((outs[i], [name, f"{psnr(outs[i], p.clean):.1f} dB"]))
        tiles.append((p.clean, ["clean", ""]))
    return labelled_grid(tiles, columns=len(names) + 2)


# -- training -------------------------------------------------------------------------------------
def flow_matching_backward(
    flow: Any, model: Any, accelerator: Any, xt: Any, cond: Any, sigma: Any, target: Any, embeds: Any, pooled: Any, text_ids: Any,
    micro_batch: int | None = None,
) -> float:
    """Backward of the flow-matching loss ``mean ||v(xt, cond, sigma) - target||^2`` over the batch,
    in chunks of ``micro_batch`` samples (gradients accumulated: the same gradient, less memory);
    returns the loss."""
    n = xt.shape[0]
    step = micro_batch or n
    total = 0.0
    for i in range(0, n, step):
        sl = slice(i, i + step)
        with accelerator.autocast():
            v = flow.velocity(model, xt[sl], cond[sl], sigma[sl], embeds[sl], pooled[sl], text_ids)
        part = ((v - target[sl]) ** 2).mean(dim=(1, 2)).sum() / n
        accelerator.backward(part)
        total += part.item()
    return total


def train_dit_sft(cfg: DiTSFTConfig, *, on_step: Callable[[int, dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train (or resume) a LoRA adapter as ``cfg`` says, write its card; return the metrics.

    A run folder holding a checkpoint of the same configuration is resumed from it; one holding
    another configuration is an error.
    """
    import torch
    from accelerate import Accelerator

    from restora.trainer import dit_common as dc

    if cfg.threads is not None:
        torch.set_num_threads(int(cfg.threads))
    out = cfg.out
    out.mkdir(parents=True, exist_ok=True)
    device = dc.pick_device(cfg.device)
    accelerator = Accelerator(mixed_precision=cfg.mixed_precision, cpu=device == "cpu")
    device = str(accelerator.device)
    weight_dtype = {"no": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[cfg.mixed_precision]
    pipe, card = dc.load_base(cfg.zoo, cfg.base, device, weight_dtype)
    tasks = parse_tasks(cfg.tasks)
    size = cfg.size or dc.native_side(card)
    guidance = float(cfg.guidance if cfg.guidance is not None else card.defaults.guidance)
    eval_steps = int(cfg.eval_steps or card.defaults.steps)
    transformer = pipe.transformer

    name = "restorer"
    init = None
    if cfg.init_adapter:
        init_card, weights = dc.lora_card(cfg.zoo, cfg.init_adapter, cfg.base)
        init = {"card": init_card.id, **dc.load_adapter(pipe, weights, name)}
        missing = [t.value for t in tasks if t not in init_card.all_tasks]
        if missing:
            raise ValueError(f"--adapter {cfg.init_adapter!r} was not trained for {', '.join(missing)}")
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            dc.add_lora(transformer, cfg.rank, float(cfg.alpha or cfg.rank), tuple(cfg.targets), name)
    params = dc.set_trainable(transformer, name)
    if cfg.gradient_checkpointing:
        transformer.enable_gradient_checkpointing()
    transformer.train()

    data = build_pairs(cfg, size)
    prompts = dc.encode_prompts(pipe, tasks, device)
    dc.offload_text_encoders(pipe)
    key = {k: v for k, v in cfg.identity().items() if k in ("zoo", "base", "stage", "clean", "real", "tasks", "pool", "real_crops", "severity", "val_fraction", "seed")}
    key["size"] = size
    train_pairs = data["train"] + data["real_train"]
    clean_lat, deg_lat = _cached_latents(pipe, train_pairs, key, out / "cache", device)
    n_syn, n_real = len(data["train"]), len(data["real_train"])
    val_pairs = data["val"] + data["real_val"]
    flow = dc.KontextFlow(pipe, size, guidance, device, weight_dtype)

    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: dc.lr_factor(s, cfg.max_steps, cfg.warmup, str(cfg.lr_schedule)))
    identity = {**cfg.identity(), "size": size}
    start, history = 0, []
    saved = dc.load_checkpoint(out / "checkpoint", identity, out)
    if saved is not None:
        state, extra = saved
        dc.restore_adapter_state(transformer, state, name)
        opt.load_state_dict(extra["optimizer"])
        sched.load_state_dict(extra["scheduler"])
        start = int(extra["step"])
        history = dc.read_history(out / "history.jsonl", start)
    model, opt, sched = accelerator.prepare(transformer, opt, sched)

    evals = [json.loads(line) for line in (out / "evals.jsonl").read_text().splitlines()] if (out / "evals.jsonl").is_file() else []
    evals = [e for e in evals if e["step"] <= start]
    write_text_atomic(out / "evals.jsonl", "".join(json.dumps(e) + "\n" for e in evals))
    k_real = min(len(data["real_val"]), cfg.eval_images // 2)  # stage sft: real pairs shown too
    shown = data["val"][: cfg.eval_images - k_real] + data["real_val"][:k_real]
    shown_at = list(range(len(shown) - k_real)) + [len(data["val"]) + i for i in range(k_real)]
    (out / "evals").mkdir(exist_ok=True)
    if start == 0 or not (out / "evals" / "before.npz").is_file():
        before, outs = evaluate(pipe, val_pairs, prompts, eval_steps, guidance, len(data["val"]))
        np.savez_compressed(out / "evals" / "before.npz", *[outs[i] for i in shown_at])
        if start == 0:
            evals = [{"step": 0, **before}]
            write_text_atomic(out / "evals.jsonl", json.dumps(evals[0]) + "\n")
            save_image(out / "evals" / "step_000000.png", _sheet(shown, [[outs[i] for i in shown_at]], ["output"]))
    before_outs = list(np.load(out / "evals" / "before.npz").values())
    before = evals[0] if evals and evals[0]["step"] == 0 else None

    t0 = time.perf_counter()
    after: dict[str, Any] | None = None
    step = start
    while step < cfg.max_steps:
        rng = np.random.default_rng([cfg.seed, 11, step])
        share = cfg.real_share(step)
        idx = [
            n_syn + int(rng.integers(n_real)) if n_real and rng.random() < share else int(rng.integers(n_syn))
            for _ in range(cfg.batch_size)
        ]
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        x0, cond = clean_lat[idx].to(device), deg_lat[idx].to(device)
        noise = torch.randn(x0.shape, generator=gen).to(device)
        sigma = flow.sigmas(len(idx), gen, cfg.timestep_sampling).to(device)
        xt = (1 - sigma.view(-1, 1, 1)) * x0 + sigma.view(-1, 1, 1) * noise
        ts = [train_pairs[i].task for i in idx]
        embeds = torch.cat([prompts[t][0] for t in ts]).to(device)
        pooled = torch.cat([prompts[t][1] for t in ts]).to(device)
        opt.zero_grad(set_to_none=True)
        loss = flow_matching_backward(flow, model, accelerator, xt, cond, sigma, noise - x0, embeds, pooled, prompts[ts[0]][2], cfg.micro_batch)
        opt.step()
        sched.step()
        step += 1
        row = {"step": step, "loss": round(float(loss), 6), "lr": float(sched.get_last_lr()[0]), "real_share": share, "real_in_batch": sum(i >= n_syn for i in idx)}
        history.append(row)
        dc.append_jsonl(out / "history.jsonl", row)
        if on_step is not None:
            on_step(step, row)
        last = step == cfg.max_steps
        if step % cfg.eval_every == 0 or last:
            after, outs = evaluate(pipe, val_pairs, prompts, eval_steps, guidance, len(data["val"]))
            evals.append({"step": step, **after})
            dc.append_jsonl(out / "evals.jsonl", evals[-1])
            picked = [outs[i] for i in shown_at]
            save_image(out / "evals" / f"step_{step:06d}.png", _sheet(shown, [picked], ["output"]))
            if last:
                save_image(out / "samples.png", _sheet(shown, [before_outs, picked], ["before", "after"]))
        if step % cfg.checkpoint_every == 0 or last:
            extra = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "step": step}
            dc.save_checkpoint(out / "checkpoint", dc.adapter_state(transformer, name), extra, identity)
    seconds = time.perf_counter() - t0
    if after is None:  # a finished run asked again: validate the final adapter
        after, outs = evaluate(pipe, val_pairs, prompts, eval_steps, guidance, len(data["val"]))
        save_image(out / "samples.png", _sheet(shown, [before_outs, [outs[i] for i in shown_at]], ["before", "after"]))

    weights = dc.save_adapter(out / "adapter", transformer, name)
    losses = [r["loss"] for r in history]
    k = max(1, len(losses) // 10)
    result = {
        "config": cfg.to_json(),
        "stage": cfg.stage,
        "base": cfg.base,
        "card": cfg.out_card,
        "init_adapter": init,
        "size": size,
        "tasks": [t.value for t in tasks],
        "steps": cfg.max_steps,
        "resumed_from": start,
        "seconds_this_run": round(seconds, 1),
        "pairs": {"synthetic_train": n_syn, "real_train": n_real, "val_synthetic": len(data["val"]), "val_real": len(data["real_val"]), "photos": data["photos"]},
        "loss": {"first": round(float(np.mean(losses[:k])), 5), "last": round(float(np.mean(losses[-k:])), 5), "window": k},
        "val": {"before": before, "after": after, "sampling_steps": eval_steps, "guidance": guidance},
        "evals": [{"step": e["step"], "psnr": e["psnr"], "ssim": e["ssim"]} for e in evals],
    }
    psnr_text = f"held-out PSNR {before['psnr'] if before else '?'} -> {after['psnr']} dB"
    dc.write_lora_card(
        cfg.zoo, cfg.out_card, card, tasks, weights, source=f"restora train dit sft (stage {cfg.stage})",
        description=f"LoRA r={transformer.peft_config[name].r} for {card.id}, stage {cfg.stage}, {cfg.max_steps} steps at {size} px; {psnr_text}",
    )
    write_text_atomic(out / "metrics.json", json.dumps(result, indent=1) + "\n")
    sft_report(out, result, history)
    return result


def sft_report(out: Path, result: dict[str, Any], history: list[dict[str, Any]]) -> None:
    """``curves.png`` (loss; validation PSNR) and ``report.md`` of an SFT run."""
    from restora.trainer.report import plot_curves, smooth

    steps = [r["step"] for r in history]
    window = max(1, len(history) // 50)
    loss = plot_curves({"flow-matching loss": list(zip(steps, smooth([r["loss"] for r in history], window), strict=True))}, f"training loss (mean of {window} steps)")
    val = plot_curves({"held-out PSNR (dB)": [(e["step"], e["psnr"]) for e in result["evals"]]}, "validation: PSNR of the pipeline's outputs")
    save_image(out / "curves.png", np.concatenate([loss, val], axis=0))
    b, a = result["val"]["before"] or {}, result["val"]["after"]
    lines = [
        f"# restora DiT SFT run: `{result['card']}` (stage {result['stage']})",
        "",
        f"Base `{result['base']}`, {result['size']} px, {result['steps']} steps (this run from step {result['resumed_from']}, "
        f"{result['seconds_this_run']:.0f} s); tasks: {', '.join(result['tasks'])}.",
        f"Pairs: {result['pairs']['synthetic_train']} synthetic and {result['pairs']['real_train']} real crops for training; "
        f"{result['pairs']['val_synthetic']} synthetic and {result['pairs']['val_real']} real held out.",
        "",
        f"Flow-matching loss: **{result['loss']['first']} -> {result['loss']['last']}** (mean of the first / last {result['loss']['window']} steps).",
        "",
        f"Held-out outputs ({result['val']['sampling_steps']} sampling steps, guidance {result['val']['guidance']}): "
        f"PSNR **{b.get('psnr')} -> {a['psnr']} dB**, SSIM {b.get('ssim')} -> {a['ssim']} (inputs: {a['input_psnr']} dB).",
        *[
            f"- {k} held-out pairs: PSNR {(b.get('sources') or {}).get(k, {}).get('psnr')} -> {v['psnr']} dB (inputs {v['input_psnr']} dB, {v['n']} pairs)"
            for k, v in (a.get("sources") or {}).items()
        ],
        "",
        "| task | PSNR before | PSNR after | SSIM before | SSIM after | n |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for t, v in a["tasks"].items():
        bt = (b.get("tasks") or {}).get(t, {})
        lines.append(f"| {t} | {bt.get('psnr')} | {v['psnr']} | {bt.get('ssim')} | {v['ssim']} | {v['n']} |")
    lines += ["", "![curves](curves.png)", "", "![held-out: degraded / before / after / clean](samples.png)", ""]
    write_text_atomic(out / "report.md", "\n".join(lines))
