"""Constrained decoding of the in-process planner (`restora run --planner hf`): xgrammar's
transformers logits processor keeps every reply in the question's JSON schema.

On the tiny random-weight planner (the ``tiny_planner`` session fixture) the same questions are
asked free and constrained and both valid rates are measured: free replies are garbage, constrained
ones all validate; ``restora run --planner hf`` then decides without falling back, and the trace
says the replies were constrained. Without xgrammar the backend says why it is not constraining,
or refuses when constraining was required.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from restora.cli import app
from restora.planners.base import Observation
from restora.planners.hf import ConstrainedDecodingError, HFBackend, compile_schema, load_planner, xgrammar_version
from restora.planners.schema import ActionError, action_json, action_schema, parse_action
from restora.planners.vlm import VLMPlanner, parse_perception, perception_answer, perception_messages, perception_schema

pytestmark = pytest.mark.slow

TOOLS = ["denoise_nlm", "dejpeg_deblock", "dehaze_dcp"]


@pytest.fixture(scope="module")
def catalogue() -> dict:
    from restora.tools import ToolBox

    return {n: t.describe() for n, t in ToolBox(allow=TOOLS).catalogue().items()}


def _questions(catalogue: dict) -> list[tuple[str, list, list, dict, object]]:
    """Perception and next-step questions as the live planner asks them, on three different images
    and states: (kind, messages, images, schema, parse)."""
    rng = np.random.default_rng(0)
    planner = VLMPlanner(backend=None)  # only its prompt builder
    out = []
    for i in range(3):
        image = rng.random((40 + 8 * i, 48, 3)).astype(np.float32)
        out.append(("perception", perception_messages(), [image], perception_schema(), parse_perception))
        obs = Observation(step=i, report={}, scores={"nr": 0.4 + 0.1 * i}, steps_left=4 - i, seconds_left=100.0, catalogue=catalogue, image=image)
        messages, images = planner._step_messages(obs, {})
        out.append(("action", messages, images, action_schema(catalogue), lambda r: parse_action(r, catalogue)))
    return out


def _valid_rate(backend: HFBackend, questions: list) -> tuple[float, list[str]]:
    ok, replies = 0, []
    for _, messages, images, schema, parse in questions:
        reply = backend.complete(messages, images, schema, "q")
        replies.append(reply)
        try:
            parse(reply)
            ok += 1
        except ActionError:
            pass
    return ok / len(questions), replies


def test_the_grammar_takes_every_answer_the_planner_is_trained_on(tiny_planner: Path) -> None:
    """The constraint must not forbid what training teaches: the compact JSON of every tool's step
    (its params completed with defaults), stop and rollback, and the perception answer, token by token."""
    pytest.importorskip("xgrammar")
    import xgrammar as xgr

    from restora.tools import list_tools

    model, processor = load_planner(tiny_planner)
    everything = {n: t.describe() for n, t in list_tools().items()}
    tok = processor.tokenizer
    end = tok.convert_tokens_to_ids("<|im_end|>")

    def takes(grammar, text: str) -> bool:
        m = xgr.GrammarMatcher(grammar)
        return all(m.accept_token(t) for t in tok.encode(text, add_special_tokens=False)) and m.accept_token(end) and m.is_terminated()

    actions = compile_schema(model, processor, action_schema(everything))
    answers = [action_json(parse_action({"kind": "tool", "tool": n, "params": {}, "reason": "it is there"}, everything)) for n in everything]
    answers += ['{"kind":"stop","reason":"nothing left to fix"}', '{"kind":"rollback"}']
    assert [a for a in answers if not takes(actions, a)] == []
    assert not takes(actions, '{"kind":"tool","tool":"no_such_tool","params":{}}')
    assert not takes(actions, '{"kind": "stop"}')  # compact, as the training answers are
    perception = compile_schema(model, processor, perception_schema())
    assert takes(perception, perception_answer({"noise": {"severity": 0.456}, "haze": {"severity": 1.0}}))


def test_constrained_replies_are_all_valid_where_free_ones_are_not(tiny_planner: Path, catalogue: dict) -> None:
    pytest.importorskip("xgrammar")
    questions = _questions(catalogue)
    free = HFBackend(tiny_planner, constrained=False)
    free_rate, free_replies = _valid_rate(free, questions)
    assert free.last_decoding() == {"backend": "hf", "constrained": False, "why": "constrained decoding is off"}
    constrained = HFBackend(tiny_planner, constrained=True)
    rate, replies = _valid_rate(constrained, questions)
    print(f"tiny planner, {len(questions)} questions: valid free {free_rate:.2f}, constrained {rate:.2f}")
    print("free:", [r[:40] for r in free_replies], "constrained:", [r[:60] for r in replies])
    assert free_rate < 0.5, free_replies  # random weights: the raw replies are not JSON
    assert rate == 1.0, replies
    assert constrained.last_decoding() == {"backend": "hf", "constrained": True, "by": f"xgrammar {xgrammar_version()}"}
    # an empty schema is never constrained (what a caller asks for the raw model's reply)
    constrained.complete(questions[1][1], questions[1][2], {}, "x")
    assert constrained.last_decoding()["constrained"] is False


def _run(tmp_path: Path, tiny_planner: Path, clean_photo: np.ndarray, *extra: str) -> list:
    """The steps the planner decided in a one-step ``restora run --planner hf`` (not the agent's
    own stop when the budget is spent, which carries no decoding)."""
    from restora.degrade import apply as degrade
    from restora.imageio import save_image
    from restora.traces import read_trace

    src = tmp_path / "noisy.png"
    save_image(src, degrade(clean_photo[:48, :48], "noise", 0.5, seed=4))
    out = tmp_path / "out"
    args = ["run", str(src), "-o", str(out), "--planner", "hf", "--planner-model", str(tiny_planner), "--max-steps", "1",
            "--allow", ",".join(TOOLS), "-q", *extra]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    return [r for r in read_trace(out / "noisy.trace.jsonl") if r.event == "step" and r.action.decoding is not None]


def test_run_planner_hf_no_longer_falls_back(tmp_path: Path, tiny_planner: Path, clean_photo: np.ndarray) -> None:
    pytest.importorskip("xgrammar")
    steps = _run(tmp_path / "c", tiny_planner, clean_photo)
    assert steps and all(s.action.planner == "vlm" and not s.action.fallback for s in steps), [s.action for s in steps]
    for s in steps:
        d = s.action.decoding
        assert d["constrained"] is True and d["backend"] == "hf" and d["by"].startswith("xgrammar") and d["attempts"] == 1, d
        assert d["perception"]["constrained"] is True, d
        assert s.action.perception and set(s.action.perception["findings"]) >= {"noise", "haze"}
    # the same model, free: its replies are invalid, every decision falls back, and the trace says why
    free = _run(tmp_path / "f", tiny_planner, clean_photo, "--planner-decoding", "free")
    assert free and all(s.action.fallback and s.action.fallback.startswith("heuristic:") for s in free)
    assert all(s.action.decoding["perception"]["constrained"] is False for s in free)


def test_without_xgrammar_it_says_why_or_refuses(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_planner: Path) -> None:
    monkeypatch.setitem(sys.modules, "xgrammar", None)  # import xgrammar -> ImportError
    assert xgrammar_version() is None
    with pytest.raises(ConstrainedDecodingError, match=r"restora\[planner\]"):
        HFBackend(tiny_planner, constrained=True)
    auto = HFBackend(tiny_planner, constrained=None)
    grammar, decoding = auto._grammar(None, None, {"type": "object"})
    assert grammar is None and decoding["constrained"] is False and "xgrammar" in decoding["why"] and "restora[planner]" in decoding["why"]
    res = CliRunner().invoke(app, ["run", str(tmp_path / "x.png"), "-o", str(tmp_path / "o"), "--planner", "hf", "--planner-model", str(tiny_planner),
                                   "--planner-decoding", "constrained"])
    assert res.exit_code == 2 and "xgrammar" in res.output, res.output
    bad = CliRunner().invoke(app, ["run", str(tmp_path / "x.png"), "-o", str(tmp_path / "o"), "--planner-decoding", "constrained"])
    assert bad.exit_code == 2 and "--planner-decoding is for --planner hf" in bad.output, bad.output


def test_planner_spec_is_described_without_its_key() -> None:
    from restora.planners.factory import PlannerSpec

    spec = PlannerSpec("vlm", url="http://127.0.0.1:1/v1", model="restora", key="secret")
    spec.check()
    assert "secret" not in json.dumps(spec.describe())
    with pytest.raises(ValueError, match="unknown planner"):
        PlannerSpec("smart").check()
    with pytest.raises(ValueError, match="--planner-adapter is for --planner hf"):
        PlannerSpec("vlm", url="u", model="m", adapter="a").check()
