"""``restora train dit rl``: difficulty-adaptive RL of the DiT restorer with an IQA reward.

Two papers shape this stage. *Enhancing Diffusion-based Restoration Models via Difficulty-Adaptive
RL with IQA Reward*: RL where the SFT model is far from the ground truth, with a no-reference
quality model as the reward, and a per-sample blend of the SFT and RL losses,
``L = sum_i (1 - w_i) L_fm(i) + sum_i w_i L_rl(i) + L_KL`` with ``w_i`` the sample's distance to
its ground truth divided by the largest in the batch. *IRPO*: post-train on the hardest ~30%
of samples, a composite reward, small groups (G = 4), LoRA rank 4, lr 5e-5 (the defaults here).

The run:

1. **Hard samples.** The SFT adapter restores every pair of a synthetic pool (and of a held-out
   pool from photos never trained on); the ``hard_fraction`` farthest from their ground truth
   (RMSE of the output) are kept. RL trains on the training ones; the held-out ones measure it.
2. **The policy** is the SFT adapter, frozen, plus a new rank-``rank`` LoRA on the same modules
   (its ``lora_B`` starts at zero: the policy starts as the SFT model exactly). The reference for
   the KL term is the SFT adapter alone. The card written at the end holds both as one adapter of
   rank ``r_sft + rank`` (their A matrices stacked, their B matrices side by side, each scaled by
   its own alpha / r: the same weights, exactly), so ``dit_restore`` loads it like any LoRA card.
3. **Each step** takes ``batch_size`` hard inputs and samples ``group_size`` restorations of each
   with the pipeline as the tool runs it (different initial noise per member). Groups are keyed by
   the input image: the instruction is fixed per task, so a prompt-keyed group would merge every
   input of a task. Rewards are normalised within each group.
4. **The update is DiffusionNFT** (Zheng et al. 2025, "Online Diffusion Reinforcement with
   Forward Process"): each sampled output ``x0`` is noised by the forward process,
   ``x_s = (1 - s) x0 + s eps``, and the velocity ``v`` is trained with an implicit positive policy
   ``v+ = (1 - beta) v_old + beta v`` and negative policy ``v- = (1 + beta) v_old - beta v``:
   ``L_rl = p ||v+ - (eps - x0)||^2 + (1 - p) ||v- - (eps - x0)||^2`` with ``p = 0.5 + 0.5 clip(A /
   adv_clip, -1, 1)`` the sample's optimality from its group-normalised advantage ``A``. Why not
   Flow-GRPO: NFT needs no likelihood, so it works with the deterministic ODE sampler the tool
   uses (Flow-GRPO must switch to an SDE sampler to get per-step log-probabilities, i.e. train a
   sampler the tool does not run), it costs one forward/backward per sample at one noise level
   (Flow-GRPO backpropagates ratios at every denoising step it trains on), it is the same kind of
   loss as flow-matching SFT, so the paper's per-sample blend mixes like with like, and it was
   reported several times more sample-efficient than Flow-GRPO.
5. **The blend.** Per sample: ``(1 - w_i) L_fm(i) + w_i L_rl(i)``, ``L_fm`` the flow-matching loss
   on the input's ground truth at the same noise, ``w_i`` the output's RMSE to the ground truth
   over the batch's largest; plus ``kl_weight * ||v - v_sft||^2`` (for flows, the KL between the
   policies' forward-process transitions is proportional to the squared velocity difference).
   Means over the batch rather than sums (a constant factor, folded into the learning rate).

The reward is added, never multiplied: ``nr_weight * NR + fidelity_weight * SSIM``, with NR the
mean of the normalised no-reference metrics in ``nr_metrics`` (:mod:`restora.quality`: the
offline ones, BRISQUE and PIQE; learned ones such as ``musiq`` when their weights are present) and
SSIM against the ground truth; both terms are logged. The result is reported on the held-out hard
samples as the mean reward before and after, and by PSNR (not rewarded; NIQE too where the crops
are large enough for it), so the reward is not the only judge of itself.

Writes, in ``out``: ``hard.json`` (the selection), ``checkpoint/``, ``history.jsonl``,
``evals/``, ``adapter/``, ``metrics.json``, ``report.md``, ``curves.png``, ``samples.png``; and
the card ``zoo/<out_card>/``.

Examples:
    >>> from restora.trainer.dit_rl import DiTRLConfig, train_dit_rl
    >>> cfg = DiTRLConfig(zoo=Path("zoo"), base="flux-kontext-dev", adapter="restorer-sft",
    ...                   out_card="restorer-rl", out=Path("runs/rl"), max_steps=300)   # doctest: +SKIP
    >>> train_dit_rl(cfg)["held_out"]["after"]["reward"]                               # doctest: +SKIP
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from restora.config import help_field
from restora.imageio import save_image, write_text_atomic
from restora.trainer.common import check_all, config_json, default_clean_pool


@dataclass
class DiTRLConfig:
    """Everything that decides a DiT RL run (``restora train dit rl`` flags).

    Examples:
        >>> c = DiTRLConfig(zoo=Path("z"), base="b", adapter="sft", out_card="rl", out=Path("r"))
        >>> c.hard_fraction, c.group_size, c.rank, c.lr
        (0.3, 4, 4, 5e-05)
        >>> DiTRLConfig(zoo=Path("z"), base="b", adapter="sft", out_card="rl", out=Path("r"), group_size=1)
        Traceback (most recent call last):
        ...
        ValueError: group_size must be >= 2 (advantages are normalised within a group), got 1
    """

    zoo: Path = help_field("zoo folder: holds the base and adapter cards and receives the new card")
    base: str = help_field("the diffusers card (DiT pipeline) the adapter belongs to")
    adapter: str = help_field("the SFT lora card to start from (frozen; RL adds its own LoRA on top)")
    out_card: str = help_field("id of the lora card to write (SFT + RL as one adapter)")
    out: Path = help_field("run folder")
    clean: list[Path] = help_field(
        "folders of clean photos for the synthetic pool (default: the shared data's clean/cbsd68 and clean/live1)",
        default_factory=default_clean_pool,
    )
    tasks: list[str] = help_field("tasks (default: every task the adapter was trained for)", default_factory=list)
    size: int | None = help_field("crop side in px, a multiple of 16 (None: the card's native size)", default=None)
    pool: int = help_field("synthetic training pairs scored by the SFT model (the hardest are kept)", default=256)
    val_pool: int = help_field("held-out pairs scored by the SFT model (the hardest measure the result)", default=64)
    hard_fraction: float = help_field("share of the pools kept: those farthest from their ground truth (IRPO: 30%)", default=0.3)
    severity: tuple[float, float] = help_field("severity range of the synthetic degradations", default=(0.2, 0.9))
    val_fraction: float = help_field("share of photos held out", default=0.15)
    max_steps: int = help_field("RL updates in all (a resumed run continues to this number)", default=300)
    batch_size: int = help_field("input images per step (each sampled group_size times)", default=2)
    group_size: int = help_field("samples per input image, one group (IRPO: G = 4)", default=4)
    updates_per_batch: int = help_field("optimizer steps on each batch of samples (v_old stays the sampling policy)", default=1)
    lr: float = help_field("learning rate of the RL LoRA (IRPO: 5e-5)", default=5e-5)
    rank: int = help_field("rank of the RL LoRA added on top of the SFT adapter (IRPO: 4)", default=4)
    nft_beta: float = help_field("DiffusionNFT's guidance strength beta of the implicit positive/negative policies", default=1.0)
    adv_clip: float = help_field("group-normalised advantages are divided by this and clipped to [-1, 1] (optimality p)", default=1.0)
    kl_weight: float = help_field("weight of ||v - v_sft||^2 (the KL to the SFT model)", default=0.1)
    nr_metrics: list[str] = help_field(
        "no-reference IQA metrics in the reward (restora.quality; learned ones such as musiq when their weights are present)",
        default_factory=lambda: ["brisque", "piqe"],
    )
    nr_weight: float = help_field("weight of the no-reference term (mean of the normalised NR metrics, 1 = best)", default=1.0)
    fidelity_weight: float = help_field("weight of the fidelity term (SSIM to the ground truth)", default=1.0)
    sample_steps: int | None = help_field("sampling steps of rollouts and evaluation (None: the card's default)", default=None)
    guidance: float | None = help_field("guidance (None: the card's default)", default=None)
    timestep_sampling: str = help_field("logit_normal or uniform (training noise levels)", default="logit_normal")
    eval_rollouts: int = help_field("samples per held-out input when measuring reward before/after", default=4)
    eval_every: int = help_field("steps between held-out evaluations", default=50)
    eval_images: int = help_field("held-out inputs shown in the image sheets", default=4)
    checkpoint_every: int = help_field("steps between checkpoints", default=50)
    device: str = help_field("auto (GPU if any), cpu or cuda[:N]", default="auto")
    mixed_precision: str = help_field("accelerate mixed precision: no, bf16 or fp16", default="no")
    gradient_checkpointing: bool = help_field("recompute activations in the backward pass (GPU memory)", default=False)
    micro_batch: int | None = help_field("samples per forward/backward, gradients accumulated (None: all batch_size x group_size at once)", default=None)
    threads: int | None = help_field("torch threads (None: torch's default)", default=None)
    seed: int = help_field("seed of the pools, the rollouts and the LoRA init", default=0)

    def __post_init__(self) -> None:
        from restora.quality.metrics import get_metric

        self.zoo, self.out = Path(self.zoo), Path(self.out)
        self.clean = [Path(p) for p in self.clean]
        self.severity = (float(self.severity[0]), float(self.severity[1]))
        for m in self.nr_metrics:
            try:
                get_metric(m)
            except Exception as e:  # noqa: BLE001 - an unknown name: the registry's message, with suggestions
                raise ValueError(f"nr_metrics: {e}") from None
        check_all(
            [
                (self.size is None or (self.size >= 16 and self.size % 16 == 0), f"size must be a multiple of 16, got {self.size}"),
                (self.pool >= 2 and self.val_pool >= 2, "pool and val_pool must be >= 2"),
                (0.0 < self.hard_fraction <= 1.0, f"hard_fraction must be in (0, 1], got {self.hard_fraction}"),
                (0.0 <= self.severity[0] <= self.severity[1] <= 1.0, f"severity must be a range in [0, 1], got {self.severity}"),
                (0.0 < self.val_fraction < 1.0, f"val_fraction must be in (0, 1), got {self.val_fraction}"),
                (self.max_steps >= 1 and self.batch_size >= 1 and self.updates_per_batch >= 1, "max_steps, batch_size, updates_per_batch must be >= 1"),
                (self.group_size >= 2, f"group_size must be >= 2 (advantages are normalised within a group), got {self.group_size}"),
                (self.lr > 0 and self.rank >= 1, "lr must be > 0 and rank >= 1"),
                (self.nft_beta > 0 and self.adv_clip > 0 and self.kl_weight >= 0, "nft_beta and adv_clip must be > 0, kl_weight >= 0"),
                (self.nr_weight >= 0 and self.fidelity_weight >= 0 and self.nr_weight + self.fidelity_weight > 0, "reward weights must be >= 0, not both 0"),
                (bool(self.nr_metrics) or self.nr_weight == 0, "nr_metrics: name at least one (or set nr_weight 0)"),
                (self.timestep_sampling in ("logit_normal", "uniform"), "timestep_sampling must be logit_normal or uniform"),
                (self.mixed_precision in ("no", "bf16", "fp16"), "mixed_precision must be no, bf16 or fp16"),
                (self.micro_batch is None or self.micro_batch >= 1, "micro_batch must be >= 1"),
                (self.eval_rollouts >= 1 and self.eval_every >= 1 and self.checkpoint_every >= 1, "eval_rollouts, eval_every, checkpoint_every must be >= 1"),
            ]
        )

    def to_json(self) -> dict[str, Any]:
        d = config_json(self)
        d.update(zoo=str(self.zoo), severity=list(self.severity))
        return d

    def identity(self) -> dict[str, Any]:
        d = self.to_json()
        for k in ("out", "max_steps", "eval_every", "eval_images", "eval_rollouts", "checkpoint_every", "device", "threads", "gradient_checkpointing", "micro_batch", "out_card"):
            d.pop(k)
        return d


# -- the reward ---------------------------------------------------------------------------------
class RestorationReward:
    """``reward = nr_weight * NR + fidelity_weight * SSIM`` of one output against its ground truth,
    with every term returned (a plain callable, as TRL's reward functions are).

    Examples:
        >>> r = RestorationReward(["piqe"], 1.0, 1.0)
        >>> sorted(r(np.full((64, 64, 3), 0.5, np.float32), np.full((64, 64, 3), 0.5, np.float32)))
        ['fidelity', 'nr', 'nr_piqe', 'reward']
    """

    def __init__(self, nr_metrics: list[str], nr_weight: float, fidelity_weight: float, device: str | None = None) -> None:
        from restora.quality.metrics import get_metric, load_metric

        self.specs = [get_metric(m) for m in nr_metrics] if nr_weight > 0 else []
        # learned metrics run on the training device; a missing weight file is an error naming its card
        self.fns = [load_metric(s.name, device) for s in self.specs]
        self.nr_weight, self.fidelity_weight = nr_weight, fidelity_weight

    def check_size(self, side: int) -> None:
        small = [s.name for s in self.specs if side < s.min_side]
        if small:
            raise ValueError(f"reward metrics {', '.join(small)} need larger images than {side} px; use a larger --size or other --nr-metric")

    def __call__(self, output: np.ndarray, clean: np.ndarray) -> dict[str, float]:
        from restora.quality.fidelity import ssim

        terms: dict[str, float] = {}
        norm = []
        for spec, fn in zip(self.specs, self.fns, strict=True):
            raw = float(fn(output))
            terms[f"nr_{spec.name}"] = raw
            norm.append(spec.normalize(raw))
        terms["nr"] = float(np.mean(norm)) if norm else 0.0
        terms["fidelity"] = max(0.0, ssim(output, clean))
        terms["reward"] = self.nr_weight * terms["nr"] + self.fidelity_weight * terms["fidelity"]
        return terms


def group_optimality(rewards: np.ndarray, adv_clip: float) -> tuple[np.ndarray, np.ndarray]:
    """(advantages, optimality p) of rewards shaped (inputs, group): advantages normalised within
    each input's group; ``p = 0.5 + 0.5 clip(A / adv_clip, -1, 1)`` (0.5 where a group is flat).

    Examples:
        >>> a, p = group_optimality(np.array([[1.0, 2.0, 3.0, 4.0], [5.0, 5.0, 5.0, 5.0]]), 1.0)
        >>> p.round(2).tolist()
        [[0.0, 0.28, 0.72, 1.0], [0.5, 0.5, 0.5, 0.5]]
    """
    mean = rewards.mean(axis=1, keepdims=True)
    std = rewards.std(axis=1, keepdims=True)
    adv = np.where(std > 1e-8, (rewards - mean) / np.maximum(std, 1e-8), 0.0)
    return adv, 0.5 + 0.5 * np.clip(adv / adv_clip, -1.0, 1.0)


def blend_weights(distances: np.ndarray) -> np.ndarray:
    """``w_i = d_i / max_j d_j`` over a batch (the difficulty-adaptive paper's weighting).

    Examples:
        >>> blend_weights(np.array([0.1, 0.2, 0.4])).tolist()
        [0.25, 0.5, 1.0]
    """
    top = float(np.max(distances))
    return distances / top if top > 0 else np.zeros_like(distances)


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)))


# -- combining the adapters ---------------------------------------------------------------------
def merged_adapter(transformer: Any, names: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """One LoRA equal to the sum of adapters ``names``: A matrices stacked (rank = sum of ranks),
    B matrices side by side each times its own alpha / r, alpha = the new rank (scale 1).
    Returns (state dict as ``get_peft_model_state_dict`` keys, LoRA metadata)."""
    import torch

    from restora.trainer.dit_common import adapter_state

    states = [adapter_state(transformer, n) for n in names]
    cfgs = [transformer.peft_config[n] for n in names]
    keys = set(states[0])
    if any(set(s) != keys for s in states[1:]):
        raise ValueError(f"adapters {names} adapt different modules; cannot merge them into one")
    rank = sum(int(c.r) for c in cfgs)
    out: dict[str, Any] = {}
    for k in sorted(keys):
        if ".lora_A." in k:
            out[k] = torch.cat([s[k] for s in states], dim=0).contiguous()
        elif ".lora_B." in k:
            out[k] = torch.cat([s[k] * (float(c.lora_alpha) / int(c.r)) for s, c in zip(states, cfgs, strict=True)], dim=1).contiguous()
        else:
            raise ValueError(f"cannot merge adapter tensor {k!r}")
    meta = {"r": rank, "lora_alpha": float(rank), "target_modules": sorted(cfgs[0].target_modules)}
    return out, meta


def activate(transformer: Any, names: list[str], trainable: str | None) -> None:
    """Switch adapters ``names`` on (summed); only ``trainable``'s LoRA parameters get gradients."""
    transformer.set_adapters(names)
    for pname, p in transformer.named_parameters():
        p.requires_grad_(trainable is not None and (".lora_A." in pname or ".lora_B." in pname) and f".{trainable}." in pname)


# -- the update ----------------------------------------------------------------------------------
def nft_backward(
    flow: Any, model: Any, transformer: Any, accelerator: Any, x0: Any, xc: Any, cond: Any, eps: Any, sigma: Any,
    p: Any, w: Any, embeds: Any, pooled: Any, text_ids: Any, *, beta: float, kl_weight: float, micro_batch: int | None = None,
    cache: dict[str, Any] | None = None,
) -> dict[str, float]:
    """Backward of ``mean_i[(1 - w_i) L_fm(i) + w_i L_nft(i)] + kl_weight * mean_i ||v_i - v_sft,i||^2``
    for sampled outputs ``x0`` (their inputs' ground truths ``xc``, condition latents ``cond``),
    noise ``eps`` at ``sigma``, optimalities ``p`` and blend weights ``w``; in chunks of
    ``micro_batch`` samples (gradients accumulated). ``v_old`` (the sampling policy) and ``v_sft``
    are computed without gradients once and kept in ``cache`` for further updates on the batch.
    The adapters ``sft`` + ``rl`` must be active; returns the mean loss terms."""
    import torch

    n = x0.shape[0]
    step = micro_batch or n
    s3 = sigma.view(-1, 1, 1)
    xt, xtc = (1 - s3) * x0 + s3 * eps, (1 - s3) * xc + s3 * eps
    cache = {} if cache is None else cache
    if "v_old" not in cache:
        olds, refs = [], []
        with torch.no_grad(), accelerator.autocast():
            for i in range(0, n, step):
                sl = slice(i, i + step)
                olds.append(flow.velocity(model, xt[sl], cond[sl], sigma[sl], embeds[sl], pooled[sl], text_ids))
            activate(transformer, ["sft"], None)
            for i in range(0, n, step):
                sl = slice(i, i + step)
                refs.append(flow.velocity(model, xt[sl], cond[sl], sigma[sl], embeds[sl], pooled[sl], text_ids))
            activate(transformer, ["sft", "rl"], "rl")
        cache["v_old"], cache["v_ref"] = torch.cat(olds), torch.cat(refs)
    v_old, v_ref = cache["v_old"], cache["v_ref"]
    sums = {"loss": 0.0, "l_fm": 0.0, "l_rl": 0.0, "l_kl": 0.0}
    for i in range(0, n, step):
        sl = slice(i, i + step)
        with accelerator.autocast():
            v = flow.velocity(model, xt[sl], cond[sl], sigma[sl], embeds[sl], pooled[sl], text_ids)
            vc = flow.velocity(model, xtc[sl], cond[sl], sigma[sl], embeds[sl], pooled[sl], text_ids)
        target = eps[sl] - x0[sl]
        pos = (((1 - beta) * v_old[sl] + beta * v - target) ** 2).mean(dim=(1, 2))
        neg = (((1 + beta) * v_old[sl] - beta * v - target) ** 2).mean(dim=(1, 2))
        l_rl = p[sl] * pos + (1 - p[sl]) * neg
        l_fm = ((vc - (eps[sl] - xc[sl])) ** 2).mean(dim=(1, 2))
        l_kl = ((v - v_ref[sl]) ** 2).mean(dim=(1, 2))
        part = (((1 - w[sl]) * l_fm + w[sl] * l_rl).sum() + kl_weight * l_kl.sum()) / n
        accelerator.backward(part)
        sums["loss"] += part.item()
        sums["l_fm"] += l_fm.detach().sum().item() / n
        sums["l_rl"] += l_rl.detach().sum().item() / n
        sums["l_kl"] += l_kl.detach().sum().item() / n
    return sums


# -- the run --------------------------------------------------------------------------------------
def _score_pool(pipe: Any, pairs: list[Any], prompts: dict[Any, Any], steps: int, guidance: float) -> np.ndarray:
    """RMSE of the current policy's output (seed 0) to the ground truth, per pair."""
    from restora.trainer.dit_common import restore_images

    pipe.transformer.eval()
    return np.array([rmse(restore_images(pipe, p.degraded, p.task, prompts, steps, guidance, [0])[0], p.clean) for p in pairs])


def hardest(distances: np.ndarray, fraction: float) -> list[int]:
    """Indices of the ``fraction`` largest distances (at least one), largest first.

    Examples:
        >>> hardest(np.array([0.1, 0.5, 0.3, 0.2, 0.9]), 0.4)
        [4, 1]
    """
    k = max(1, int(round(fraction * len(distances))))
    return [int(i) for i in np.argsort(-distances, kind="stable")[:k]]


def evaluate_rl(pipe: Any, pairs: list[Any], prompts: dict[Any, Any], steps: int, guidance: float, reward: RestorationReward, rollouts: int) -> tuple[dict[str, Any], list[np.ndarray]]:
    """Mean reward and its terms over ``rollouts`` samples of each pair, and the unrewarded
    metrics (PSNR; NIQE where the crops allow it); plus each pair's first sample."""
    from restora.quality.fidelity import psnr
    from restora.quality.metrics import get_metric, load_metric
    from restora.trainer.dit_common import restore_images

    pipe.transformer.eval()
    niqe = None
    if pairs and pairs[0].clean.shape[0] >= get_metric("niqe").min_side and get_metric("niqe").unavailable_reason() is None:
        niqe = load_metric("niqe")
    rows: list[dict[str, float]] = []
    firsts = []
    for j, p in enumerate(pairs):
        outs = restore_images(pipe, p.degraded, p.task, prompts, steps, guidance, [10_000 + j * rollouts + g for g in range(rollouts)])
        firsts.append(outs[0])
        for y in outs:
            row = reward(y, p.clean)
            row["psnr"] = psnr(y, p.clean)
            if niqe is not None:
                row["niqe"] = float(niqe(y))
            rows.append(row)
    pipe.transformer.train()
    keys = rows[0].keys()
    return {k: round(float(np.mean([r[k] for r in rows])), 4) for k in keys} | {"samples": len(rows), "inputs": len(pairs)}, firsts


def train_dit_rl(cfg: DiTRLConfig, *, on_step: Callable[[int, dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run (or resume) difficulty-adaptive RL as ``cfg`` says, write the card; return the metrics."""
    import torch
    from accelerate import Accelerator

    from restora.cases import clean_images, split_by_photo
    from restora.trainer import dit_common as dc
    from restora.trainer.dit_sft import _sheet

    if cfg.threads is not None:
        torch.set_num_threads(int(cfg.threads))
    out = cfg.out
    out.mkdir(parents=True, exist_ok=True)
    device = dc.pick_device(cfg.device)
    accelerator = Accelerator(mixed_precision=cfg.mixed_precision, cpu=device == "cpu")
    device = str(accelerator.device)
    weight_dtype = {"no": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[cfg.mixed_precision]
    pipe, card = dc.load_base(cfg.zoo, cfg.base, device, weight_dtype)
    sft_card, weights = dc.lora_card(cfg.zoo, cfg.adapter, cfg.base)
    tasks = dc.parse_tasks(cfg.tasks) if cfg.tasks else [t for t in sft_card.all_tasks if t in dc.served_tasks()]
    missing = [t.value for t in tasks if t not in sft_card.all_tasks]
    if missing:
        raise ValueError(f"--adapter {cfg.adapter!r} was not trained for {', '.join(missing)}")
    size = cfg.size or dc.native_side(card)
    reward = RestorationReward(cfg.nr_metrics, cfg.nr_weight, cfg.fidelity_weight, device)
    reward.check_size(size)
    guidance = float(cfg.guidance if cfg.guidance is not None else card.defaults.guidance)
    steps = int(cfg.sample_steps or card.defaults.steps)
    transformer = pipe.transformer

    sft_info = dc.load_adapter(pipe, weights, "sft")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        dc.add_lora(transformer, cfg.rank, float(cfg.rank), tuple(sft_info["targets"]), "rl")
    activate(transformer, ["sft", "rl"], "rl")
    params = [p for p in transformer.parameters() if p.requires_grad]
    for p in params:
        p.data = p.data.float()
    if cfg.gradient_checkpointing:
        transformer.enable_gradient_checkpointing()
    prompts = dc.encode_prompts(pipe, tasks, device)
    dc.offload_text_encoders(pipe)
    flow = dc.KontextFlow(pipe, size, guidance, device, weight_dtype)

    # 1. the pools and their hardest samples (scored by the SFT model; cached in hard.json)
    photos = clean_images(cfg.clean)
    if len(photos) < 2:
        raise ValueError(f"need at least 2 clean photos (one held out), got {len(photos)}")
    val_names = split_by_photo([p.name for p in photos], cfg.seed, cfg.val_fraction, salt="dit-split")
    train_photos = dc.PhotoPool([p.path for p in photos if p.name not in val_names])
    val_photos = dc.PhotoPool([p.path for p in photos if p.name in val_names])
    pool = [dc.synthetic_pair(train_photos, i, "rl-train", cfg.seed, size, tasks, cfg.severity) for i in range(cfg.pool)]
    vpool = [dc.synthetic_pair(val_photos, i, "rl-val", cfg.seed, size, tasks, cfg.severity) for i in range(cfg.val_pool)]
    identity = {**cfg.identity(), "size": size, "adapter_sha256": sft_card.sha256}
    hard_key = {k: identity[k] for k in ("zoo", "base", "adapter", "adapter_sha256", "clean", "tasks", "pool", "val_pool", "hard_fraction", "severity", "val_fraction", "seed", "size")}
    hard_file = out / "hard.json"
    if hard_file.is_file() and json.loads(hard_file.read_text())["key"] == hard_key:
        hard = json.loads(hard_file.read_text())
    else:
        activate(transformer, ["sft"], None)
        d_train = _score_pool(pipe, pool, prompts, steps, guidance)
        d_val = _score_pool(pipe, vpool, prompts, steps, guidance)
        hi, hv = hardest(d_train, cfg.hard_fraction), hardest(d_val, cfg.hard_fraction)
        hard = {
            "key": hard_key,
            "train": hi,
            "val": hv,
            "train_rmse": {"all": round(float(d_train.mean()), 5), "hard": round(float(d_train[hi].mean()), 5), "threshold": round(float(d_train[hi].min()), 5)},
            "val_rmse": {"all": round(float(d_val.mean()), 5), "hard": round(float(d_val[hv].mean()), 5), "threshold": round(float(d_val[hv].min()), 5)},
            "hard_tasks": {t.value: sum(pool[i].task == t for i in hi) for t in tasks},
        }
        write_text_atomic(hard_file, json.dumps(hard, indent=1) + "\n")
    train_pairs = [pool[i] for i in hard["train"]]
    val_pairs = [vpool[i] for i in hard["val"]]
    clean_lat = dc.encode_images(pipe, [p.clean for p in train_pairs], device)
    deg_lat = dc.encode_images(pipe, [p.degraded for p in train_pairs], device)

    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    start, history = 0, []
    saved = dc.load_checkpoint(out / "checkpoint", identity, out)
    if saved is not None:
        state, extra = saved
        dc.restore_adapter_state(transformer, state, "rl")
        opt.load_state_dict(extra["optimizer"])
        start = int(extra["step"])
        history = dc.read_history(out / "history.jsonl", start)
    model, opt = accelerator.prepare(transformer, opt)

    (out / "evals").mkdir(exist_ok=True)
    shown = val_pairs[: cfg.eval_images]
    evals_path = out / "evals.jsonl"
    evals = [json.loads(x) for x in evals_path.read_text().splitlines()] if evals_path.is_file() else []
    evals = [e for e in evals if e["step"] <= start]
    write_text_atomic(evals_path, "".join(json.dumps(e) + "\n" for e in evals))
    if not evals or evals[0]["step"] != 0 or not (out / "evals" / "before.npz").is_file():
        activate(transformer, ["sft"], None)
        before, firsts = evaluate_rl(pipe, val_pairs, prompts, steps, guidance, reward, cfg.eval_rollouts)
        np.savez_compressed(out / "evals" / "before.npz", *firsts[: cfg.eval_images])
        evals = [{"step": 0, **before}] + [e for e in evals if e["step"] > 0]
        write_text_atomic(evals_path, "".join(json.dumps(e) + "\n" for e in evals))
    before = evals[0]
    before_outs = list(np.load(out / "evals" / "before.npz").values())
    activate(transformer, ["sft", "rl"], "rl")

    t0 = time.perf_counter()
    after: dict[str, Any] | None = None
    step = start
    G = cfg.group_size
    while step < cfg.max_steps:
        rng = np.random.default_rng([cfg.seed, 13, step])
        picks = [int(i) for i in rng.choice(len(train_pairs), size=min(cfg.batch_size, len(train_pairs)), replace=False)]
        # rollouts: the current policy (SFT + RL), as the tool samples
        transformer.eval()
        lat, rew, dist, terms = [], [], [], []
        for j, i in enumerate(picks):
            p = train_pairs[i]
            seeds = [int(s) for s in np.random.default_rng([cfg.seed, 17, step, j]).integers(0, 2**31 - 1, G)]
            x0s, imgs = dc.restore_images(pipe, p.degraded, p.task, prompts, steps, guidance, seeds, latents=True)
            lat.append(x0s)
            rows = [reward(y, p.clean) for y in imgs]
            terms += rows
            rew.append([r["reward"] for r in rows])
            dist.append([rmse(y, p.clean) for y in imgs])
        transformer.train()
        adv, prob = group_optimality(np.array(rew), cfg.adv_clip)
        w = blend_weights(np.array(dist).ravel())
        n = len(picks) * G
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        x0 = torch.cat(lat).to(device)
        xc = clean_lat[[i for i in picks for _ in range(G)]].to(device)
        cond = deg_lat[[i for i in picks for _ in range(G)]].to(device)
        ts = [train_pairs[i].task for i in picks for _ in range(G)]
        embeds = torch.cat([prompts[t][0] for t in ts]).to(device)
        pooled = torch.cat([prompts[t][1] for t in ts]).to(device)
        text_ids = prompts[ts[0]][2]
        eps = torch.randn(x0.shape, generator=gen).to(device)
        sigma = flow.sigmas(n, gen, cfg.timestep_sampling).to(device)
        p_t = torch.tensor(prob.ravel(), dtype=torch.float32, device=device)
        w_t = torch.tensor(w, dtype=torch.float32, device=device)
        v_cache: dict[str, Any] = {}
        for _ in range(cfg.updates_per_batch):
            opt.zero_grad(set_to_none=True)
            parts = nft_backward(
                flow, model, transformer, accelerator, x0, xc, cond, eps, sigma, p_t, w_t, embeds, pooled, text_ids,
                beta=cfg.nft_beta, kl_weight=cfg.kl_weight, micro_batch=cfg.micro_batch, cache=v_cache,
            )
            opt.step()
        step += 1
        rarr = np.array(rew)
        row = {
            "step": step,
            "loss": round(parts["loss"], 6),
            "l_fm": round(parts["l_fm"], 6),
            "l_rl": round(parts["l_rl"], 6),
            "l_kl": round(parts["l_kl"], 8),
            "reward": round(float(rarr.mean()), 5),
            "nr": round(float(np.mean([t["nr"] for t in terms])), 5),
            "fidelity": round(float(np.mean([t["fidelity"] for t in terms])), 5),
            **{k: round(float(np.mean([t[k] for t in terms])), 4) for k in terms[0] if k.startswith("nr_")},
            "w_mean": round(float(w.mean()), 4),
            "group_reward_std": round(float(rarr.std(axis=1).mean()), 5),
        }
        history.append(row)
        dc.append_jsonl(out / "history.jsonl", row)
        if on_step is not None:
            on_step(step, row)
        last = step == cfg.max_steps
        if step % cfg.eval_every == 0 or last:
            after, firsts = evaluate_rl(pipe, val_pairs, prompts, steps, guidance, reward, cfg.eval_rollouts)
            evals.append({"step": step, **after})
            dc.append_jsonl(evals_path, evals[-1])
            save_image(out / "evals" / f"step_{step:06d}.png", _sheet(shown, [firsts], ["RL"]))
            if last:
                save_image(out / "samples.png", _sheet(shown, [before_outs, firsts], ["SFT", "SFT+RL"]))
        if step % cfg.checkpoint_every == 0 or last:
            dc.save_checkpoint(out / "checkpoint", dc.adapter_state(transformer, "rl"), {"optimizer": opt.state_dict(), "step": step}, identity)
    seconds = time.perf_counter() - t0
    if after is None:
        after, firsts = evaluate_rl(pipe, val_pairs, prompts, steps, guidance, reward, cfg.eval_rollouts)
        save_image(out / "samples.png", _sheet(shown, [before_outs, firsts], ["SFT", "SFT+RL"]))

    from diffusers import FluxKontextPipeline

    state, meta = merged_adapter(transformer, ["sft", "rl"])
    (out / "adapter").mkdir(exist_ok=True)
    FluxKontextPipeline.save_lora_weights(out / "adapter", transformer_lora_layers=state, safe_serialization=True, transformer_lora_adapter_metadata=meta)
    result = {
        "config": cfg.to_json(),
        "base": cfg.base,
        "adapter": cfg.adapter,
        "card": cfg.out_card,
        "size": size,
        "tasks": [t.value for t in tasks],
        "steps": cfg.max_steps,
        "resumed_from": start,
        "seconds_this_run": round(seconds, 1),
        "sampling_steps": steps,
        "hard": {k: hard[k] for k in ("train_rmse", "val_rmse", "hard_tasks")} | {"train": len(train_pairs), "val": len(val_pairs)},
        "reward": {"nr_metrics": cfg.nr_metrics, "nr_weight": cfg.nr_weight, "fidelity_weight": cfg.fidelity_weight, "fidelity": "ssim"},
        "unrewarded": ["psnr"] + (["niqe"] if "niqe" in after else []),
        "held_out": {"before": before, "after": after},
        "rank": {"sft": sft_info["rank"], "rl": cfg.rank, "card": meta["r"]},
        "evals": [{"step": e["step"], "reward": e["reward"], "psnr": e["psnr"]} for e in evals],
    }
    dc.write_lora_card(
        cfg.zoo, cfg.out_card, card, tasks, out / "adapter" / dc.LORA_WEIGHTS, source="restora train dit rl",
        description=(
            f"{cfg.adapter} + RL (DiffusionNFT, rank {cfg.rank}, {cfg.max_steps} steps on the hardest {cfg.hard_fraction:.0%}); "
            f"held-out hard mean reward {before['reward']} -> {after['reward']}, PSNR {before['psnr']} -> {after['psnr']} dB"
        ),
    )
    write_text_atomic(out / "metrics.json", json.dumps(result, indent=1) + "\n")
    rl_report(out, result, history)
    return result


def rl_report(out: Path, result: dict[str, Any], history: list[dict[str, Any]]) -> None:
    """``curves.png`` (loss terms; rollout reward and its terms; held-out reward and PSNR) and ``report.md``."""
    from restora.trainer.report import plot_curves, smooth

    steps = [r["step"] for r in history]
    window = max(1, len(history) // 30)

    def line(key: str) -> list[tuple[float, float]]:
        return list(zip(steps, smooth([r[key] for r in history], window), strict=True))

    losses = plot_curves({"total": line("loss"), "flow matching": line("l_fm"), "NFT": line("l_rl")}, f"losses (mean of {window} steps)")
    rewards = plot_curves({"rollout reward": line("reward"), "NR term": line("nr"), "fidelity (SSIM)": line("fidelity")}, "rollout reward and its terms")
    held = plot_curves({"held-out reward": [(e["step"], e["reward"]) for e in result["evals"]]}, "held-out hard samples: mean reward")
    psnr = plot_curves({"held-out PSNR (not rewarded)": [(e["step"], e["psnr"]) for e in result["evals"]]}, "held-out hard samples: PSNR (dB)")
    save_image(out / "curves.png", np.concatenate([losses, rewards, held, psnr], axis=0))
    b, a = result["held_out"]["before"], result["held_out"]["after"]
    keys = [k for k in a if k not in ("samples", "inputs")]
    lines = [
        f"# restora DiT RL run: `{result['card']}`",
        "",
        f"From `{result['adapter']}` on `{result['base']}`, {result['size']} px, {result['steps']} steps (this run from step "
        f"{result['resumed_from']}, {result['seconds_this_run']:.0f} s); tasks: {', '.join(result['tasks'])}; "
        f"LoRA ranks SFT {result['rank']['sft']} + RL {result['rank']['rl']} = card {result['rank']['card']}.",
        f"Hard samples (the SFT model farthest from the ground truth): {result['hard']['train']} for training "
        f"(RMSE {result['hard']['train_rmse']['hard']} vs {result['hard']['train_rmse']['all']} over the pool), "
        f"{result['hard']['val']} held out (RMSE {result['hard']['val_rmse']['hard']} vs {result['hard']['val_rmse']['all']}).",
        f"Reward: {result['reward']['nr_weight']} x NR({', '.join(result['reward']['nr_metrics'])}) + "
        f"{result['reward']['fidelity_weight']} x SSIM; not rewarded: {', '.join(result['unrewarded'])}.",
        "",
        f"Held-out hard samples, mean reward **{b['reward']} -> {a['reward']}**; PSNR (not rewarded) **{b['psnr']} -> {a['psnr']} dB** "
        f"({a['samples']} samples of {a['inputs']} inputs).",
        "",
        "| measure | SFT | SFT + RL |",
        "|---|---:|---:|",
        *[f"| {k} | {b.get(k)} | {a[k]} |" for k in keys],
        "",
        "![curves](curves.png)",
        "",
        "![held-out hard samples: degraded / SFT / SFT+RL / clean](samples.png)",
        "",
    ]
    write_text_atomic(out / "report.md", "\n".join(lines))
