"""`restora train planner sft` on the tiny random-weight Qwen2.5-VL and a real `restora synth` set.

Real things made small: the tiny planner (`restora zoo tiny-planner`), a synth folder made here
from six training-pool photos (48 px crops, ~40 trajectories), TRL's SFTTrainer with peft LoRA.
The held-out rows are the synth split's validation photos.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("trl")
pytest.importorskip("peft")



def _cfg(synth: Path, base: Path, out: Path, **kw):
    from restora.trainer.planner.sft import PlannerSFTConfig

    args = {"max_steps": 60, "batch_size": 2, "learning_rate": 1e-3, "eval_every": 30, "eval_rows": 16, "threads": 1, "device": "cpu", "max_new_tokens": 128}
    return PlannerSFTConfig(data=synth, base=str(base), out=out, **{**args, **kw})


@pytest.fixture(scope="module")
def lora_run(synth_small, tiny_planner, tmp_path_factory) -> Path:
    """A short LoRA run (the default), validated and checkpointed every 6 steps."""
    from restora.trainer.planner.sft import train_planner_sft

    out = tmp_path_factory.mktemp("runs") / "lora"
    result = train_planner_sft(_cfg(synth_small, tiny_planner, out, max_steps=12, eval_every=6, eval_rows=0, learning_rate=5e-3))
    assert result["steps"] == 12
    return out


@pytest.mark.slow
def test_sft_lowers_the_held_out_loss_and_raises_answer_token_accuracy(lora_run):
    """The direction on a small budget. (Held-out greedy decisions need a few hundred steps on the
    tiny planner: the README gives those figures, from `restora train planner sft`.)"""
    metrics = json.loads((lora_run / "metrics.json").read_text())
    losses = [v for _, v in metrics["eval_loss"]]
    accuracy = [v for _, v in metrics["eval_token_accuracy"]]
    assert [s for s, _ in metrics["eval_loss"]] == [0, 6, 12]  # before training, then every 6 steps
    assert losses[-1] < 0.8 * losses[0], metrics["eval_loss"]
    assert accuracy[-1] > accuracy[0] + 0.1, metrics["eval_token_accuracy"]
    assert 0 < metrics["seconds_per_step"] < 10


@pytest.mark.slow
def test_sft_run_folder_adapter_card_and_report(lora_run):
    from restora.model_zoo.planner import adapter_base, planner_adapter

    adapter = lora_run / "adapter"
    assert (adapter / "adapter_model.safetensors").is_file() and (adapter / "adapter_config.json").is_file()
    assert not [p for p in lora_run.rglob("*") if p.suffix in {".bin", ".pkl"} and "checkpoints" not in p.parts]
    card = json.loads((adapter / "card.json").read_text())
    assert card["kind"] == "planner" and set(card["sha256"]) == {"adapter_config.json", "adapter_model.safetensors"}
    assert planner_adapter(lora_run) == adapter and adapter_base(lora_run) == card["base"]
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert "language_model" in str(config["target_modules"])  # LoRA on the language model only (what vLLM serves)
    metrics = json.loads((lora_run / "metrics.json").read_text())
    assert metrics["steps"] == 12 and metrics["train_loss"] and metrics["eval_loss"]
    assert (lora_run / "curves.png").is_file() and (lora_run / "report.md").is_file()


@pytest.mark.slow
def test_a_planner_card_resolves_from_the_zoo_and_a_changed_file_is_refused(lora_run, tmp_path, monkeypatch):
    from restora.errors import ChecksumError
    from restora.model_zoo import clear_cache, resolve_card
    from restora.model_zoo.planner import planner_adapter

    adapter = lora_run / "adapter"
    card_id = json.loads((adapter / "card.json").read_text())["id"]
    zoo = tmp_path / "zoo"
    shutil.copytree(adapter, zoo / card_id)
    monkeypatch.setenv("RESTORA_ZOO", str(zoo))
    clear_cache()
    resolved = resolve_card(card_id)
    assert resolved.card.kind == "planner" and resolved.folder == zoo / card_id
    assert planner_adapter(card_id) == zoo / card_id
    with open(zoo / card_id / "adapter_model.safetensors", "r+b") as f:
        f.seek(-1, 2)
        last = f.read(1)
        f.seek(-1, 2)
        f.write(bytes([last[0] ^ 1]))
    clear_cache()
    with pytest.raises(ChecksumError):
        planner_adapter(zoo / card_id)


@pytest.mark.slow
def test_sft_resumes_from_its_last_checkpoint_and_refuses_other_settings(lora_run, synth_small, tiny_planner, tmp_path):
    from restora.trainer.planner.sft import train_planner_sft

    out = tmp_path / "run"
    shutil.copytree(lora_run, out)
    shutil.rmtree(out / "adapter")  # as if killed after its last checkpoint
    (out / "metrics.json").unlink()
    again = train_planner_sft(_cfg(synth_small, tiny_planner, out, max_steps=14, eval_every=6, eval_rows=0, learning_rate=5e-3))
    assert again["steps"] == 14 and again["resumed_from"].endswith("checkpoint-12")
    steps = [json.loads(line)["step"] for line in (out / "history.jsonl").read_text().splitlines()]
    assert 13 in steps and 14 in steps and (out / "adapter" / "card.json").is_file()
    with pytest.raises(ValueError, match="other settings.*lora_r"):
        train_planner_sft(_cfg(synth_small, tiny_planner, out, max_steps=14, lora_r=8, eval_rows=0, learning_rate=5e-3))


def test_config_checks_say_what_to_do():
    from restora.trainer.planner.sft import PlannerSFTConfig

    with pytest.raises(ValueError, match="max_image_side"):
        PlannerSFTConfig(data=Path("d"), base="b", out=Path("o"), max_image_side=4096)
    with pytest.raises(ValueError, match="max_steps"):
        PlannerSFTConfig(data=Path("d"), base="b", out=Path("o"), max_steps=0)
    from restora.trainer.planner.common import LANGUAGE_MODULES, target_modules

    assert target_modules("language") == LANGUAGE_MODULES and target_modules("q_proj,v_proj") == ["q_proj", "v_proj"]


def test_rows_carry_one_capped_image_and_the_live_prompt(synth_small):
    from restora.planners.hf import cap_image
    from restora.planners.prompt import SYSTEM_HEADER
    from restora.trainer.planner.data import action_rows, load_image, perception_rows

    rows = action_rows(synth_small, "train")
    assert rows and all(r["prompt"][0]["content"][0]["text"].startswith(SYSTEM_HEADER) for r in rows)
    percs = perception_rows(synth_small, "train")
    assert percs and len({r["image"] for r in percs}) == len(percs)
    found = json.loads(percs[0]["target"])["findings"]
    assert {k for k, v in found.items() if v["present"]} == set(percs[0]["labels"])
    assert max(load_image(synth_small, rows[0]["image"], 32).size) == 32
    import numpy as np

    assert cap_image(np.zeros((3000, 1200, 3), np.float32)).size == (179, 448)
    with pytest.raises(ValueError, match="capped at 1024"):
        cap_image(np.zeros((64, 64, 3), np.float32), 2048)


@pytest.mark.slow
def test_eval_planner_in_process_writes_the_figures(lora_run, synth_small, tiny_planner, tmp_path):
    from typer.testing import CliRunner

    from restora.cli import app

    out = tmp_path / "eval"
    args = ["eval", "planner", "--data", str(synth_small), "--planner", "hf", "--planner-model", str(tiny_planner),
            "--planner-adapter", str(lora_run), "--limit", "3", "--out", str(out), "-q"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["rows"] == 3 and m["perception"]["rows"] == 3 and m["backend"] == "hf"
    assert {"valid_rate", "action_accuracy", "task_accuracy", "decision_accuracy", "baselines", "perception"} <= set(m)
    assert "overall" in m["action_accuracy"] and 0.0 <= m["baselines"]["chance"] < m["baselines"]["constant_best"] <= 1.0
    preds = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(preds) == 6 and all("reply" in p and "valid" in p for p in preds)
    bad = CliRunner().invoke(app, [*args[:6], str(tmp_path / "no-model"), *args[7:]])
    assert bad.exit_code != 0 and "no-model" in bad.output
    held = CliRunner().invoke(app, [*args[:-3], "--out", str(tmp_path / "held"), "--decoding", "constrained", "-q"])
    assert held.exit_code == 0, held.output  # xgrammar holds every reply to the schema (dev extra installs it)
    assert json.loads((tmp_path / "held" / "metrics.json").read_text())["valid_rate"] == 1.0
    odd = CliRunner().invoke(app, [*args, "--decoding", "greedy"])
    assert odd.exit_code == 2 and "unknown --planner-decoding" in odd.output
