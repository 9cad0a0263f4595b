"""``restora train planner sft``: supervised fine-tuning of the Qwen-VL planner on ``restora synth`` rows.

TRL's ``SFTTrainer`` on prompt/completion rows with one image each (:mod:`.data`): the action rows
of the SFT export, built by the live prompt builder, so the planner is trained on exactly what it
is asked at run time, and the perception rows (the planner's other question). LoRA through peft
by default (``full=True`` fine-tunes every weight), resumable, evaluated on the validation split
(loss during training; greedy replies before and after, :mod:`.evaluate`).

The loss is TRL's completion-only loss, computed only where an answer token is predicted: the
LM head runs on those positions alone (``logits_to_keep``). A planner prompt is ~1.7k tokens of
which ~50 are the answer, and a full ``(tokens x 151k vocabulary)`` logit tensor per row made a
CPU step ~60x slower (58 s against 0.9 s measured on the tiny planner); on GPUs TRL's fused LM
head does the same.

Examples:
    >>> cfg = PlannerSFTConfig(data=Path("out/synth"), base="out/tiny-planner", out=Path("runs/sft"), max_steps=300)  # doctest: +SKIP
    >>> result = train_planner_sft(cfg)                                                                                # doctest: +SKIP
    >>> result["after"]["action_accuracy"]["overall"]                                                                 # doctest: +SKIP
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



@dataclass
class PlannerSFTConfig:
    """Everything that decides a planner SFT run (``restora train planner sft`` flags).

    Examples:
        >>> PlannerSFTConfig(data=Path("d"), base="b", out=Path("o"), max_steps=10).lora_r
        16
        >>> PlannerSFTConfig(data=Path("d"), base="b", out=Path("o"), max_image_side=2048)
        Traceback (most recent call last):
        ...
        ValueError: max_image_side must be in 28..1024 px (one image per prompt, capped), got 2048
    """

    data: Path = help_field("a `restora synth` folder (sft/ and grpo/ exports, images/)")
    base: str = help_field("the base checkpoint folder (a Qwen2.5-VL / Qwen3-VL; `restora zoo tiny-planner DIR` writes a tiny one)")
    out: Path = help_field("run folder: checkpoints, adapter/, metrics.json, report (a rerun with the same settings resumes)")
    full: bool = help_field("fine-tune every weight instead of a LoRA adapter (writes model/ instead of adapter/)", default=False)
    lora_r: int = help_field("LoRA rank", default=16)
    lora_alpha: int = help_field("LoRA alpha (scale = alpha / r)", default=32)
    lora_dropout: float = help_field("LoRA dropout", default=0.0)
    target_modules: str = help_field(
        "LoRA targets: language (the language model's attention and MLP projections: what vLLM serves), all-linear "
        "(the vision tower too), a comma list of module names or a regex",
        default="language",
    )
    learning_rate: float = help_field("peak learning rate (LoRA wants ~10x a full fine-tune's)", default=1e-3)
    lr_scheduler: str = help_field("transformers scheduler name: cosine, linear, constant, constant_with_warmup, ...", default="cosine")
    warmup_ratio: float = help_field("share of the steps spent warming up", default=0.03)
    weight_decay: float = help_field("AdamW weight decay", default=0.0)
    max_steps: int = help_field("optimizer steps in all (-1: train for `epochs`)", default=300)
    epochs: float = help_field("passes over the training rows when max_steps is -1", default=3.0)
    batch_size: int = help_field("rows per device and step", default=2)
    grad_accum: int = help_field("gradient accumulation steps (effective batch = batch_size x grad_accum x devices)", default=1)
    max_length: int | None = help_field("truncate rows to this many tokens (None: never; truncation would cut image tokens)", default=None)
    max_image_side: int = help_field(f"images are area-downscaled to at most this side (default {MAX_IMAGE_SIDE}: what the planner sends; at most {HARD_IMAGE_SIDE})", default=MAX_IMAGE_SIDE)
    perception_rows: bool = help_field("also train the perception question (the live planner asks it before every step)", default=True)
    bf16: bool = help_field("bfloat16 mixed precision (GPUs; slow on a CPU)", default=False)
    gradient_checkpointing: bool = help_field("recompute activations in the backward pass (saves GPU memory, ~10x slower on a CPU)", default=False)
    eval_every: int = help_field("steps between validation-loss evaluations (and checkpoints)", default=50)
    eval_rows: int = help_field("validation rows asked for replies before and after training (0: none); the loss uses all", default=64)
    max_new_tokens: int = help_field("reply cap when asking for replies", default=160)
    device: str = help_field("cpu, or auto (accelerate: every GPU it is launched on)", default="auto")
    threads: int | None = help_field("torch threads (None: torch's default)", default=None)
    seed: int = help_field("seed of the data order, LoRA init and dropout", default=0)

    def __post_init__(self) -> None:
        self.data, self.out, self.base = Path(self.data), Path(self.out), str(self.base)
        check_all(
            [
                (self.lora_r >= 1 and self.lora_alpha >= 1, f"lora_r and lora_alpha must be >= 1, got {self.lora_r}, {self.lora_alpha}"),
                (0.0 <= self.lora_dropout < 1.0, f"lora_dropout must be in [0, 1), got {self.lora_dropout}"),
                (self.learning_rate > 0, f"learning_rate must be > 0, got {self.learning_rate}"),
                (0.0 <= self.warmup_ratio < 1.0, f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}"),
                (self.max_steps == -1 or self.max_steps >= 1, f"max_steps must be >= 1 (or -1 for epochs), got {self.max_steps}"),
                (self.epochs > 0, f"epochs must be > 0, got {self.epochs}"),
                (self.batch_size >= 1 and self.grad_accum >= 1, "batch_size and grad_accum must be >= 1"),
                (self.max_length is None or self.max_length >= 256, f"max_length must be >= 256 tokens or None, got {self.max_length}"),
                (28 <= self.max_image_side <= HARD_IMAGE_SIDE, f"max_image_side must be in 28..{HARD_IMAGE_SIDE} px (one image per prompt, capped), got {self.max_image_side}"),
                (self.eval_every >= 1, f"eval_every must be >= 1, got {self.eval_every}"),
                (self.eval_rows >= 0, f"eval_rows must be >= 0, got {self.eval_rows}"),
                (self.device in ("cpu", "auto"), f"device must be cpu or auto, got {self.device!r}"),
            ]
        )

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["data"], d["out"] = str(self.data), str(self.out)
        return d

    def identity(self) -> dict[str, Any]:
        """What must not change when a run is resumed."""
        d = self.to_json()
        for k in ("out", "max_steps", "epochs", "eval_every", "eval_rows", "max_new_tokens", "device", "threads"):
            d.pop(k)
        return d


def _dataset(rows: list[dict[str, Any]], data: Path, max_side: int) -> Any:
    from datasets import Dataset

    from restora.trainer.planner.data import load_image

    return Dataset.from_list(
        [{"prompt": r["prompt"], "completion": r["completion"], "images": [load_image(data, r["image"], max_side)]} for r in rows]
    )


def sft_rows(cfg: PlannerSFTConfig, split: str) -> list[dict[str, Any]]:
    from restora.trainer.planner.data import action_rows, perception_rows

    rows = action_rows(cfg.data, split)
    if cfg.perception_rows:
        rows += perception_rows(cfg.data, split)
    if not rows:
        raise ValueError(f"{cfg.data}: no {split} rows")
    return rows


def answer_loss_trainer() -> type:
    """``SFTTrainer`` whose loss runs the LM head on the answer positions only (see the module docstring)."""
    import torch
    import torch.nn.functional as F
    from trl import SFTTrainer

    class AnswerLossSFTTrainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = inputs["labels"]
            shifted = labels[:, 1:]
            mask = shifted != -100
            keep = mask.any(dim=0).nonzero().squeeze(-1)  # positions whose next token is an answer token
            fwd = {k: v for k, v in inputs.items() if k != "labels"}
            fwd["use_cache"] = False
            outputs = model(**fwd, logits_to_keep=keep)
            logits = outputs.logits.float()
            target = shifted[:, keep]
            n = mask.sum() if num_items_in_batch is None else num_items_in_batch
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), target.reshape(-1), ignore_index=-100, reduction="sum")
            loss = loss / torch.as_tensor(n, device=loss.device).clamp(min=1)
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                loss = loss * self.accelerator.num_processes
            with torch.no_grad():
                valid = target != -100
                correct = ((logits.argmax(-1) == target) & valid).sum()
                mode = "train" if model.training else "eval"
                total = self.accelerator.gather_for_metrics(valid.sum()).sum()
                self._metrics[mode]["mean_token_accuracy"].append((self.accelerator.gather_for_metrics(correct).sum() / total.clamp(min=1)).item())
            return (loss, outputs) if return_outputs else loss

    return AnswerLossSFTTrainer


def _held_out(model: Any, processor: Any, cfg: PlannerSFTConfig, out: Path) -> dict[str, Any] | None:
    """Greedy replies on ``eval_rows`` validation rows (and as many perception rows)."""
    if cfg.eval_rows == 0:
        return None
    from restora.planners.hf import HFBackend
    from restora.trainer.planner.evaluate import evaluate_backend

    was_training = model.training
    model.eval()
    try:
        backend = HFBackend(loaded=(model, processor), max_tokens=cfg.max_new_tokens)
        perception = cfg.eval_rows if cfg.perception_rows else 0
        return evaluate_backend(backend, cfg.data, "val", limit=cfg.eval_rows, perception_limit=perception, max_side=cfg.max_image_side, out=out)
    finally:
        model.train(was_training)


def _read_history(path: Path) -> list[dict[str, Any]]:
    """The logged rows, the last one kept per (step, kind of row): a resumed run logs some steps again."""
    rows: dict[tuple[int, str], dict[str, Any]] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                rows[(int(r["step"]), "eval" if "eval_loss" in r else "train" if "loss" in r else "other")] = r
    return [rows[k] for k in sorted(rows)]


def train_planner_sft(
    cfg: PlannerSFTConfig,
    *,
    on_log: Callable[[dict[str, Any]], None] | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Train (or resume) the planner as ``cfg`` says; return the metrics (also in ``out/metrics.json``)."""
    import torch
    from transformers import PrinterCallback
    from trl import SFTConfig

    from restora.trainer.planner.common import (
        accuracy_table,
        check_resume,
        is_main_process,
        last_checkpoint,
        load_base,
        lora_config,
        save_adapter,
        step_logger,
        write_report,
    )

    out = cfg.out
    check_resume(out, cfg.identity())
    if cfg.threads is not None:
        torch.set_num_threads(int(cfg.threads))
    done = out / "metrics.json"
    final = out / ("model" if cfg.full else "adapter")
    if done.is_file() and final.is_dir():
        result = json.loads(done.read_text())
        if result.get("max_steps") == cfg.max_steps:
            return result  # finished: nothing to do
    train_rows, val_rows = sft_rows(cfg, "train"), sft_rows(cfg, "val")
    model, processor = load_base(cfg.base, "float32")
    resume = last_checkpoint(out)
    main = is_main_process()
    before_file = out / "before" / "metrics.json"
    if before_file.is_file():
        before = json.loads(before_file.read_text())
    else:
        before = _held_out(model, processor, cfg, out / "before") if main else None
    use_cpu = cfg.device == "cpu" or not torch.cuda.is_available()
    args = SFTConfig(
        output_dir=str(out / "checkpoints"),
        max_steps=cfg.max_steps,
        num_train_epochs=cfg.epochs,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_ratio,  # a float below 1 is a share of the steps (transformers 5)
        weight_decay=cfg.weight_decay,
        max_length=cfg.max_length,
        bf16=cfg.bf16,
        gradient_checkpointing=cfg.gradient_checkpointing,
        use_cpu=use_cpu,
        logging_steps=1,
        eval_strategy="steps",
        eval_steps=cfg.eval_every,
        save_strategy="steps",
        save_steps=cfg.eval_every,
        save_total_limit=2,
        prediction_loss_only=True,
        report_to=[],
        seed=cfg.seed,
        data_seed=cfg.seed,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    from restora.trainer.planner.data import PERCEPTION

    eval_subset = [r for r in val_rows if r["scenario"] != PERCEPTION][: max(cfg.eval_rows, 16)] + [r for r in val_rows if r["scenario"] == PERCEPTION][: max(cfg.eval_rows // 2, 8)]
    log = step_logger(out, on_log)

    trainer = answer_loss_trainer()(
        model=model,
        args=args,
        train_dataset=_dataset(train_rows, cfg.data, cfg.max_image_side),
        eval_dataset=_dataset(eval_subset, cfg.data, cfg.max_image_side),
        processing_class=processor,
        peft_config=None if cfg.full else lora_config(cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, cfg.target_modules),
        callbacks=[log],
    )
    trainer.remove_callback(PrinterCallback)  # the Log callback reports; no dict per step on stdout
    if resume is None:
        trainer.evaluate()  # the validation loss of the untrained model: the curve's step 0
    t0 = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume)
    seconds = time.perf_counter() - t0
    if not main:  # several processes (accelerate launch): the first one writes the run's files
        return {"steps": trainer.state.global_step, "main_process": False}
    final = save_adapter(trainer, out, cfg.base, cfg.full, processor, "restora planner, SFT on restora synth rows", command or "")
    after = _held_out(trainer.model, processor, cfg, out / "after")
    logs = [*_read_history(out / "history.jsonl")]  # every run's rows (a resumed run's too), step 0's evaluation included
    result = {
        "kind": "planner-sft",
        "config": cfg.to_json(),
        "command": command,
        "max_steps": cfg.max_steps,
        "steps": trainer.state.global_step,
        "resumed_from": resume,
        "seconds_this_run": round(seconds, 1),
        "seconds_per_step": log.seconds_per_step(),  # optimizer steps only (no evaluation)
        "rows": {"train": len(train_rows), "val": len(val_rows), "val_loss_rows": len(eval_subset)},
        "trainable_params": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
        "weights": str(final),
        "train_loss": [(r["step"], r["loss"]) for r in logs if "loss" in r],
        "eval_loss": [(r["step"], r["eval_loss"]) for r in logs if "eval_loss" in r],
        "eval_token_accuracy": [(r["step"], r["eval_mean_token_accuracy"]) for r in logs if "eval_mean_token_accuracy" in r],
        "before": before,
        "after": after,
    }
    write_text_atomic(out / "metrics.json", json.dumps(result, indent=1) + "\n")
    lines = [
        f"Base `{cfg.base}`, data `{cfg.data}` ({len(train_rows)} training rows, {len(val_rows)} validation rows), "
        f"{'full fine-tune' if cfg.full else f'LoRA r {cfg.lora_r} alpha {cfg.lora_alpha} on {cfg.target_modules}'}, "
        f"lr {cfg.learning_rate:g} {cfg.lr_scheduler}, batch {cfg.batch_size} x {cfg.grad_accum}, {result['steps']} steps "
        f"({result['seconds_per_step']} s/step this run).",
        "",
        f"Weights: `{final}`.",
        "",
    ]
    if after is not None:
        lines += accuracy_table(before, after)
    write_report(
        out,
        "restora planner SFT run",
        lines,
        {"loss": {"train": result["train_loss"], "validation": result["eval_loss"]}},
    )
    return result
