"""restora synth: teacher search, the five scenarios, exports, split, resumability, loading with
``datasets`` and TRL's conversational helpers."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from typer.testing import CliRunner

from restora import degrade
from restora.cases import load_clean
from restora.imageio import quantize
from restora.cli import app
from restora.planners.base import choice_key
from restora.planners.schema import action_schema, parse_action
from restora.quality import QualityScorer
from restora.taxonomy import Task
from restora.tools import ToolBox
from restora.traces import read_trace
from restora.planners.teacher import SCENARIOS, TeacherSearch, trajectories

FAST = ["denoise_nlm", "denoise_bm3d", "dejpeg_deblock", "dehaze_dcp", "dehaze_clahe", "lowlight_gamma", "derain_guided"]


@pytest.fixture(scope="module")
def scorer() -> QualityScorer:
    return QualityScorer()


@pytest.fixture(scope="module")
def search(data_dir: Path, scorer):
    clean = load_clean(data_dir / "clean/kodak24/kodim05.png", 96)
    degraded, _ = degrade.compose(clean, "noise+jpeg", seed=3, severities={"noise": 0.7, "jpeg": 0.6})
    rng = np.random.default_rng(0)
    return TeacherSearch(clean, quantize(degraded), [Task.DENOISE, Task.DEJPEG], ToolBox(allow=FAST), scorer, rng).run()


def test_teacher_search_enumerates_and_finds_the_best_node(search):
    # 2 orders x 2 denoisers x 1 deblocker
    assert len(search.pipelines) == 4
    best = search.best
    assert best.teacher == max(v.teacher for v in search.views.values() if not v.node.error)
    assert best.teacher > search.path()[0].teacher  # restoring a noisy JPEG helps
    assert [v.node.key for v in search.path()] == [best.node.key[:i] for i in range(len(best.node.key) + 1)]


def test_the_five_scenarios_have_their_structure(search):
    trajs = trajectories(search, np.random.default_rng(1))
    by = {t.scenario: t for t in trajs}
    assert set(by) <= set(SCENARIOS) and {"plan", "stop"} <= set(by)
    path = search.path()
    best_plan = list(search.best.node.key)
    plan = by["plan"]
    assert plan.history == [] and plan.target.action.tool == best_plan[0] and plan.target.before is path[0]
    for t in (t for t in trajs if t.scenario == "adjust"):
        k = len(t.history)
        assert all(s.decision == "accept" for s in t.history)
        assert [s.action.tool for s in t.history] == best_plan[:k] and t.target.action.tool == best_plan[k]
    stop = by["stop"]
    assert stop.target.action.kind == "stop" and [s.action.tool for s in stop.history] == best_plan
    if "rollback" in by:
        rb = by["rollback"]
        bad = rb.history[-1]
        assert rb.target.action.kind == "rollback" and bad.decision == "accept"
        assert bad.after.teacher < bad.before.teacher  # the kept step really made it worse
    if "avoid_repeat" in by:
        ar = by["avoid_repeat"]
        bad = ar.history[-1]
        assert bad.decision == "rollback" and ar.target.action.kind == "tool"
        assert choice_key(ar.target.action.tool, ar.target.action.params) != choice_key(bad.action.tool, bad.action.params)
        assert ar.target.before is bad.before  # the image is back to before the bad step


def test_a_clean_input_is_a_stop_with_no_history(data_dir: Path, scorer):
    clean = load_clean(data_dir / "clean/kodak24/kodim07.png", 64)
    s = TeacherSearch(clean, clean, [], ToolBox(allow=FAST), scorer, np.random.default_rng(0)).run()
    trajs = trajectories(s, np.random.default_rng(0))
    stop = [t for t in trajs if t.scenario == "stop"]
    assert len(stop) == 1 and stop[0].history == [] and stop[0].target.action.kind == "stop"
    assert s.best.node.key == ()
    assert {t.scenario for t in trajs} <= {"stop", "rollback"}  # a distractor on a clean photo is rolled back


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, data_dir: Path):
    from restora.synth.planner import run_synth

    out = tmp_path_factory.mktemp("synth")
    summary = run_synth([data_dir / "clean/set5_hr"], out, n=14, size=64, seed=2)
    return out, summary


def test_synth_writes_rows_traces_and_card(dataset):
    out, summary = dataset
    assert summary["trajectories"] == 14
    rows = [json.loads(line) for split in ("train", "val") for line in (out / "sft" / f"{split}.jsonl").read_text().splitlines()]
    assert len(rows) == 14
    card = (out / "README.md").read_text()
    assert "restora synth" in card or "Scenarios" in card
    for s in SCENARIOS:
        assert f"| {s} |" in card
    for row in rows:
        trace = read_trace(out / "traces" / f"{row['id']}.trace.jsonl")
        assert trace[0].event == "start" and trace[-1].event == "end"
        steps = [r for r in trace if r.event == "step"]
        assert steps[-1].action.model_dump(include={"kind", "tool"}) == {
            k: json.loads(row["messages"][-1]["content"][0]["text"]).get(k) for k in ("kind", "tool")
        }
        assert all((out / p).is_file() for p in row["images"])


def test_every_sft_row_validates_against_the_planner_schema(dataset):
    out, _ = dataset
    catalogue = {n: t.describe() for n, t in ToolBox().catalogue().items()}
    validator = jsonschema.Draft202012Validator(action_schema(catalogue))
    for split in ("train", "val"):
        for line in (out / "sft" / f"{split}.jsonl").read_text().splitlines():
            row = json.loads(line)
            roles = [m["role"] for m in row["messages"]]
            assert roles == ["system", "user", "assistant"]
            answer = row["messages"][-1]["content"][0]["text"]
            validator.validate(json.loads(answer))
            parse_action(answer, catalogue)
            assert sum(c["type"] == "image" for c in row["messages"][1]["content"]) == len(row["images"]) == 1


def test_split_is_by_photo_and_grpo_rows_carry_reward_inputs(dataset):
    out, summary = dataset
    train, val = set(summary["photos"]["train"]), set(summary["photos"]["val"])
    assert train and val and not train & val
    samples = {json.loads(p.read_text())["id"]: json.loads(p.read_text()) for p in (out / "samples").glob("*.json")}
    for split in ("train", "val"):
        for line in (out / "grpo" / f"{split}.jsonl").read_text().splitlines():
            row = json.loads(line)
            sample = samples[row["id"].split("-")[0]]
            assert sample["split"] == split and (sample["photo"] in (train if split == "train" else val))
            assert (out / row["clean"]).is_file() and (out / row["degraded"]).is_file()
            assert row["labels"] == sample["labels"] and "best_score" in row["teacher"]
            assert [m["role"] for m in row["prompt"]] == ["system", "user"]


def test_synth_resumes_without_rewriting_and_extends(dataset, data_dir: Path):
    from restora.synth.planner import run_synth

    out, summary = dataset
    before = {p.name: p.read_bytes() for p in (out / "samples").glob("*.json")}
    again = run_synth([data_dir / "clean/set5_hr"], out, n=14, size=64, seed=2)
    assert again["samples_this_run"] == 0 and again["trajectories"] == 14
    assert {p.name: p.read_bytes() for p in (out / "samples").glob("*.json")} == before
    with pytest.raises(ValueError, match="other settings"):
        run_synth([data_dir / "clean/set5_hr"], out, n=14, size=96, seed=2)


def test_rows_load_with_datasets_and_trl(dataset):
    datasets = pytest.importorskip("datasets")
    data_utils = pytest.importorskip("trl.data_utils")
    from PIL import Image

    out, _ = dataset
    ds = datasets.load_dataset("json", data_files={"train": str(out / "sft/train.jsonl")}, split="train")
    assert len(ds) > 0 and {"messages", "images"} <= set(ds.column_names)
    row = ds[0]
    assert data_utils.is_conversational(row)
    images = [Image.open(out / p) for p in row["images"]]
    filled = data_utils.prepare_multimodal_messages(row["messages"], images)
    image_blocks = [c for m in filled for c in m["content"] if c["type"] == "image"]
    assert len(image_blocks) == 1 and image_blocks[0]["image"] is images[0]
    grpo = datasets.load_dataset("json", data_files=str(out / "grpo/train.jsonl"), split="train")
    assert data_utils.is_conversational({"prompt": grpo[0]["prompt"]})


def test_cli_synth(tmp_path: Path, data_dir: Path):
    res = CliRunner().invoke(app, ["synth", "--clean", str(data_dir / "clean/set5_hr"), "--out", str(tmp_path), "--n", "3", "--size", "48", "-q"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "README.md").is_file() and "trajectories" in res.output
