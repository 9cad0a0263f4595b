"""``restora eval``: held-out figures of a trained model (``restora eval planner`` first).

Examples:
    restora eval planner --data out/synth --planner hf --planner-model out/tiny-planner --planner-adapter runs/sft --out out/eval
    restora eval planner --data out/synth --planner vlm --planner-url http://127.0.0.1:8000/v1 --planner-model restora --out out/eval-vllm
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from restora.cli.common import PlannerAdapter, PlannerKey, PlannerModel, PlannerURL, advance_to, app, out, progress_bar, user_errors

eval_app = typer.Typer(help="Held-out evaluation of what restora trains.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")


@eval_app.command("planner")
def eval_planner(
    data: Annotated[Path, typer.Option("--data", help="a `restora synth` folder")],
    outdir: Annotated[Path, typer.Option("--out", "-o", help="folder for metrics.json and predictions.jsonl")],
    planner: Annotated[str, typer.Option(help="hf (in-process transformers) or vlm (an OpenAI-compatible server, e.g. vLLM)")] = "hf",
    planner_model: PlannerModel = None,
    planner_adapter: PlannerAdapter = None,
    planner_url: PlannerURL = None,
    planner_key: PlannerKey = None,
    split: Annotated[str, typer.Option(help="train or val")] = "val",
    limit: Annotated[int | None, typer.Option(min=1, help="at most this many action rows (and as many perception rows), spread over the split")] = None,
    max_tokens: Annotated[int, typer.Option(min=8, help="reply length cap (the live planner asks for at most 512)")] = 512,
    timeout: Annotated[float, typer.Option(min=1, help="vlm: seconds per request")] = 120.0,
    decoding: Annotated[str, typer.Option(help="hf: free (the raw model, what valid_rate measures; default), constrained (replies held to the JSON schema by xgrammar) or auto")] = "free",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress display")] = False,
) -> None:
    """Ask a planner every held-out row of a synth folder the way the live planner asks; writes
    OUT/metrics.json (valid_rate, action_accuracy overall and per scenario, task accuracy, perception
    F1, baselines) and OUT/predictions.jsonl."""
    from restora.config import env
    from restora.trainer.planner.evaluate import evaluate_backend

    with user_errors():
        if split not in ("train", "val"):
            raise ValueError(f"--split must be train or val, got {split!r}")
        if planner == "hf":
            if not planner_model:
                raise ValueError("--planner hf needs --planner-model (the base checkpoint folder)")
            from restora.planners.factory import PlannerSpec
            from restora.planners.hf import HFBackend, load_planner

            spec = PlannerSpec("hf", model=planner_model, adapter=planner_adapter, decoding=decoding)
            spec.check()  # an unknown decoding, or constrained without xgrammar: an error before any row
            load_planner(planner_model, planner_adapter)  # fail here, with the reason, not per row
            backend = HFBackend(planner_model, adapter=planner_adapter, max_tokens=max_tokens, constrained=spec.constrained)
        elif planner == "vlm":
            if decoding != "free":
                raise ValueError("--decoding is for --planner hf; a server constrains replies itself (vLLM's structured outputs)")
            if not planner_url or not planner_model:
                raise ValueError("--planner vlm needs --planner-url and --planner-model")
            if planner_adapter:
                raise ValueError("--planner-adapter is for --planner hf; a server loads adapters itself (vllm --lora-modules NAME=PATH) and is asked for NAME")
            from restora.planners.vlm import OpenAIBackend

            backend = OpenAIBackend(planner_url, model=planner_model, api_key=planner_key or env().planner_key or "EMPTY", timeout=timeout, max_tokens=max_tokens)
        else:
            raise ValueError(f"unknown planner {planner!r} (hf or vlm)")
    progress = progress_bar(quiet)
    with progress:
        task = progress.add_task("rows", total=None, last="")

        def on_row(done: int, total: int) -> None:
            progress.update(task, total=total)
            advance_to(progress, task, done, f"{done}/{total} rows", quiet, log_every=20)

        with user_errors():
            m = evaluate_backend(backend, data, split, limit=limit, out=outdir, on_row=on_row)
    acc = m["action_accuracy"]
    per = ", ".join(f"{k} {v}" for k, v in acc.items() if k != "overall")
    out.print(
        f"{m['rows']} action rows: valid {m['valid_rate']}, accuracy {acc['overall']} ({per}); best constant answer "
        f"{m['baselines']['constant_best']}, chance {m['baselines']['chance']}; perception F1 {m['perception']['f1']} "
        f"(valid {m['perception']['valid_rate']}); {m['seconds_per_question']} s/question; see {outdir / 'metrics.json'}",
        highlight=False,
    )
