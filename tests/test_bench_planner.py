"""`restora bench mio --planner ...`: the agent with a named planner beside the heuristic one, on
the same cases (the tiny random-weight planner in process, ``--planner hf``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from restora.cli import app

FAST = ["denoise_nlm", "dejpeg_deblock", "dehaze_dcp", "derain_guided"]


@pytest.mark.slow
def test_bench_mio_compares_the_hf_planner_with_the_heuristic_on_the_same_cases(tmp_path: Path, data_dir: Path, tiny_planner: Path) -> None:
    pytest.importorskip("xgrammar")
    out = tmp_path / "bench"
    res = CliRunner().invoke(
        app,
        ["bench", "mio", "--clean", str(data_dir / "clean" / "kodak24"), "--out", str(out), "--size", "48", "--limit", "1",
         "--combos", "noise+jpeg,rain+haze", "--strategies", "none,agent", "--max-steps", "1", "--allow", ",".join(FAST),
         "--planner", "hf", "--planner-model", str(tiny_planner), "-q"],
    )
    assert res.exit_code == 0, res.output
    data = json.loads((out / "results.json").read_text())
    assert list(data["strategies"]) == ["none", "agent", "agent_hf"]  # added by --planner, after agent
    assert data["planner"] == {"name": "hf", "model": str(tiny_planner), "adapter": None, "decoding": "auto"}
    cases = {s: sorted((c["image"], c["combo"]) for c in data["cases"] if c["strategy"] == s) for s in data["strategies"]}
    assert cases["agent"] == cases["agent_hf"] == cases["none"] == [("kodim01.png", "noise+jpeg"), ("kodim01.png", "rain+haze")]
    by = {(c["strategy"], c["combo"]): c for c in data["cases"]}
    for combo in ("noise+jpeg", "rain+haze"):
        heuristic, hf = by[("agent", combo)], by[("agent_hf", combo)]
        assert heuristic["planner"] == "heuristic" and hf["planner"] == "hf"
        assert "planner" not in by[("none", combo)]
        # the tiny planner decided every step itself, its replies constrained to the schema
        assert hf["planner_decisions"] >= 1 and hf["planner_fallbacks"] == 0 and hf["planner_constrained"] == hf["planner_decisions"], hf
        assert heuristic["planner_decisions"] == 0  # no model was asked
    overall = data["strategies"]["agent_hf"]
    assert overall["planner"] == "hf" and overall["overall"]["planner_fallback_rate"] == 0.0 and overall["overall"]["planner_constrained_rate"] == 1.0
    assert data["strategies"]["agent"]["planner"] == "heuristic" and "planner" not in data["strategies"]["none"]
    assert data["strategies"]["agent"]["overall"]["planner_fallback_rate"] is None
    md = (out / "results.md").read_text()
    assert "| agent_hf | hf |" in md and "| agent | heuristic |" in md and "| none | – |" in md
    assert "Planner hf (model" in md and "- agent_hf: " in md and "0% fell back to the heuristic" in md


def test_bench_mio_planner_arguments_are_checked_before_anything_runs(tmp_path: Path, data_dir: Path) -> None:
    runner = CliRunner()
    base = ["bench", "mio", "--clean", str(data_dir / "clean" / "kodak24"), "--out", str(tmp_path), "--size", "48", "--limit", "1", "-q"]
    bad = runner.invoke(app, [*base, "--strategies", "agent_hf"])
    assert bad.exit_code == 2 and "unknown strategies" in bad.output and "--planner hf" in bad.output, bad.output
    bad = runner.invoke(app, [*base, "--planner", "hf"])
    assert bad.exit_code == 2 and "--planner-model" in bad.output, bad.output
    bad = runner.invoke(app, [*base, "--planner", "vlm", "--planner-model", "restora"])
    assert bad.exit_code == 2 and "--planner-url" in bad.output, bad.output
    bad = runner.invoke(app, [*base, "--planner-adapter", "runs/x"])
    assert bad.exit_code == 2 and "--planner-adapter is for --planner hf" in bad.output, bad.output
    assert not (tmp_path / "results.json").exists()
