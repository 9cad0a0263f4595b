"""``restora train``: the trainers (``restora train perception`` first).

Examples:
    restora train perception --out runs/perception --steps 4000
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from restora.cli.common import advance_to, app, out, progress_bar, user_errors

train_app = typer.Typer(help="Trainers: models restora learns from what it synthesizes.", no_args_is_help=True)
app.add_typer(train_app, name="train")


@train_app.command("perception")
def train_perception(
    outdir: Annotated[Path, typer.Option("--out", "-o", help="run folder (resumable: a rerun with the same settings continues)")],
    clean: Annotated[list[Path] | None, typer.Option("--clean", help="folders of clean photos (default: the shared data's clean/cbsd68 and clean/live1)")] = None,
    steps: Annotated[int, typer.Option(min=1, help="optimizer steps in all")] = 4000,
    batch_size: Annotated[int, typer.Option(min=1, help="samples per step")] = 32,
    crop: Annotated[int, typer.Option(min=32, help="crop side, px (native resolution)")] = 128,
    arch: Annotated[str, typer.Option(help="torchvision architecture, random init")] = "mobilenet_v3_small",
    lr: Annotated[float, typer.Option(help="peak learning rate")] = 2e-3,
    val_samples: Annotated[int, typer.Option(min=8, help="synthesized validation samples")] = 512,
    eval_every: Annotated[int, typer.Option(min=1, help="steps between validations")] = 250,
    checkpoint_every: Annotated[int, typer.Option(min=1, help="steps between checkpoints")] = 250,
    workers: Annotated[int, typer.Option(min=0, help="data-synthesis processes")] = 1,
    camera_share: Annotated[float, typer.Option(help="share of samples given a camera's own softness (and sharpening) before any degradation")] = 0.6,
    camera_luma_nr_share: Annotated[float, typer.Option(help="share of camera-noise samples given the camera's luminance noise reduction (soft mottle, as high-ISO camera JPEGs show)")] = 0.0,
    camera_mild_share: Annotated[float, typer.Option(help="share of camera-noise samples at mild severities (about 2-5 in 0-255, as a camera's own high-ISO JPEG)")] = 0.0,
    camera_dim_share: Annotated[float, typer.Option(help="share of camera-noise samples at low exposure (the scene dimmed first, the camera's noise after it)")] = 0.0,
    dark_noise_label: Annotated[bool, typer.Option("--dark-noise-label", help="label the dark degradation's own dim-light noise as noise too (where nothing after it smooths it away)")] = False,
    max_false_alarm: Annotated[float, typer.Option(help="calibration: at most this share of validation samples without a degradation may be flagged with it (on a finished run: recalibrate only)")] = 0.05,
    threads: Annotated[int | None, typer.Option(min=1, help="torch threads for training (default: torch's; 1 leaves a core to the data worker and to other jobs)")] = None,
    seed: Annotated[int, typer.Option(help="seed of the split, samples and initial weights")] = 0,
    init: Annotated[Path | None, typer.Option(help="fine-tune: start from this perception model (a run folder, the shipped src/restora/perception/model, or its model.safetensors) instead of random weights")] = None,
    warmup: Annotated[int, typer.Option(min=0, help="linear learning-rate warmup steps")] = 100,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress display")] = False,
) -> None:
    """Train the perception network on degradations synthesized from clean photos; writes the model,
    metrics.json and a report (report.md, curves.png, validation.png) into OUT."""
    from restora.trainer.perception import PerceptionTrainConfig
    from restora.trainer.perception import train_perception as run

    with user_errors():
        kwargs = {} if not clean else {"clean": clean}
        cfg = PerceptionTrainConfig(
            out=outdir, steps=steps, batch_size=batch_size, crop=crop, arch=arch, lr=lr, val_samples=val_samples,
            eval_every=eval_every, checkpoint_every=checkpoint_every, workers=workers, camera_share=camera_share,
            camera_luma_nr_share=camera_luma_nr_share, camera_mild_share=camera_mild_share, camera_dim_share=camera_dim_share, dark_noise_label=dark_noise_label, max_false_alarm=max_false_alarm, threads=threads, seed=seed,
            init=init, warmup=warmup, **kwargs,
        )
    progress = progress_bar(quiet)
    with progress:
        task = progress.add_task("steps", total=steps, last="")
        state = {"auc": "-"}

        def on_step(step: int, row: dict) -> None:
            line = f"step {step} loss {row['loss']:.4f} lr {row['lr']:.2e} val AUC {state['auc']}"
            advance_to(progress, task, step, line, quiet, log_every=50)

        def on_eval(step: int, metrics: dict) -> None:
            state["auc"] = f"{metrics['mean_auc']}"

        with user_errors():
            result = run(cfg, on_step=on_step, on_eval=on_eval)
    val = result["val"]
    out.print(
        f"{outdir}: mean AUC {val['mean_auc']}, mean F1 {val['mean_f1']}, clean read clean {val['clean_read_clean']} "
        f"({result['seconds_this_run']:.0f} s); see {outdir / 'report.md'}",
        highlight=False,
    )


@train_app.command("guard")
def train_guard(
    outdir: Annotated[Path, typer.Option("--out", "-o", help="run folder (guard.json, rows.jsonl, metrics.json, report.md, rejected.png)")],
    clean: Annotated[list[Path] | None, typer.Option("--clean", help="folders of clean photos (default: the shared data's clean/cbsd68 and clean/live1)")] = None,
    samples: Annotated[int, typer.Option(min=8, help="synthesized pictures per family (each runs every tool of the family)")] = 240,
    crop: Annotated[int, typer.Option(min=64, help="crop side, px (native resolution)")] = 192,
    context_share: Annotated[float, typer.Option(help="share of pictures that also carry a degradation formed before the family's own (dark, haze, blur, ...)")] = 0.5,
    camera_share: Annotated[float, typer.Option(help="share of pictures given a camera's own softness first (real photos at native resolution are soft)")] = 0.0,
    mild_share: Annotated[float, typer.Option(help="share of degraded pictures at mild severities (0..0.15)")] = 0.0,
    luma_nr_share: Annotated[float, typer.Option(help="share of camera-noise pictures given the camera's luminance noise reduction")] = 0.0,
    threshold_rule: Annotated[str, typer.Option(help="how thresholds are set on the validation steps: utility (most PSNR gained on average) or false_reject")] = "utility",
    perception: Annotated[str, typer.Option(help="perception that reads each picture and so sets the tools' parameters, as the agent's does: learned, classical or a run folder")] = "learned",
    max_false_reject: Annotated[float, typer.Option(help="share of helpful validation steps the threshold may reject (false_reject rule)")] = 0.05,
    vouch_p: Annotated[float, typer.Option(help="harm probability at or under which a family that proved reliable on its validation steps vouches for a step")] = 0.1,
    vouch_scan: Annotated[bool, typer.Option("--vouch-scan/--no-vouch-scan", help="calibrate each family's vouch level on its validation steps: the largest from vouch_p up to its threshold that stays as safe")] = False,
    families: Annotated[str | None, typer.Option(help="comma-separated guard families to fit (default: all)")] = None,
    keep_from: Annotated[Path | None, typer.Option(help="a guard.json whose other families are copied into OUT/guard.json as they are (with --families)")] = None,
    view_families: Annotated[str | None, typer.Option(help="comma-separated families whose steps are measured on a dim picture brightened, as a person views it (default: none, the shipped fit)")] = None,
    dim_dark_context: Annotated[bool, typer.Option("--dim-dark-context/--no-dim-dark-context", help="the denoise family's dark context is the dimming alone: its noise is the family's to remove")] = False,
    view_dim_only: Annotated[bool, typer.Option("--view-dim-only/--no-view-dim-only", help="write each view family as FAMILY@dim, judging dim pictures only; the family kept from --keep-from judges the rest")] = False,
    workers: Annotated[int, typer.Option(min=1, help="processes synthesizing and running tools")] = 2,
    seed: Annotated[int, typer.Option(help="seed of the split and the samples")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress display")] = False,
) -> None:
    """Fit the no-harm guard on steps synthesized from clean photos: every tool of a family runs on
    degraded crops, clean crops and hard negatives, labelled by the PSNR change against the clean
    picture. Copy OUT/guard.json over src/restora/quality/guard.json to ship it. A rerun into the
    same folder with the same sampling settings reuses rows.jsonl and only refits."""
    import shlex
    import sys

    from restora.trainer.guard import GuardTrainConfig
    from restora.trainer.guard import train_guard as run

    with user_errors():
        kwargs: dict = {} if not clean else {"clean": clean}
        if families:
            kwargs["families"] = [f.strip() for f in families.split(",") if f.strip()]
        if view_families:
            kwargs["view_families"] = [f.strip() for f in view_families.split(",") if f.strip()]
        cfg = GuardTrainConfig(
            dim_dark_context=dim_dark_context,
            view_dim_only=view_dim_only,
            keep_from=keep_from,
            out=outdir, samples=samples, crop=crop, context_share=context_share, camera_share=camera_share, mild_share=mild_share, luma_nr_share=luma_nr_share, threshold_rule=threshold_rule, perception=perception, max_false_reject=max_false_reject, vouch_p=vouch_p, vouch_scan=vouch_scan,
            workers=workers, seed=seed, **kwargs,
        )
    progress = progress_bar(quiet)
    command = "restora " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    with progress:
        task = progress.add_task("samples", total=samples * len(cfg.families), last="")

        def on_sample(n: int, total: int) -> None:
            progress.update(task, total=total)  # families whose rows are reused are not synthesized again
            advance_to(progress, task, n, f"{n}/{total} pictures", quiet, log_every=40)

        with user_errors():
            result = run(cfg, on_sample=on_sample, command=command)
    for family, m in result["families"].items():
        out.print(
            f"{family}: val AUC {m['val_auc']}, harm rejected {m['val_harm_rejected']}, help rejected {m['val_help_rejected']} "
            f"({m['val_steps']} validation steps); vouches: {'no' if m.get('vouch') is None else 'at harm <= ' + str(m['vouch'])}",
            highlight=False,
        )
    reused = f" (rows reused for {', '.join(result['rows_reused'])})" if result["rows_reused"] else ""
    out.print(f"{outdir}: {result['steps']} steps in {result['seconds']:.0f} s{reused}; see {outdir / 'report.md'}", highlight=False)


planner_app = typer.Typer(help="Fine-tune the Qwen-VL planner on `restora synth` rows (TRL): sft, then grpo.", no_args_is_help=True)
train_app.add_typer(planner_app, name="planner")


def _print_held_out(outdir: Path, result: dict) -> None:
    before, after = result.get("before"), result.get("after")
    if after:
        b = before["action_accuracy"]["overall"] if before else "-"
        d = before["decision_accuracy"]["overall"] if before else "-"
        out.print(
            f"held-out action accuracy {b} -> {after['action_accuracy']['overall']}, decision accuracy {d} -> "
            f"{after['decision_accuracy']['overall']} (valid {after['valid_rate']}, best constant "
            f"{after['baselines']['constant_best']}, chance {after['baselines']['chance']}); perception F1 {after['perception']['f1']}",
            highlight=False,
        )
    out.print(f"{outdir}: {result['steps']} steps, {result['seconds_per_step']} s/step; weights {result['weights']}; see {outdir / 'report.md'}", highlight=False)


@planner_app.command("sft")
def train_planner_sft_cmd(
    data: Annotated[Path, typer.Option("--data", help="a `restora synth` folder")],
    base: Annotated[str, typer.Option("--base", help="base checkpoint folder (e.g. from `restora zoo tiny-planner DIR`)")],
    outdir: Annotated[Path, typer.Option("--out", "-o", help="run folder (a rerun with the same settings resumes)")],
    max_steps: Annotated[int, typer.Option(help="optimizer steps (-1: --epochs)")] = 300,
    epochs: Annotated[float, typer.Option(help="passes over the rows when --max-steps is -1")] = 3.0,
    full: Annotated[bool, typer.Option("--full", help="fine-tune every weight instead of LoRA")] = False,
    lora_r: Annotated[int, typer.Option(min=1, help="LoRA rank")] = 16,
    lora_alpha: Annotated[int, typer.Option(min=1, help="LoRA alpha")] = 32,
    lora_dropout: Annotated[float, typer.Option(help="LoRA dropout")] = 0.0,
    target_modules: Annotated[str, typer.Option(help="language, all-linear, a comma list of module names or a regex")] = "language",
    lr: Annotated[float, typer.Option(help="peak learning rate")] = 1e-3,
    lr_scheduler: Annotated[str, typer.Option(help="cosine, linear, constant, ...")] = "cosine",
    warmup_ratio: Annotated[float, typer.Option(help="share of steps warming up")] = 0.03,
    batch_size: Annotated[int, typer.Option(min=1, help="rows per device and step")] = 2,
    grad_accum: Annotated[int, typer.Option(min=1, help="gradient accumulation steps")] = 1,
    max_length: Annotated[int | None, typer.Option(help="truncate rows to this many tokens (default: never)")] = None,
    max_image_side: Annotated[int, typer.Option(help="cap images at this side, px (<= 1024)")] = 448,
    perception_rows: Annotated[bool, typer.Option("--perception-rows/--no-perception-rows", help="also train the perception question")] = True,
    bf16: Annotated[bool, typer.Option("--bf16", help="bfloat16 mixed precision (GPUs)")] = False,
    gradient_checkpointing: Annotated[bool, typer.Option("--gradient-checkpointing", help="save GPU memory")] = False,
    eval_every: Annotated[int, typer.Option(min=1, help="steps between validation losses and checkpoints")] = 50,
    eval_rows: Annotated[int, typer.Option(min=0, help="validation rows asked for replies before and after (0: none)")] = 64,
    device: Annotated[str, typer.Option(help="cpu or auto (every GPU accelerate launches on)")] = "auto",
    threads: Annotated[int | None, typer.Option(min=1, help="torch threads")] = None,
    seed: Annotated[int, typer.Option(help="seed")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress display")] = False,
) -> None:
    """Supervised fine-tuning of the planner (TRL SFTTrainer, LoRA by default) on a synth folder's
    action and perception rows; writes OUT/adapter (safetensors + a planner card), metrics.json with
    held-out accuracy before and after, and a report.

    Examples:
        restora train planner sft --data out/synth --base out/tiny-planner --out runs/sft --max-steps 300
    """
    from restora.cli.common import command_line
    from restora.trainer.planner.sft import PlannerSFTConfig, train_planner_sft

    with user_errors():
        cfg = PlannerSFTConfig(
            data=data, base=base, out=outdir, max_steps=max_steps, epochs=epochs, full=full, lora_r=lora_r, lora_alpha=lora_alpha,
            lora_dropout=lora_dropout, target_modules=target_modules, learning_rate=lr, lr_scheduler=lr_scheduler, warmup_ratio=warmup_ratio,
            batch_size=batch_size, grad_accum=grad_accum, max_length=max_length, max_image_side=max_image_side, perception_rows=perception_rows,
            bf16=bf16, gradient_checkpointing=gradient_checkpointing, eval_every=eval_every, eval_rows=eval_rows, device=device, threads=threads, seed=seed,
        )
    progress = progress_bar(quiet)
    with progress:
        task = progress.add_task("steps", total=max_steps if max_steps > 0 else None, last="")
        state = {"val": "-"}

        def on_log(row: dict) -> None:
            if "eval_loss" in row:
                state["val"] = f"{row['eval_loss']:.4f}"
            if "loss" in row:
                advance_to(progress, task, int(row["step"]), f"step {row['step']} loss {row['loss']:.4f} val loss {state['val']}", quiet, log_every=25)

        with user_errors():
            result = train_planner_sft(cfg, on_log=on_log, command=command_line())
    _print_held_out(outdir, result)


@planner_app.command("grpo")
def train_planner_grpo_cmd(
    data: Annotated[Path, typer.Option("--data", help="a `restora synth` folder")],
    base: Annotated[str, typer.Option("--base", help="base checkpoint folder (or an SFT run's model/ after --full)")],
    outdir: Annotated[Path, typer.Option("--out", "-o", help="run folder (a rerun with the same settings resumes)")],
    adapter: Annotated[str | None, typer.Option("--adapter", help="start from this LoRA adapter (an SFT run folder or its adapter/); default: a fresh LoRA")] = None,
    max_steps: Annotated[int, typer.Option(min=1, help="optimizer steps")] = 40,
    num_generations: Annotated[int, typer.Option(min=2, help="replies sampled per prompt")] = 4,
    batch_size: Annotated[int, typer.Option(min=2, help="completions per device and step (a multiple of --num-generations)")] = 8,
    temperature: Annotated[float, typer.Option(help="sampling temperature")] = 0.7,
    max_completion_length: Annotated[int, typer.Option(min=16, help="reply cap, tokens")] = 128,
    lr: Annotated[float, typer.Option(help="learning rate")] = 2e-4,
    beta: Annotated[float, typer.Option(help="KL coefficient (0: no reference model)")] = 0.0,
    epsilon: Annotated[float, typer.Option(help="clipping of the probability ratio")] = 0.2,
    reward_weights: Annotated[str, typer.Option(help="weights of valid, perception_f1, step_quality, penalties (summed)")] = "1,1,1,1",
    questions: Annotated[str, typer.Option(help="both, action or perception")] = "both",
    max_prompts: Annotated[int | None, typer.Option(min=1, help="at most this many training prompts")] = None,
    max_image_side: Annotated[int, typer.Option(help="cap images at this side, px (<= 1024)")] = 448,
    eval_rows: Annotated[int, typer.Option(min=0, help="validation rows replied to before and after (0: none)")] = 32,
    save_every: Annotated[int, typer.Option(min=1, help="steps between checkpoints")] = 10,
    bf16: Annotated[bool, typer.Option("--bf16", help="bfloat16 mixed precision (GPUs)")] = False,
    gradient_checkpointing: Annotated[bool, typer.Option("--gradient-checkpointing", help="save GPU memory")] = False,
    use_vllm: Annotated[bool, typer.Option("--use-vllm", help="generate with vLLM (GPUs; TRL's --vllm-mode)")] = False,
    vllm_mode: Annotated[str, typer.Option(help="colocate or server")] = "colocate",
    device: Annotated[str, typer.Option(help="cpu or auto")] = "auto",
    threads: Annotated[int | None, typer.Option(min=1, help="torch threads")] = None,
    seed: Annotated[int, typer.Option(help="seed")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress display")] = False,
) -> None:
    """Reinforcement learning of the planner (TRL GRPOTrainer): sampled replies scored by restora's
    reward functions (valid reply, perception F1, the proposed step run with the real tools and scored
    against the clean image, banned-repeat and stop penalties), each logged, summed with weights.

    Examples:
        restora train planner grpo --data out/synth --base out/tiny-planner --adapter runs/sft --out runs/grpo --max-steps 40
    """
    from restora.cli.common import command_line
    from restora.trainer.planner.grpo import PlannerGRPOConfig, train_planner_grpo

    with user_errors():
        weights = tuple(float(w) for w in reward_weights.split(","))
        cfg = PlannerGRPOConfig(
            data=data, base=base, out=outdir, adapter=adapter, max_steps=max_steps, num_generations=num_generations, batch_size=batch_size,
            temperature=temperature, max_completion_length=max_completion_length, learning_rate=lr, beta=beta, epsilon=epsilon,
            reward_weights=weights, questions=questions, max_prompts=max_prompts, max_image_side=max_image_side, eval_rows=eval_rows,
            save_every=save_every, bf16=bf16, gradient_checkpointing=gradient_checkpointing, use_vllm=use_vllm, vllm_mode=vllm_mode,
            device=device, threads=threads, seed=seed,
        )
    progress = progress_bar(quiet)
    with progress:
        task = progress.add_task("steps", total=max_steps, last="")

        def on_log(row: dict) -> None:
            if "reward" in row:
                advance_to(progress, task, int(row["step"]), f"step {row['step']} reward {row['reward']:.3f}", quiet, log_every=5)

        with user_errors():
            result = train_planner_grpo(cfg, on_log=on_log, command=command_line())
    b = (result.get("before") or {}).get("reward", {}).get("reward", "-")
    a = (result.get("after") or {}).get("reward", {}).get("reward", "-")
    out.print(
        f"{outdir}: mean training reward {result['train_reward_first']} (first steps) -> {result['train_reward_last']} (last steps); "
        f"held-out greedy reward {b} -> {a}; {result['seconds_per_step']} s/step; weights {result['weights']}; see {outdir / 'report.md'}",
        highlight=False,
    )


from restora.cli import eval as _eval  # noqa: E402, F401 - registers `restora eval` (kept out of the shared cli/__init__.py)


# -- restora train dit: the DiT restorer's LoRA trainers (restora.trainer.dit_sft / dit_rl) --------
dit_app = typer.Typer(help="The DiT restorer: LoRA SFT (transfer, then real pairs mixed in) and difficulty-adaptive RL.", no_args_is_help=True)
train_app.add_typer(dit_app, name="dit")


@dit_app.command("sft")
def train_dit_sft_cmd(
    zoo: Annotated[Path, typer.Option("--zoo", help="zoo folder: the base card is looked up with it first; the adapter card is written into it")],
    base: Annotated[str, typer.Option("--base", help="diffusers card (FLUX.1 Kontext pipeline) to adapt")],
    out_card: Annotated[str, typer.Option("--out-card", help="id of the lora card to write")],
    clean: Annotated[list[Path] | None, typer.Option("--clean", help="folders of clean photos (default: the shared data's clean/cbsd68 and clean/live1)")] = None,
    real: Annotated[list[Path] | None, typer.Option("--real", help="real_gt sets, or folders of them (stage sft; default: the shared data's real_gt)")] = None,
    stage: Annotated[str, typer.Option("--stage", help="transfer (synthetic pairs) or sft (real pairs progressively mixed in)")] = "transfer",
    adapter: Annotated[str | None, typer.Option("--adapter", help="lora card to continue from (stage sft: the transfer card)")] = None,
    outdir: Annotated[Path | None, typer.Option("--out", "-o", help="run folder (default runs/dit/<out-card>; resumable)")] = None,
    max_steps: Annotated[int, typer.Option("--max-steps", min=1, help="optimizer steps in all")] = 1000,
    task: Annotated[list[str] | None, typer.Option("--task", help="tasks to train (repeat; default every task dit_restore serves)")] = None,
    size: Annotated[int | None, typer.Option(help="crop side in px, multiple of 16 (default the card's native size)")] = None,
    pool: Annotated[int, typer.Option(min=1, help="synthetic training pairs (latents cached)")] = 512,
    batch_size: Annotated[int, typer.Option(min=1, help="pairs per step")] = 4,
    lr: Annotated[float, typer.Option(help="peak learning rate")] = 1e-4,
    rank: Annotated[int, typer.Option(min=1, help="LoRA rank")] = 16,
    val_samples: Annotated[int, typer.Option(min=1, help="held-out pairs validated")] = 16,
    eval_every: Annotated[int, typer.Option(min=1, help="steps between validations (images written)")] = 100,
    checkpoint_every: Annotated[int, typer.Option(min=1, help="steps between checkpoints")] = 100,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N]")] = "auto",
    mixed_precision: Annotated[str, typer.Option(help="no, bf16 or fp16 (accelerate)")] = "no",
    gradient_checkpointing: Annotated[bool, typer.Option(help="recompute activations in the backward pass")] = False,
    micro_batch: Annotated[int | None, typer.Option(min=1, help="samples per forward/backward, gradients accumulated (GPU memory)")] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="torch threads")] = None,
    seed: Annotated[int, typer.Option(help="seed")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress display")] = False,
) -> None:
    """LoRA SFT of the DiT restorer with the flow-matching objective on (degraded, clean,
    instruction) triples; writes the adapter as a lora card into ZOO, metrics.json and a report."""
    from restora.trainer.dit_sft import DiTSFTConfig, train_dit_sft

    with user_errors():
        kwargs: dict = {}
        if clean:
            kwargs["clean"] = clean
        if real:
            kwargs["real"] = real
        cfg = DiTSFTConfig(
            zoo=zoo, base=base, out_card=out_card, out=outdir or Path("runs") / "dit" / out_card, stage=stage, init_adapter=adapter,
            max_steps=max_steps, tasks=list(task or []), size=size, pool=pool, batch_size=batch_size, lr=lr, rank=rank,
            val_samples=val_samples, eval_every=eval_every, checkpoint_every=checkpoint_every, device=device,
            mixed_precision=mixed_precision, gradient_checkpointing=gradient_checkpointing, micro_batch=micro_batch, threads=threads, seed=seed,
            **kwargs,
        )
    progress = progress_bar(quiet)
    with progress:
        bar = progress.add_task("steps", total=max_steps, last="")

        def on_step(step: int, row: dict) -> None:
            advance_to(progress, bar, step, f"step {step} loss {row['loss']:.4f} real share {row['real_share']:.2f}", quiet, log_every=50)

        with user_errors():
            result = train_dit_sft(cfg, on_step=on_step)
    b, a = result["val"]["before"] or {}, result["val"]["after"]
    out.print(
        f"{cfg.out}: loss {result['loss']['first']} -> {result['loss']['last']}, held-out PSNR {b.get('psnr')} -> {a['psnr']} dB; "
        f"card {out_card} written to {zoo}; see {cfg.out / 'report.md'}",
        highlight=False,
    )


@dit_app.command("rl")
def train_dit_rl_cmd(
    zoo: Annotated[Path, typer.Option("--zoo", help="zoo folder with the base and adapter cards; the new card is written into it")],
    base: Annotated[str, typer.Option("--base", help="diffusers card the adapter belongs to")],
    adapter: Annotated[str, typer.Option("--adapter", help="the SFT lora card to start from")],
    out_card: Annotated[str, typer.Option("--out-card", help="id of the lora card to write (SFT + RL as one adapter)")],
    clean: Annotated[list[Path] | None, typer.Option("--clean", help="folders of clean photos (default: the shared data's clean/cbsd68 and clean/live1)")] = None,
    outdir: Annotated[Path | None, typer.Option("--out", "-o", help="run folder (default runs/dit/<out-card>; resumable)")] = None,
    max_steps: Annotated[int, typer.Option("--max-steps", min=1, help="RL updates in all")] = 300,
    hard_fraction: Annotated[float, typer.Option("--hard-fraction", help="share of the pool kept: the SFT model's hardest (IRPO 0.3)")] = 0.3,
    group_size: Annotated[int, typer.Option("--group-size", min=2, help="samples per input image (one group)")] = 4,
    batch_size: Annotated[int, typer.Option(min=1, help="input images per step")] = 2,
    lr: Annotated[float, typer.Option(help="learning rate of the RL LoRA")] = 5e-5,
    rank: Annotated[int, typer.Option(min=1, help="rank of the RL LoRA")] = 4,
    kl_weight: Annotated[float, typer.Option(help="weight of the KL to the SFT model")] = 0.1,
    nr_metric: Annotated[list[str] | None, typer.Option("--nr-metric", help="no-reference metrics in the reward (repeat; default brisque, piqe)")] = None,
    nr_weight: Annotated[float, typer.Option(help="weight of the no-reference term")] = 1.0,
    fidelity_weight: Annotated[float, typer.Option(help="weight of the fidelity term (SSIM)")] = 1.0,
    task: Annotated[list[str] | None, typer.Option("--task", help="tasks (repeat; default the adapter's)")] = None,
    size: Annotated[int | None, typer.Option(help="crop side in px (default the card's native size)")] = None,
    pool: Annotated[int, typer.Option(min=2, help="synthetic pairs scored by the SFT model")] = 256,
    val_pool: Annotated[int, typer.Option(min=2, help="held-out pairs scored by the SFT model")] = 64,
    eval_every: Annotated[int, typer.Option(min=1, help="steps between held-out evaluations")] = 50,
    checkpoint_every: Annotated[int, typer.Option(min=1, help="steps between checkpoints")] = 50,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N]")] = "auto",
    mixed_precision: Annotated[str, typer.Option(help="no, bf16 or fp16 (accelerate)")] = "no",
    gradient_checkpointing: Annotated[bool, typer.Option(help="recompute activations in the backward pass")] = False,
    micro_batch: Annotated[int | None, typer.Option(min=1, help="samples per forward/backward, gradients accumulated (GPU memory)")] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="torch threads")] = None,
    seed: Annotated[int, typer.Option(help="seed")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress display")] = False,
) -> None:
    """Difficulty-adaptive RL (DiffusionNFT, per-sample SFT/RL blend, KL to the SFT model) on the
    SFT model's hardest samples, rewarded by no-reference IQA + SSIM; writes a lora card into ZOO."""
    from restora.trainer.dit_rl import DiTRLConfig, train_dit_rl

    with user_errors():
        kwargs: dict = {"clean": clean} if clean else {}
        if nr_metric:
            kwargs["nr_metrics"] = list(nr_metric)
        cfg = DiTRLConfig(
            zoo=zoo, base=base, adapter=adapter, out_card=out_card, out=outdir or Path("runs") / "dit" / out_card, max_steps=max_steps,
            hard_fraction=hard_fraction, group_size=group_size, batch_size=batch_size, lr=lr, rank=rank, kl_weight=kl_weight,
            nr_weight=nr_weight, fidelity_weight=fidelity_weight, tasks=list(task or []), size=size, pool=pool, val_pool=val_pool,
            eval_every=eval_every, checkpoint_every=checkpoint_every, device=device, mixed_precision=mixed_precision,
            gradient_checkpointing=gradient_checkpointing, micro_batch=micro_batch, threads=threads, seed=seed, **kwargs,
        )
    progress = progress_bar(quiet)
    with progress:
        bar = progress.add_task("steps", total=max_steps, last="")

        def on_step(step: int, row: dict) -> None:
            advance_to(progress, bar, step, f"step {step} reward {row['reward']:.4f} loss {row['loss']:.4f}", quiet, log_every=20)

        with user_errors():
            result = train_dit_rl(cfg, on_step=on_step)
    b, a = result["held_out"]["before"], result["held_out"]["after"]
    out.print(
        f"{cfg.out}: held-out hard mean reward {b['reward']} -> {a['reward']}, PSNR (not rewarded) {b['psnr']} -> {a['psnr']} dB; "
        f"card {out_card} written to {zoo}; see {cfg.out / 'report.md'}",
        highlight=False,
    )
