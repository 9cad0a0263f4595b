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
    max_false_alarm: Annotated[float, typer.Option(help="calibration: at most this share of validation samples without a degradation may be flagged with it (on a finished run: recalibrate only)")] = 0.05,
    threads: Annotated[int | None, typer.Option(min=1, help="torch threads for training (default: torch's; 1 leaves a core to the data worker and to other jobs)")] = None,
    seed: Annotated[int, typer.Option(help="seed of the split, samples and initial weights")] = 0,
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
            eval_every=eval_every, checkpoint_every=checkpoint_every, workers=workers, camera_share=camera_share, max_false_alarm=max_false_alarm, threads=threads, seed=seed, **kwargs,
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
    threshold_rule: Annotated[str, typer.Option(help="how thresholds are set on the validation steps: utility (most PSNR gained on average) or false_reject")] = "utility",
    max_false_reject: Annotated[float, typer.Option(help="share of helpful validation steps the threshold may reject (false_reject rule)")] = 0.05,
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
        kwargs = {} if not clean else {"clean": clean}
        cfg = GuardTrainConfig(
            out=outdir, samples=samples, crop=crop, context_share=context_share, threshold_rule=threshold_rule, max_false_reject=max_false_reject, workers=workers, seed=seed, **kwargs
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
            f"({m['val_steps']} validation steps)",
            highlight=False,
        )
    reused = f" (rows reused for {', '.join(result['rows_reused'])})" if result["rows_reused"] else ""
    out.print(f"{outdir}: {result['steps']} steps in {result['seconds']:.0f} s{reused}; see {outdir / 'report.md'}", highlight=False)
