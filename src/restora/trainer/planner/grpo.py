"""``restora train planner grpo``: reinforcement learning of the planner with TRL's ``GRPOTrainer``.

Prompts are the GRPO export's action rows and the perception rows (:mod:`.data`), one image each;
the model samples ``num_generations`` replies per prompt and :mod:`.rewards` scores them (valid
reply, perception F1, the proposed step executed with the real tools and scored against the clean
image, banned-repeat and stop penalties), each reward logged on its own and summed with
``reward_weights``. Start from an SFT adapter (``adapter``): random or untuned weights give
almost no valid replies, so every reward in a group is equal and there is nothing to learn from.

Two traps are guarded here:

* TRL #5785: GRPOTrainer pads prompt ids to the left but asks the processor again for
  ``mm_token_type_ids``, padded on the processor's own side. With a right-padding processor the
  image markers of the shorter prompts of a batch land on padding: wrong logits, or Qwen2.5-VL's
  ``get_rope_index`` fails. The processor is loaded padding left (:func:`restora.planners.hf.load_processor`)
  and checked before training (:func:`check_padding`).
* image size: every image is capped (``max_image_side``, at most 1024 px), one image per prompt.

On GPUs set ``use_vllm`` (TRL's colocate or server mode) for generation; on a CPU it runs without.

Examples:
    >>> cfg = PlannerGRPOConfig(data=Path("out/synth"), base="out/tiny-planner", adapter="runs/sft", out=Path("runs/grpo"))  # doctest: +SKIP
    >>> result = train_planner_grpo(cfg)                                                                                      # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from restora.config import help_field
from restora.imageio import write_text_atomic
from restora.planners.hf import HARD_IMAGE_SIDE, MAX_IMAGE_SIDE
from restora.trainer.common import check_all


REWARDS = ("valid", "perception_f1", "step_quality", "penalties")


@dataclass
class PlannerGRPOConfig:
    """Everything that decides a planner GRPO run (``restora train planner grpo`` flags).

    Examples:
        >>> PlannerGRPOConfig(data=Path("d"), base="b", out=Path("o")).num_generations
        4
        >>> PlannerGRPOConfig(data=Path("d"), base="b", out=Path("o"), batch_size=3)
        Traceback (most recent call last):
        ...
        ValueError: batch_size (3) x steps_per_generation (1) must be a multiple of num_generations (4): each prompt's group is generated together
    """

    data: Path = help_field("a `restora synth` folder (grpo/ export, images/, traces/)")
    base: str = help_field("the base checkpoint folder")
    out: Path = help_field("run folder (a rerun with the same settings resumes)")
    adapter: str | None = help_field("start from this LoRA adapter (an SFT run folder or its adapter/); None: a fresh LoRA", default=None)
    lora_r: int = help_field("LoRA rank (fresh adapter only)", default=16)
    lora_alpha: int = help_field("LoRA alpha (fresh adapter only)", default=32)
    target_modules: str = help_field("LoRA targets (fresh adapter only): language, all-linear, names or a regex", default="language")
    learning_rate: float = help_field("peak learning rate", default=2e-4)
    lr_scheduler: str = help_field("transformers scheduler name", default="constant")
    max_steps: int = help_field("optimizer steps", default=40)
    batch_size: int = help_field("completions per device and step (prompts x num_generations)", default=8)
    steps_per_generation: int = help_field("optimizer steps per generation round", default=1)
    grad_accum: int = help_field("gradient accumulation steps", default=1)
    num_generations: int = help_field("replies sampled per prompt (the group whose rewards are compared)", default=4)
    temperature: float = help_field("sampling temperature (PLATFORM.md: 1.0 gave the tiny planner 1% valid replies, 0.5 too little variety)", default=0.7)
    top_p: float = help_field("nucleus sampling", default=1.0)
    max_completion_length: int = help_field("reply cap in tokens (actions are <= ~60, perception ~110)", default=128)
    beta: float = help_field("KL coefficient against the reference model (0: no reference model kept)", default=0.0)
    epsilon: float = help_field("PPO-style clipping of the probability ratio", default=0.2)
    loss_type: str = help_field("TRL loss: dapo, grpo, dr_grpo, bnpo, ...", default="dapo")
    scale_rewards: str = help_field("group, batch or none: how advantages are normalised", default="group")
    reward_weights: tuple[float, ...] = help_field("weights of the rewards valid, perception_f1, step_quality, penalties (summed)", default=(1.0, 1.0, 1.0, 1.0))
    questions: str = help_field("prompts to train on: both, action or perception", default="both")
    max_image_side: int = help_field(f"images capped at this side (default {MAX_IMAGE_SIDE}; at most {HARD_IMAGE_SIDE})", default=MAX_IMAGE_SIDE)
    max_prompts: int | None = help_field("use at most this many training prompts (spread over the split)", default=None)
    eval_rows: int = help_field("validation rows replied to (greedy) before and after, and their mean reward (0: none)", default=32)
    save_every: int = help_field("steps between checkpoints", default=10)
    bf16: bool = help_field("bfloat16 mixed precision (GPUs)", default=False)
    gradient_checkpointing: bool = help_field("recompute activations (GPU memory)", default=False)
    use_vllm: bool = help_field("generate with vLLM (GPUs; TRL's vllm_mode)", default=False)
    vllm_mode: str = help_field("colocate (vLLM in the training process) or server (`trl vllm-serve`)", default="colocate")
    device: str = help_field("cpu or auto", default="auto")
    threads: int | None = help_field("torch threads (None: torch's default)", default=None)
    seed: int = help_field("seed of the prompt order and the sampling", default=0)

    def __post_init__(self) -> None:
        self.data, self.out, self.base = Path(self.data), Path(self.out), str(self.base)
        self.reward_weights = tuple(float(w) for w in self.reward_weights)
        check_all(
            [
                (self.num_generations >= 2, f"num_generations must be >= 2 (a group compares its replies), got {self.num_generations}"),
                (
                    (self.batch_size * self.steps_per_generation) % self.num_generations == 0,
                    f"batch_size ({self.batch_size}) x steps_per_generation ({self.steps_per_generation}) must be a multiple of "
                    f"num_generations ({self.num_generations}): each prompt's group is generated together",
                ),
                (self.max_steps >= 1, f"max_steps must be >= 1, got {self.max_steps}"),
                (self.learning_rate > 0, f"learning_rate must be > 0, got {self.learning_rate}"),
                (self.temperature > 0, f"temperature must be > 0, got {self.temperature}"),
                (0 < self.top_p <= 1, f"top_p must be in (0, 1], got {self.top_p}"),
                (self.max_completion_length >= 16, f"max_completion_length must be >= 16, got {self.max_completion_length}"),
                (self.beta >= 0 and self.epsilon > 0, "beta must be >= 0 and epsilon > 0"),
                (len(self.reward_weights) == len(REWARDS), f"reward_weights: one per reward ({', '.join(REWARDS)}), got {len(self.reward_weights)}"),
                (self.questions in ("both", "action", "perception"), f"questions must be both, action or perception, got {self.questions!r}"),
                (28 <= self.max_image_side <= HARD_IMAGE_SIDE, f"max_image_side must be in 28..{HARD_IMAGE_SIDE} px, got {self.max_image_side}"),
                (self.scale_rewards in ("group", "batch", "none"), f"scale_rewards must be group, batch or none, got {self.scale_rewards!r}"),
                (self.vllm_mode in ("colocate", "server"), f"vllm_mode must be colocate or server, got {self.vllm_mode!r}"),
                (self.device in ("cpu", "auto"), f"device must be cpu or auto, got {self.device!r}"),
                (self.eval_rows >= 0 and self.save_every >= 1, "eval_rows must be >= 0 and save_every >= 1"),
            ]
        )

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["data"], d["out"], d["reward_weights"] = str(self.data), str(self.out), list(self.reward_weights)
        return d

    def identity(self) -> dict[str, Any]:
        d = self.to_json()
        for k in ("out", "max_steps", "eval_rows", "save_every", "device", "threads", "use_vllm", "vllm_mode"):
            d.pop(k)
        return d


def check_padding(processor: Any) -> None:
    """Refuse a processor that pads on the right (TRL #5785: see the module docstring)."""
    side = getattr(getattr(processor, "tokenizer", processor), "padding_side", None)
    if side != "left":
        raise ValueError(
            f"the planner's processor pads on the {side!r} side; GRPO needs left padding (TRL #5785: image token types "
            "would be misaligned with the left-padded prompts). Load it with restora.planners.hf.load_processor"
        )


def grpo_dataset(cfg: PlannerGRPOConfig, split: str, limit: int | None = None) -> Any:
    """The prompts with what the rewards read (labels as JSON text: their keys vary per row)."""
    from datasets import Dataset

    from restora.trainer.planner.data import grpo_rows, load_image
    from restora.trainer.planner.evaluate import select

    rows = [r for r in grpo_rows(cfg.data, split) if cfg.questions == "both" or r["question"] == cfg.questions]
    rows = select(rows, limit)
    if not rows:
        raise ValueError(f"{cfg.data}: no {split} prompts for questions={cfg.questions}")
    return Dataset.from_list(
        [
            {
                "id": r["id"],
                "prompt": r["prompt"],
                "images": [load_image(cfg.data, r["image"], cfg.max_image_side)],
                "question": r["question"],
                "scenario": r["scenario"],
                "labels": json.dumps(r.get("labels") or {}),
                "current": r["image"],
                "clean": r.get("clean", ""),
                "trace": r.get("trace", ""),
                "target": r["target"],
            }
            for r in rows
        ]
    )


def held_out_reward(rewards: Any, predictions_file: Path, dataset: Any, weights: tuple[float, ...]) -> dict[str, Any]:
    """Mean of each reward (and of their weighted sum) over greedy held-out replies."""
    import math

    preds = {json.loads(line)["id"]: json.loads(line) for line in predictions_file.read_text().splitlines() if line.strip()}
    rows = [r for r in dataset if r["id"] in preds]
    if not rows:
        return {}
    cols = {k: [r[k] for r in rows] for k in ("question", "labels", "current", "clean", "trace", "target")}
    cols["prompts"] = [r["prompt"] for r in rows]
    completions = [[{"role": "assistant", "content": preds[r["id"]]["reply"]}] for r in rows]
    per = {fn.__name__: fn(completions, **cols) for fn in rewards.functions()}
    total = []
    for i in range(len(rows)):
        vals = [(w, per[name][i]) for w, name in zip(weights, REWARDS, strict=True)]
        total.append(sum(w * v for w, v in vals if v is not None))
    out = {name: round(float(sum(v for v in vals if v is not None) / max(1, sum(v is not None for v in vals))), 4) for name, vals in per.items()}
    out["reward"] = round(float(sum(total) / len(total)), 4) if total and not any(math.isnan(t) for t in total) else None
    out["rows"] = len(rows)
    return out


def _held_out(model: Any, processor: Any, cfg: PlannerGRPOConfig, rewards: Any, val: Any, out: Path) -> dict[str, Any] | None:
    if cfg.eval_rows == 0:
        return None
    from restora.planners.hf import HFBackend
    from restora.trainer.planner.evaluate import evaluate_backend

    was = model.training
    model.eval()
    try:
        backend = HFBackend(loaded=(model, processor), max_tokens=cfg.max_completion_length)
        perception = cfg.eval_rows if cfg.questions != "action" else 0
        actions = cfg.eval_rows if cfg.questions != "perception" else 0
        m = evaluate_backend(backend, cfg.data, "val", limit=max(actions, 1), perception_limit=perception, max_side=cfg.max_image_side, out=out)
        m["reward"] = held_out_reward(rewards, out / "predictions.jsonl", val, cfg.reward_weights)
        write_text_atomic(out / "metrics.json", json.dumps(m, indent=1) + "\n")
        return m
    finally:
        model.train(was)


def train_planner_grpo(cfg: PlannerGRPOConfig, *, on_log: Callable[[dict[str, Any]], None] | None = None, command: str | None = None) -> dict[str, Any]:
    """Train (or resume) the planner with GRPO as ``cfg`` says; return the metrics (also in ``out/metrics.json``)."""
    import torch
    from transformers import PrinterCallback
    from trl import GRPOConfig, GRPOTrainer

    from restora.trainer.planner.common import (
        check_resume,
        completion_only_lm_head,
        history_rows,
        is_main_process,
        last_checkpoint,
        load_base,
        lora_config,
        save_adapter,
        step_logger,
        write_report,
    )
    from restora.trainer.planner.rewards import Rewards

    out = cfg.out
    check_resume(out, cfg.identity())
    if cfg.threads is not None:
        torch.set_num_threads(int(cfg.threads))
    done = out / "metrics.json"
    if done.is_file() and (out / "adapter").is_dir():
        result = json.loads(done.read_text())
        if result.get("max_steps") == cfg.max_steps:
            return result
    model, processor = load_base(cfg.base, "float32")
    check_padding(processor)
    peft_config = None
    if cfg.adapter is not None:
        from peft import PeftModel

        from restora.model_zoo.planner import planner_adapter

        model = PeftModel.from_pretrained(model, str(planner_adapter(cfg.adapter)), is_trainable=True)
    else:
        peft_config = lora_config(cfg.lora_r, cfg.lora_alpha, 0.0, cfg.target_modules)
    train = grpo_dataset(cfg, "train", cfg.max_prompts)
    val = grpo_dataset(cfg, "val")
    rewards = Rewards(cfg.data)
    before_file = out / "before" / "metrics.json"
    main = is_main_process()
    before = json.loads(before_file.read_text()) if before_file.is_file() else (_held_out(model, processor, cfg, rewards, val, out / "before") if main else None)
    use_cpu = cfg.device == "cpu" or not torch.cuda.is_available()
    args = GRPOConfig(
        output_dir=str(out / "checkpoints"),
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        steps_per_generation=cfg.steps_per_generation,
        gradient_accumulation_steps=cfg.grad_accum,
        num_generations=cfg.num_generations,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        max_completion_length=cfg.max_completion_length,
        beta=cfg.beta,
        epsilon=cfg.epsilon,
        loss_type=cfg.loss_type,
        scale_rewards=cfg.scale_rewards,
        reward_weights=list(cfg.reward_weights),
        bf16=cfg.bf16,
        gradient_checkpointing=cfg.gradient_checkpointing,
        use_cpu=use_cpu,
        use_vllm=cfg.use_vllm,
        vllm_mode=cfg.vllm_mode,
        logging_steps=1,
        save_strategy="steps",
        save_steps=cfg.save_every,
        save_total_limit=2,
        report_to=[],
        seed=cfg.seed,
        data_seed=cfg.seed,
        dataloader_num_workers=0,
        disable_tqdm=True,
        remove_unused_columns=False,
    )
    log = step_logger(out, on_log)

    trainer = GRPOTrainer(
        model=model,
        reward_funcs=rewards.functions(),
        args=args,
        train_dataset=train,
        processing_class=processor,
        peft_config=peft_config,
        callbacks=[log],
    )
    trainer.remove_callback(PrinterCallback)  # the Log callback reports; no dict per step on stdout
    check_padding(trainer.processing_class)
    resume = last_checkpoint(out)
    t0 = time.perf_counter()
    with completion_only_lm_head():
        trainer.train(resume_from_checkpoint=resume)
    seconds = time.perf_counter() - t0
    if not main:  # several processes (accelerate launch): the first one writes the run's files
        return {"steps": trainer.state.global_step, "main_process": False}
    final = save_adapter(trainer, out, cfg.base, False, processor, "restora planner, GRPO on restora synth rows", command or "")
    after = _held_out(trainer.model, processor, cfg, rewards, val, out / "after")
    logs = [r for r in history_rows(trainer.state.log_history) if "reward" in r]
    curve = [(r["step"], r["reward"]) for r in logs]
    k = max(1, min(10, len(curve) // 3))
    result = {
        "kind": "planner-grpo",
        "config": cfg.to_json(),
        "command": command,
        "max_steps": cfg.max_steps,
        "steps": trainer.state.global_step,
        "resumed_from": resume,
        "seconds_this_run": round(seconds, 1),
        "seconds_per_step": log.seconds_per_step(),
        "prompts": {"train": len(train), "val": len(val)},
        "tool_runs": rewards.tool_runs,
        "weights": str(final),
        "train_reward": curve,
        "train_reward_first": round(sum(v for _, v in curve[:k]) / k, 4) if curve else None,
        "train_reward_last": round(sum(v for _, v in curve[-k:]) / k, 4) if curve else None,
        "train_rewards_by_function": {
            name: [(r["step"], r[f"rewards/{name}/mean"]) for r in logs if f"rewards/{name}/mean" in r] for name in REWARDS
        },
        "before": before,
        "after": after,
    }
    write_text_atomic(out / "metrics.json", json.dumps(result, indent=1) + "\n")
    lines = [
        f"Base `{cfg.base}`, start adapter `{cfg.adapter}`, data `{cfg.data}` ({len(train)} training prompts), {cfg.num_generations} "
        f"replies per prompt at temperature {cfg.temperature}, batch {cfg.batch_size}, lr {cfg.learning_rate:g}, beta {cfg.beta}, "
        f"{result['steps']} steps ({result['seconds_per_step']} s/step this run); {rewards.tool_runs} tool runs for step_quality.",
        "",
        f"Mean training reward: first {k} steps {result['train_reward_first']}, last {k} steps {result['train_reward_last']}.",
        "",
    ]
    if after is not None:
        lines += ["| held-out (greedy) | before | after |", "|---|---:|---:|"]
        for key in ("reward", *REWARDS):
            b = (before or {}).get("reward", {}).get(key, "-")
            lines.append(f"| {key} | {b} | {after.get('reward', {}).get(key, '-')} |")
        lines.append(f"| action accuracy | {(before or {}).get('action_accuracy', {}).get('overall', '-')} | {after['action_accuracy']['overall']} |")
        lines.append(f"| valid action replies | {(before or {}).get('valid_rate', '-')} | {after['valid_rate']} |")
    write_report(
        out,
        "restora planner GRPO run",
        lines,
        {"mean reward": {"reward": curve}, "rewards": {n: v for n, v in result["train_rewards_by_function"].items()}},
    )
    return result
