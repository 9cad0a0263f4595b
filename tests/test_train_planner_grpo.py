"""`restora train planner grpo`: the reward functions on real synth rows with the real tools, the
TRL #5785 padding trap, the image cap, and a short GRPO run of the tiny planner.

The synth folder and the tiny planner are made here, as in test_train_planner.py.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("trl")
pytest.importorskip("peft")



def _reply(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def _cols(rows: list[dict]) -> dict:
    return {
        "question": [r["question"] for r in rows],
        "labels": [json.dumps(r.get("labels") or {}) for r in rows],
        "current": [r["image"] for r in rows],
        "clean": [r.get("clean", "") for r in rows],
        "trace": [r.get("trace", "") for r in rows],
        "prompts": [r["prompt"] for r in rows],
        "target": [r["target"] for r in rows],
    }


def test_rewards_run_the_real_tools_and_judge_each_reply(synth_small):
    from restora.trainer.planner.data import grpo_rows
    from restora.trainer.planner.rewards import Rewards

    rows = grpo_rows(synth_small, "train")
    rewards = Rewards(synth_small)
    plan = next(r for r in rows if r["question"] == "action" and r["scenario"] == "plan" and r["teacher"]["best_score"] > r["teacher"]["input_score"] + 0.01)
    target = plan["target"]
    # the teacher's step, executed on the image, beats stopping; garbage is invalid and scores 0
    replies = [_reply(target), _reply('{"kind":"stop"}'), _reply("not json")]
    cols = _cols([plan] * 3)
    assert rewards.valid(replies, **cols) == [1.0, 1.0, 0.0]
    quality = rewards.step_quality(replies, **cols)
    assert quality[0] > quality[1] == 0.0 and quality[2] == 0.0 and rewards.tool_runs == 1
    assert rewards.perception_f1(replies, **cols) == [None, None, None]  # not a perception row
    assert rewards.penalties(replies, **cols) == [0.0, -0.5, 0.0]  # stopping while the teacher had a step to take
    # a banned repeat: the step the history rolled back, proposed again
    avoid = next(r for r in rows if r["scenario"] == "avoid_repeat")
    from restora.trainer.planner.data import state_of

    banned = next(h for h in state_of(avoid["prompt"])["history"] if h["decision"] == "rollback")
    again = json.dumps({"kind": "tool", "tool": banned["tool"], "params": banned["params"]})
    assert rewards.penalties([_reply(again)], **_cols([avoid])) == [-1.0]
    # perception rows: F1 of what is said present against the true labels
    perc = next(r for r in rows if r["question"] == "perception" and r["labels"])
    none = json.dumps({"findings": {k: {"present": False, "severity": 0.0} for k in json.loads(perc["target"])["findings"]}})
    got = rewards.perception_f1([_reply(perc["target"]), _reply(none)], **_cols([perc, perc]))
    assert got == [1.0, 0.0]
    assert rewards.step_quality([_reply(perc["target"])], **_cols([perc])) == [None]


def test_grpo_processor_pads_left_so_image_token_types_line_up_trl_5785(tiny_planner):
    """TRL pads prompt ids left, then asks the processor for mm_token_type_ids padded on its own side."""
    from trl.trainer.utils import pad

    import torch
    from PIL import Image

    from restora.planners.hf import load_processor
    from restora.trainer.planner.grpo import check_padding

    image = Image.new("RGB", (56, 56), (90, 120, 150))
    prompts = [
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "short"}]}],
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "a much longer prompt " * 12}]}],
    ]
    image_pad = None
    for side, aligned in (("left", True), ("right", False)):
        processor = load_processor(tiny_planner, padding_side=side)
        image_pad = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
        texts = [processor.apply_chat_template(p, add_generation_prompt=True, tokenize=False) for p in prompts]
        ids = [processor(text=[t], images=[image])["input_ids"][0] for t in texts]
        prompt_ids = pad([torch.tensor(i) for i in ids], padding_value=processor.tokenizer.pad_token_id, padding_side="left")  # as GRPOTrainer does
        types = processor(text=texts, images=[image, image], padding=True, return_tensors="pt")["mm_token_type_ids"]  # as GRPOTrainer does
        assert ((types == 1) == (prompt_ids == image_pad)).all().item() is aligned, side
        if side == "left":
            check_padding(processor)
        else:
            with pytest.raises(ValueError, match="5785"):
                check_padding(processor)


def test_the_cpu_lm_head_hook_targets_the_pinned_trl():
    """GRPO on a CPU relies on TRL 1.16's fused LM head reading ``_use_triton`` to compact positions."""
    import torch
    import trl
    import trl.trainer.utils as trl_utils

    from restora.trainer.planner.common import completion_only_lm_head

    assert trl.__version__.startswith("1.16."), trl.__version__
    original = trl_utils._use_triton
    assert original(torch.device("cpu")) is False
    with completion_only_lm_head():
        assert trl_utils._use_triton(torch.device("cpu")) is True
    assert trl_utils._use_triton is original


def test_images_are_capped_and_one_per_prompt(synth_small, tmp_path):
    from restora.trainer.planner.data import DataError, action_rows
    from restora.trainer.planner.grpo import PlannerGRPOConfig, grpo_dataset

    cfg = PlannerGRPOConfig(data=synth_small, base="b", out=tmp_path / "o", max_image_side=32)
    ds = grpo_dataset(cfg, "train", limit=6)
    assert all(len(r["images"]) == 1 and max(r["images"][0].size) <= 32 for r in ds)
    with pytest.raises(ValueError, match="max_image_side"):
        PlannerGRPOConfig(data=synth_small, base="b", out=tmp_path / "o", max_image_side=1600)
    bad = tmp_path / "bad"
    shutil.copytree(synth_small, bad)
    lines = (bad / "sft" / "train.jsonl").read_text().splitlines()
    row = json.loads(lines[0])
    row["images"] = row["images"] * 2
    (bad / "sft" / "train.jsonl").write_text("\n".join([json.dumps(row), *lines[1:]]) + "\n")
    with pytest.raises(DataError, match="one image per prompt"):
        action_rows(bad, "train")


@pytest.mark.slow
def test_a_short_grpo_run_logs_each_reward_and_saves_an_adapter(synth_small, tiny_planner, tmp_path):
    """Prompts of different lengths share each batch (the #5785 trap fails Qwen2.5-VL's rope index there)."""
    from restora.trainer.planner.grpo import PlannerGRPOConfig, train_planner_grpo

    cfg = PlannerGRPOConfig(
        data=synth_small, base=str(tiny_planner), out=tmp_path / "grpo", max_steps=2, batch_size=4, num_generations=2,
        max_completion_length=24, eval_rows=2, threads=1, device="cpu", max_prompts=8, save_every=1,
    )
    result = train_planner_grpo(cfg)
    assert result["steps"] == 2 and (tmp_path / "grpo" / "adapter" / "card.json").is_file()
    logged = json.loads((tmp_path / "grpo" / "history.jsonl").read_text().splitlines()[0])
    assert {"rewards/valid/mean", "rewards/step_quality/mean", "rewards/penalties/mean", "reward"} <= set(logged)
    assert set(result["after"]["reward"]) >= {"valid", "perception_f1", "step_quality", "penalties", "reward"}
    assert result["seconds_per_step"] < 30
    np.testing.assert_array_equal(sorted(result["train_rewards_by_function"]), sorted(["valid", "perception_f1", "step_quality", "penalties"]))
