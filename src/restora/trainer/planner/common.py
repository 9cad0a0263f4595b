"""What the planner trainers share: LoRA settings, the run folder (config stamp, resume, adapter,
card, metrics), and the report with its curves.

A run folder::

    config.json                the settings that must not change on resume
    checkpoints/checkpoint-N/  TRL/transformers checkpoints (adapter, optimizer, scheduler, RNG): resume from the last
    adapter/                   the trained LoRA adapter (peft safetensors) + card.json (kind planner, sha256 pinned)
    model/                     with --full: the whole fine-tuned checkpoint instead (safetensors + processor)
    history.jsonl              every logged step (loss, lr, rewards, ...)
    metrics.json, report.md, curves.png
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from restora.imageio import write_text_atomic

LANGUAGE_MODULES = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
"""LoRA targets by default: the language model's attention and MLP projections (the vision tower's
blocks have gate/up/down projections too; vLLM serves LoRA on the language model)."""


def is_main_process() -> bool:
    """Whether this process writes the run folder (accelerate's main process; True on one device)."""
    from accelerate import PartialState

    return bool(PartialState().is_main_process)


def step_logger(out: Path, on_log: Callable[[dict[str, Any]], None] | None = None) -> Any:
    """A ``TrainerCallback`` that appends every logged row to ``out/history.jsonl`` (and hands it to
    ``on_log``) and times the optimizer steps; ``.seconds_per_step()`` is their mean."""
    import time

    from transformers import TrainerCallback

    class StepLog(TrainerCallback):
        def __init__(self) -> None:
            self.seconds: list[float] = []
            self.t0 = 0.0

        def on_step_begin(self, args, state, control, **kwargs):
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.seconds.append(time.perf_counter() - self.t0)

        def on_log(self, args, state, control, logs=None, **kwargs):
            row = {"step": state.global_step, **{k: v for k, v in (logs or {}).items() if isinstance(v, (int, float))}}
            with open(out / "history.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
            if on_log is not None:
                on_log(row)

        def seconds_per_step(self) -> float:
            return round(sum(self.seconds) / max(1, len(self.seconds)), 3)

    return StepLog()


def target_modules(spec: str) -> str | list[str]:
    """peft ``target_modules`` from a config value: ``language`` (default), ``all-linear``, a
    comma-separated list of module names, or a regular expression."""
    if spec == "language":
        return LANGUAGE_MODULES
    if spec == "all-linear":
        return "all-linear"
    if re.fullmatch(r"[A-Za-z0-9_]+(,[A-Za-z0-9_]+)*", spec):
        return spec.split(",")
    re.compile(spec)  # a bad pattern fails here, with the regex error
    return spec


def lora_config(r: int, alpha: int, dropout: float, modules: str) -> Any:
    from peft import LoraConfig

    return LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=target_modules(modules), task_type="CAUSAL_LM")


def load_base(base: str, dtype: str = "float32") -> tuple[Any, Any]:
    """The base checkpoint (fresh, trainable) and its processor (left padding: see hf.load_processor)."""
    import torch
    from transformers import AutoModelForImageTextToText

    from restora.planners.hf import PlannerLoadError, load_processor

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not Path(base).is_dir():
        raise PlannerLoadError(f"--base {base}: not a local checkpoint folder (e.g. `restora zoo tiny-planner DIR` writes one)")
    model = AutoModelForImageTextToText.from_pretrained(str(base), dtype=getattr(torch, dtype))
    return model, load_processor(base)


@contextlib.contextmanager
def completion_only_lm_head() -> Iterator[None]:
    """Make TRL's fused LM head score the completion positions only on a CPU too.

    TRL 1.16's ``add_fused_lm_head`` (which GRPOTrainer installs) projects only the positions
    with a label on Triton devices, but every position elsewhere (so that tile shapes do not change
    on accelerators that recompile). On a CPU nothing recompiles, and a planner prompt is ~1.7k
    tokens before a ~50-token reply: scoring all of them made one GRPO step of the tiny planner
    ~48 s of LM head (measured), against ~1 s. Inside this context the fused head compacts the
    positions on every device; the chunked kernel still picks its own CPU path.
    """
    import trl.trainer.utils as trl_utils

    if not hasattr(trl_utils, "_use_triton"):  # a TRL other than the pinned 1.16: this would silently do nothing
        raise RuntimeError("trl.trainer.utils has no _use_triton: restora's planner trainers are verified with trl 1.16 (pip install 'trl>=1.16,<1.17')")
    original = trl_utils._use_triton
    trl_utils._use_triton = lambda device: True  # only `compact` reads this name in trl.trainer.utils
    try:
        yield
    finally:
        trl_utils._use_triton = original


def check_resume(out: Path, identity: dict[str, Any]) -> None:
    """Stamp ``out/config.json`` with ``identity``, or refuse a folder stamped with other settings."""
    out.mkdir(parents=True, exist_ok=True)
    stamp = out / "config.json"
    if stamp.is_file():
        saved = json.loads(stamp.read_text())
        if saved != identity:
            diff = sorted(k for k in set(saved) | set(identity) if saved.get(k) != identity.get(k))
            raise ValueError(f"{out} holds a run with other settings ({', '.join(diff)}); use another --out or the same settings")
    else:
        write_text_atomic(stamp, json.dumps(identity, indent=1) + "\n")


def last_checkpoint(out: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    folder = out / "checkpoints"
    return get_last_checkpoint(str(folder)) if folder.is_dir() else None


def save_adapter(trainer: Any, out: Path, base: str, full: bool, processor: Any, description: str, source: str) -> Path:
    """Write the trained weights: ``out/adapter`` (LoRA + its planner card) or ``out/model`` (--full)."""
    import shutil
    import tempfile

    target = out / ("model" if full else "adapter")
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=out))
    try:
        trainer.model.save_pretrained(str(tmp), safe_serialization=True)
        if full:
            processor.save_pretrained(str(tmp))
        else:
            from restora.model_zoo.planner import write_planner_card

            card_id = "planner-" + re.sub(r"[^a-z0-9._-]+", "-", out.resolve().name.lower()).strip("-._")
            write_planner_card(tmp, card_id, str(Path(base).resolve()), description=description, source=source)
        pickles = [p.name for p in tmp.rglob("*") if p.suffix in {".bin", ".pt", ".pth", ".pkl"}]
        if pickles:
            raise RuntimeError(f"refusing to keep pickle files in {target}: {pickles}")
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def history_rows(log_history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """transformers' ``state.log_history`` as plain rows (numbers only)."""
    out = []
    for row in log_history:
        out.append({k: (float(v) if isinstance(v, (int, float)) and k != "step" else v) for k, v in row.items() if isinstance(v, (int, float, str))})
    return out


def write_report(out: Path, title: str, lines: list[str], series: dict[str, dict[str, list[tuple[float, float]]]]) -> None:
    """``curves.png`` (one panel per entry of ``series``) and ``report.md``."""
    import numpy as np

    from restora.imageio import save_image
    from restora.trainer.report import plot_curves

    panels = [plot_curves(s, name) for name, s in series.items() if any(s.values())]
    if panels:
        save_image(out / "curves.png", np.concatenate(panels, axis=0))
    body = [f"# {title}", "", *lines, ""]
    if panels:
        body += ["![curves](curves.png)", ""]
    write_text_atomic(out / "report.md", "\n".join(body))


def accuracy_table(before: dict[str, Any] | None, after: dict[str, Any]) -> list[str]:
    """Markdown rows: the held-out figures before and after training."""

    def g(m: dict[str, Any] | None, *path: str) -> str:
        v: Any = m
        for k in path:
            v = None if not isinstance(v, dict) else v.get(k)
        return "-" if v is None else f"{v}"

    keys = [("valid action replies", ("valid_rate",)), ("action accuracy", ("action_accuracy", "overall"))]
    keys += [(f"  {s}", ("action_accuracy", s)) for s in ("plan", "adjust", "rollback", "avoid_repeat", "stop")]
    keys += [("task accuracy", ("task_accuracy",)), ("decision accuracy (start of reply)", ("decision_accuracy", "overall")), ("perception valid", ("perception", "valid_rate")), ("perception F1", ("perception", "f1"))]
    lines = ["| held-out rows | before | after |", "|---|---:|---:|"]
    lines += [f"| {name} | {g(before, *p)} | {g(after, *p)} |" for name, p in keys]
    lines += [
        f"| baseline: chance | {g(after, 'baselines', 'chance')} | |",
        f"| baseline: best constant answer ({g(after, 'baselines', 'constant_best_answer')}) | {g(after, 'baselines', 'constant_best')} | |",
    ]
    return lines
