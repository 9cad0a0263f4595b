"""The agent graph, driven by a scripted planner, exercises accept, rollback, ban, budget and stop.

The scorer here is full-reference (PSNR against the clean crop), a real measure rather than a
mock, so that which steps help and which hurt is known for certain; the default no-reference
scorer is exercised end to end in test_cli.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import BaseModel

from restora.agent import restore
from restora.degrade import apply as degrade
from restora.perception import perceive
from restora.planners import Action, HeuristicPlanner, ScriptedPlanner
from restora.tools import ToolBox
from restora.traces import read_trace


class PSNRScores(BaseModel):
    overall: float
    metrics: dict[str, float]


class ReferencePSNR:
    """Scores an image by PSNR against a known clean reference (overall = PSNR / 50)."""

    metrics = ["psnr"]

    def __init__(self, clean: np.ndarray) -> None:
        self.clean = clean

    def score(self, image: np.ndarray, report=None) -> PSNRScores:
        mse = float(np.mean((image.astype(np.float64) - self.clean) ** 2))
        psnr = 10 * np.log10(1.0 / max(mse, 1e-12))
        return PSNRScores(overall=psnr / 50.0, metrics={"psnr": psnr})


@pytest.fixture(scope="module")
def noisy_case(clean_photo):
    return clean_photo, degrade(clean_photo, "noise", 0.5, seed=1)


def _steps(result):
    return [r for r in result.records if r.event == "step"]


def test_accept_rollback_ban_and_stop(noisy_case, tmp_path):
    clean, noisy = noisy_case
    brighten = ("lowlight_gamma", {})  # brightening a well-exposed photo moves it away from clean
    planner = ScriptedPlanner(
        [
            ("denoise_nlm", {}),  # helps: accepted
            brighten,  # hurts: rolled back and banned
            Action(kind="tool", tool=brighten[0], params=brighten[1]),  # banned: refused
            ("no_such_tool", {}),  # invalid: refused
        ]
    )
    result = restore(
        noisy,
        planner=planner,
        scorer=ReferencePSNR(clean),
        perceive=perceive,
        max_steps=5,
        trace_path=tmp_path / "t.trace.jsonl",
    )
    steps = _steps(result)
    decisions = [s.decision for s in steps]
    assert decisions == ["accept", "rollback", "error", "error", "stop"]
    assert result.accepted == ["denoise_nlm"]
    assert result.tool_calls == 2  # refused planner steps run no tool
    assert "banned" in steps[2].error
    assert "no_such_tool" in steps[3].error
    assert steps[1].banned and steps[1].banned[0].startswith("lowlight_gamma|")
    assert result.stop_reason == "script finished"
    # the rolled-back step left the accepted image in place
    assert steps[2].image_before == steps[0].image_after
    assert np.array_equal(result.image, result.store.get(steps[0].image_after))
    # trace on disk == trace in memory, schema-valid
    on_disk = read_trace(tmp_path / "t.trace.jsonl")
    assert [r.event for r in on_disk] == ["start"] + ["step"] * 5 + ["end"]
    assert on_disk[-1].accepted == ["denoise_nlm"]
    assert not (tmp_path / "t.trace.jsonl.part").exists()


def test_step_budget_stops_the_run(noisy_case):
    clean, noisy = noisy_case
    planner = ScriptedPlanner([("denoise_nlm", {}), ("dehaze_dcp", {}), ("denoise_nlm", {"h": 3.0})])
    result = restore(noisy, planner=planner, scorer=ReferencePSNR(clean), max_steps=1)
    assert result.tool_calls == 1
    assert result.stop_reason.startswith("step budget reached")
    assert planner.calls == 1  # the planner is not asked once the budget is spent


def test_time_budget_stops_the_run(noisy_case):
    clean, noisy = noisy_case
    planner = ScriptedPlanner([("denoise_nlm", {})] * 3)
    result = restore(noisy, planner=planner, scorer=ReferencePSNR(clean), max_seconds=1e-9)
    assert result.tool_calls == 0
    assert result.stop_reason.startswith("time budget reached")


def test_tool_crash_is_recorded_banned_and_the_run_goes_on(noisy_case, monkeypatch):
    clean, noisy = noisy_case
    from restora.tools.registry import get_tool

    cls = get_tool("dehaze_dcp")

    def boom(self, image, params):
        raise RuntimeError("simulated crash")  # a test double: real tools do not crash on demand

    monkeypatch.setattr(cls, "run", boom)
    planner = ScriptedPlanner([("dehaze_dcp", {}), ("denoise_nlm", {})])
    result = restore(noisy, planner=planner, scorer=ReferencePSNR(clean), max_steps=4)
    steps = _steps(result)
    assert steps[0].decision == "error" and "simulated crash" in steps[0].error
    assert steps[0].banned and steps[0].banned[0].startswith("dehaze_dcp|")
    assert steps[1].decision == "accept"
    assert result.tool_calls == 2


def test_clean_input_comes_back_unchanged_with_zero_tool_calls(clean_photos):
    toolbox = ToolBox()
    for clean in clean_photos[:3]:
        result = restore(clean, planner=HeuristicPlanner(), toolbox=toolbox, max_steps=4)
        assert result.tool_calls == 0, result.stop_reason
        assert np.array_equal(result.image, clean)
        assert "clean" in result.stop_reason


def test_heuristic_planner_never_repeats_a_banned_choice(noisy_case):
    clean, noisy = noisy_case
    # PSNR against the *noisy* image itself: every tool "hurts", so every step is rolled back (the
    # guard may not vouch for a denoise here: the scorer alone decides)
    result = restore(noisy, planner=HeuristicPlanner(patience=10), scorer=ReferencePSNR(noisy), max_steps=6, guard_vouch=False)
    steps = [s for s in _steps(result) if s.action.kind == "tool"]
    keys = [(s.action.tool, tuple(sorted(s.action.params.items()))) for s in steps]
    assert steps and all(s.decision == "rollback" for s in steps)
    assert len(keys) == len(set(keys))
    assert result.accepted == []
    assert np.array_equal(result.image, noisy)


def test_planner_rollback_undoes_the_last_kept_step_and_bans_it(noisy_case, tmp_path):
    clean, noisy = noisy_case
    planner = ScriptedPlanner(
        [
            Action.rollback("nothing kept yet"),  # invalid: nothing to undo
            ("denoise_nlm", {}),  # helps: accepted by the scorer
            Action.rollback("the planner judges it harmful"),  # the planner overrules the scorer
            ("denoise_nlm", {}),  # the same choice again: banned, refused
        ]
    )
    result = restore(noisy, planner=planner, scorer=ReferencePSNR(clean), max_steps=4, trace_path=tmp_path / "r.jsonl")
    steps = _steps(result)
    assert [s.decision for s in steps] == ["error", "accept", "rollback", "error", "stop"]
    assert "nothing to undo" in steps[0].error or "no kept step" in steps[0].error
    assert steps[2].action.kind == "rollback" and steps[2].action.tool == "denoise_nlm"
    assert steps[2].banned and steps[2].banned[0].startswith("denoise_nlm|")
    assert "banned" in steps[3].error
    assert result.accepted == [] and result.tool_calls == 1
    assert np.array_equal(result.image, noisy)  # back to the input, bit for bit
    assert [h["decision"] for h in result.state["history"]][:3] == ["error", "accept", "rollback"]
    assert read_trace(tmp_path / "r.jsonl")[-1].accepted == []


def test_heuristic_planner_still_tries_what_the_input_showed(clean_photo):
    """Rain found in the input and hidden after super-resolution is still tried; once a derain
    step was tried (kept or not) it is not tried again on the input's word; a clean input with
    a clean current image stops."""
    from restora.planners.base import HistoryItem, Observation
    from restora.tools import ToolBox

    rainy = degrade(clean_photo, "rain", 0.6, seed=2)
    input_report = perceive(rainy).model_dump(mode="json")
    assert input_report["findings"]["rain"]["present"]
    now_clean = perceive(clean_photo).model_dump(mode="json")
    assert not any(f["present"] for f in now_clean["findings"].values())
    catalogue = {n: t.describe() for n, t in ToolBox().catalogue().items()}

    def obs(history, inp=input_report):
        return Observation(step=len(history), report=now_clean, input_report=inp, scores={}, history=history,
                           steps_left=4, seconds_left=600, catalogue=catalogue)

    sr = HistoryItem(step=0, tool="sr_srmd", task="super_resolution", params={}, decision="accept")
    action = HeuristicPlanner().next_action(obs([sr]))
    assert action.kind == "tool" and action.task == "derain"
    assert "found in the input" in action.reason
    tried = HistoryItem(step=1, tool=action.tool, task="derain", params=action.params, decision="rollback")
    assert HeuristicPlanner().next_action(obs([sr, tried])).kind == "stop"
    assert HeuristicPlanner().next_action(obs([], inp=now_clean)).kind == "stop"


def test_haze_that_a_kept_brightening_made_is_not_dehazed(clean_photo):
    """Brightening lifts the shadows, which reads as haze: after a kept low-light step, haze that
    the input did not show is that step's look and the planner stops; haze the input showed is
    still dehazed, and before any tone step haze is fixed as usual."""
    from restora.planners.base import HistoryItem, Observation
    from restora.tools import ToolBox

    hazy = perceive(degrade(clean_photo, "haze", 0.7, seed=1)).model_dump(mode="json")
    assert hazy["findings"]["haze"]["present"]
    dark = {"findings": {"dark": {"degradation": "dark", "present": True, "severity": 0.6, "evidence": {}}}}
    catalogue = {n: t.describe() for n, t in ToolBox().catalogue().items()}
    lime = HistoryItem(step=0, tool="lowlight_lime", task="low_light", params={}, decision="accept")

    def obs(history, inp):
        return Observation(step=len(history), report=hazy, input_report=inp, scores={}, history=history,
                           steps_left=4, seconds_left=600, catalogue=catalogue)

    stop = HeuristicPlanner().next_action(obs([lime], dark))
    assert stop.kind == "stop" and "look of the steps kept" in stop.reason
    assert HeuristicPlanner().next_action(obs([lime], {"findings": {**dark["findings"], "haze": hazy["findings"]["haze"]}})).task == "dehaze"
    assert HeuristicPlanner().next_action(obs([], {"findings": {}})).task == "dehaze"
    rolled = lime.model_copy(update={"decision": "rollback"})
    assert HeuristicPlanner().next_action(obs([rolled], dark)).task == "dehaze"
    # a person who asks for it in a chat session gets it (the request is in the input's report too)
    from restora.chat.constraints import ConstrainedPlanner
    from restora.chat.instructions import Instructions
    from restora.taxonomy import Task

    asked = ConstrainedPlanner(HeuristicPlanner(), Instructions(do=[Task.DEHAZE]))
    assert asked.next_action(obs([lime], dark)).task == "dehaze"


def test_a_tone_step_is_not_blamed_for_what_it_reveals():
    """Brightening makes rain stand out: the accept score's perception term is credited for the
    rain severity it raised, only for tone steps, and never for the step's own target."""
    from restora.agent.nodes import revealed_by_tone

    def rep(**sev):
        return {"findings": {k: {"present": v > 0, "severity": v} for k, v in sev.items()}}

    r = revealed_by_tone("low_light", rep(dark=0.8, rain=0.5), rep(dark=0.0, rain=0.9))
    assert r["degradations"] == {"rain": [0.5, 0.9]} and r["credit"] > 0
    # noise that perception did not find before is not credited: brightening a dim photo into
    # visible noise is harm, not a revelation
    assert revealed_by_tone("low_light", rep(dark=0.8), rep(noise=0.3)) is None
    # a dehaze that leaves haze worse gets no credit for its own target
    assert revealed_by_tone("dehaze", rep(haze=0.3), rep(haze=0.6)) is None
    # not a tone step, or nothing rose
    assert revealed_by_tone("derain", rep(rain=0.5), rep(rain=0.0, defocus=0.4)) is None
    assert revealed_by_tone("low_light", rep(dark=0.8, rain=0.5), rep(rain=0.4)) is None


def test_a_deblur_after_a_smoothing_step_uses_the_input_blur_extent_when_smaller():
    """A de-blocking or denoise smooths the picture, which reads as more blur: once a step was
    kept, the deblur's kernel is no larger than the input's reading (too large a kernel rings)."""
    from restora.planners.base import HistoryItem, Observation
    from restora.tools import ToolBox

    def report(radius):
        return {"findings": {"defocus": {"degradation": "defocus", "present": True, "severity": 0.5, "evidence": {"defocus_radius": radius}}}}

    catalogue = {n: t.describe() for n, t in ToolBox().catalogue().items()}
    kept = HistoryItem(step=0, tool="dejpeg_waifu2x", task="dejpeg", params={}, decision="accept")

    def radius(now, inp, history):
        obs = Observation(step=len(history), report=report(now), input_report=report(inp), scores={}, history=history,
                          steps_left=4, seconds_left=600, catalogue=catalogue)
        action = HeuristicPlanner().next_action(obs)
        assert action.task == "defocus_deblur"
        return action.params["radius"]

    assert radius(4.5, 3.6, [kept]) == 3.6
    assert radius(3.0, 3.6, [kept]) == 3.0  # a smaller reading now is used as it is
    assert radius(4.5, 3.6, []) == 4.5  # nothing kept yet: the current image is the input


def test_a_motion_kernel_the_guard_rejected_is_not_retried_with_another_solver():
    """The guard rejecting a motion deblur blames the kernel (a real camera shake is no straight
    line): Richardson-Lucy with the same length and angle is not tried next, while a deblur
    rolled back only for its score still gets its other solvers; defocus keeps its retries."""
    from restora.planners.base import HistoryItem, Observation, choice_key
    from restora.planners.heuristic import rejected_hypotheses

    def report(degradation, **evidence):
        return {"findings": {degradation: {"degradation": degradation, "present": True, "severity": 0.6, "evidence": evidence}}}

    catalogue = {n: t.describe() for n, t in ToolBox().catalogue().items()}
    motion = report("motion_blur", blur_length=10.9, blur_angle=64.0)

    def next_after(rep, history):
        banned = [choice_key(h.tool, h.params) for h in history]  # the agent bans what it rolled back
        obs = Observation(step=len(history), report=rep, input_report=rep, scores={}, history=history, banned=banned,
                          steps_left=4, seconds_left=600, catalogue=catalogue)
        return HeuristicPlanner().next_action(obs)

    first = next_after(motion, [])
    assert first.tool == "deblur_motion" and first.params["method"] == "cg"
    rejected = HistoryItem(step=0, tool=first.tool, task=first.task, params=first.params, decision="rollback", guard_rejected=True)
    assert rejected_hypotheses(Observation(step=1, report=motion, scores={}, history=[rejected], steps_left=3, seconds_left=60)) == {
        ("deblur_motion", (first.params["length"], first.params["angle"]))
    }
    after = next_after(motion, [rejected])
    assert not (after.tool == "deblur_motion" and (after.params["length"], after.params["angle"]) == (first.params["length"], first.params["angle"]))
    scored = rejected.model_copy(update={"guard_rejected": False})
    retry = next_after(motion, [scored])
    assert retry.tool == "deblur_motion" and retry.params["method"] == "rl"
    defocus = report("defocus", defocus_radius=3.0)
    d0 = next_after(defocus, [])
    d1 = next_after(defocus, [HistoryItem(step=0, tool=d0.tool, task=d0.task, params=d0.params, decision="rollback", guard_rejected=True)])
    assert d1.tool == "deblur_defocus" and d1.params != d0.params


def test_the_agent_records_which_rollbacks_the_guard_made():
    from restora.synth import negatives

    img = negatives.render("text", 128, seed=1)
    result = restore(img, planner=ScriptedPlanner([("derain_guided", {})]), toolbox=ToolBox(allow=["derain_guided"]), max_steps=2, min_gain=-1.0)
    assert [h["guard_rejected"] for h in result.state["history"] if h["tool"] == "derain_guided"] == [True]


@pytest.mark.data
def test_a_real_camera_shake_photo_is_not_made_worse(data_dir):
    """Levin et al.'s im1 with kernel 2 (a curved hand-shake path): the straight-kernel deblur
    rings, the guard rejects it, and its Richardson-Lucy retry (doubled edges, -0.21 dB against
    the sharp photo when it was kept) is not tried."""
    from restora.imageio import load_image, quantize

    img = quantize(load_image(data_dir / "real_gt" / "levin" / "blurred" / "im1_kernel2_img.png").pixels)
    result = restore(img, planner=HeuristicPlanner(), toolbox=ToolBox(), max_steps=8)
    tried = [h for h in result.state["history"] if h["tool"] == "deblur_motion"]
    assert tried and not any(h["decision"] == "accept" and h["params"].get("method") == "rl" for h in tried)
    assert np.array_equal(result.image, img)
