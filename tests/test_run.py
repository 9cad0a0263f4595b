"""Run: a session of turns on one image (open, turn, undo, close) and restore() as its one-turn wrapper.

Real tools (fast classical ones), the real QualityScorer and real perception on real photo crops;
the ScriptedPlanner makes the steps known in advance.
"""

from __future__ import annotations

import numpy as np
import pytest

from restora.agent import Run, restore
from restora.config import RunConfig
from restora.degrade import apply as degrade
from restora.degrade import compose
from restora.errors import RestoraError
from restora.planners import HeuristicPlanner, ScriptedPlanner
from restora.quality import QualityScorer
from restora.tools import ToolBox
from restora.traces import read_trace

TOOLS = ["denoise_nlm", "dejpeg_deblock", "lowlight_gamma"]
HALF = ("denoise_nlm", {"strength": 0.5})  # on the noisy crop: kept (18.3 -> 23.0 dB)
# after HALF: kept (23.0 -> 25.3 dB); HALF again would gain 0.1 dB, and the no-harm guard rejects it
MORE = ("denoise_nlm", {"strength": 1.0})


class Recorder(ScriptedPlanner):
    """A ScriptedPlanner that keeps every Observation it was given; ``then`` queues more steps."""

    def __init__(self, steps=()) -> None:
        super().__init__(steps)
        self.seen = []

    def next_action(self, obs):
        self.seen.append(obs)
        return super().next_action(obs)

    def then(self, *steps) -> Recorder:
        self.steps.extend(ScriptedPlanner(steps).steps)
        return self


@pytest.fixture(scope="module")
def noisy(clean_photo) -> np.ndarray:
    return degrade(clean_photo[16:144, 16:144], "noise", 0.6, seed=1)


@pytest.fixture(scope="module")
def toolbox() -> ToolBox:
    return ToolBox(allow=TOOLS)


@pytest.fixture(scope="module")
def scorer() -> QualityScorer:
    return QualityScorer()


def _steps(records):
    return [r for r in records if r.event == "step"]


def test_two_turns_undo_and_close(noisy, toolbox, scorer, tmp_path):
    path = tmp_path / "chat.trace.jsonl"
    planner = Recorder([HALF])
    run = Run.open(noisy, planner=planner, toolbox=toolbox, scorer=scorer, trace_path=path, source="chat")
    assert [r.event for r in run.records] == ["start"] and run.state["tool_calls"] == 0

    first = run.turn()
    assert first.accepted == ["denoise_nlm"] and first.stop_reason == "script finished"
    after_first = run.image
    assert not np.array_equal(after_first, noisy)

    planner.then(MORE)
    seen_before = len(planner.seen)
    second = run.turn("a little more denoising, please")
    obs = planner.seen[seen_before]  # the second turn's first observation
    assert obs.request == "a little more denoising, please"
    assert [(h.tool, h.decision) for h in obs.history] == [("denoise_nlm", "accept")]
    assert np.array_equal(obs.image, after_first)  # it continues from the first turn's output
    assert np.array_equal(obs.original, noisy)
    assert obs.step == 2  # steps keep counting across turns: 0 accept, 1 stop, 2 ...
    assert second.accepted == ["denoise_nlm", "denoise_nlm"] and second.tool_calls == 2
    assert run.state["turn_tool_calls"] == 1

    # undo the second turn's step: its input comes back; nothing is banned
    assert run.undo() is True
    assert np.array_equal(run.image, after_first)
    assert run.result().accepted == ["denoise_nlm"]
    undo = run.records[-1]
    assert undo.event == "step" and undo.decision == "rollback" and undo.action.kind == "rollback"
    assert undo.action.tool == "denoise_nlm" and undo.action.planner == "user"
    assert undo.banned == [] and run.state["banned"] == []
    assert undo.image_after == _steps(run.records)[0].image_after

    # the undone choice is not banned: the planner may take it again
    planner.then(MORE)
    third = run.turn()
    assert _steps(run.records)[-2].decision == "accept" and third.tool_calls == 3

    result = run.close()
    on_disk = read_trace(path)
    assert [r.event for r in on_disk] == ["start"] + ["step"] * 7 + ["end"]
    assert [s.decision for s in _steps(on_disk)] == ["accept", "stop", "accept", "stop", "rollback", "accept", "stop"]
    assert [s.step for s in _steps(on_disk)] == list(range(7))
    assert on_disk[-1].tool_calls == 3 and on_disk[-1].accepted == ["denoise_nlm", "denoise_nlm"]
    assert on_disk[-1].image == result.records[-1].image == result.state["current_ref"]
    assert [r.model_dump() for r in on_disk] == [r.model_dump(mode="json") for r in result.records]
    assert not path.with_name(path.name + ".part").exists()
    assert run.close().records == result.records  # closing again changes nothing
    with pytest.raises(RestoraError, match="closed"):
        run.turn()


def test_restore_is_open_one_turn_close(clean_photo, toolbox, scorer):
    image, _ = compose(clean_photo[16:144, 16:144], "noise+jpeg", seed=3)
    kw = dict(planner=HeuristicPlanner(), toolbox=toolbox, scorer=scorer, source="case")
    a = restore(image, max_steps=3, **kw)
    with Run.open(image, config=RunConfig(max_steps=3), **kw) as run:
        run.turn()
        b = run.close()
    assert a.tool_calls > 0  # the case exercises the loop
    assert np.array_equal(a.image, b.image)
    assert (a.accepted, a.stop_reason, a.tool_calls) == (b.accepted, b.stop_reason, b.tool_calls)

    def essence(records):
        return [
            (r.event, getattr(r, "decision", None), getattr(r, "action", None), getattr(r, "image_after", None))
            for r in records
        ]

    assert essence(a.records) == essence(b.records)
    assert a.records[0].config == b.records[0].config and a.records[0].config["max_steps"] == 3
    with pytest.raises(TypeError, match="max_step"):
        restore(image, max_step=3, **kw)


def test_a_new_turn_gets_a_fresh_budget(noisy, toolbox, scorer):
    planner = Recorder([HALF, ("dejpeg_deblock", {})])
    with Run.open(noisy, config=RunConfig(max_steps=1), planner=planner, toolbox=toolbox, scorer=scorer) as run:
        assert run.turn().stop_reason == "step budget reached (1 tool calls)"
        assert planner.calls == 1
        second = run.turn()
        assert planner.seen[1].steps_left == 1  # not 0: the budget counts per turn
        assert second.tool_calls == 2 and run.state["turn_tool_calls"] == 1
        assert _steps(run.records)[-2].action.tool == "dejpeg_deblock"
        assert second.stop_reason == "step budget reached (1 tool calls)"


def test_a_new_turn_is_not_stopped_by_the_last_turns_time_or_planner_errors(noisy, toolbox, scorer):
    planner = Recorder()
    with Run.open(noisy, config=RunConfig(max_seconds=1e-9), planner=planner, toolbox=toolbox, scorer=scorer) as run:
        assert run.turn().stop_reason.startswith("time budget reached") and planner.calls == 0
        planner.then(("no_such_tool", {}), ("no_such_tool", {}), ("no_such_tool", {}))
        assert run.turn(max_seconds=60).stop_reason == "planner gave 3 invalid steps in a row"
        planner.then(HALF)
        last = run.turn(max_seconds=60)
        assert last.tool_calls == 1 and last.accepted == ["denoise_nlm"]


def test_undo_with_nothing_kept_returns_false_and_writes_nothing(noisy, toolbox, scorer, tmp_path):
    path = tmp_path / "t.jsonl"
    planner = Recorder([("lowlight_gamma", {})])  # does not help a well-exposed photo: rolled back
    with Run.open(noisy, planner=planner, toolbox=toolbox, scorer=scorer, trace_path=path) as run:
        assert run.undo() is False
        assert [r.event for r in run.records] == ["start"]
        run.turn()
        assert run.result().accepted == [] and _steps(run.records)[0].decision == "rollback"
        before = run.records
        assert run.undo() is False
        assert run.records == before
        assert np.array_equal(run.image, noisy)
    assert [r.event for r in read_trace(path)] == ["start", "step", "step", "end"]


def test_an_exception_in_the_session_leaves_only_the_partial_trace(noisy, toolbox, scorer, tmp_path):
    path = tmp_path / "t.jsonl"
    with pytest.raises(KeyboardInterrupt):
        with Run.open(noisy, planner=Recorder(), toolbox=toolbox, scorer=scorer, trace_path=path):
            raise KeyboardInterrupt
    assert not path.exists()
    assert [r.event for r in read_trace(path.with_name(path.name + ".part"))] == ["start"]
