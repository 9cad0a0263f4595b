"""Chat sessions: the session object (exact undo/redo/reset, compare and pick, keep-grain,
approval through LangGraph's interrupt, resume by id in another process), the constraints the
instructions put on planners, and ``restora chat`` driven by piped input.

Everything runs on the real tools, perception, scorer and guard, on small crops of a real photo
(kodim23) with synthetic Gaussian noise, so each message takes about a second.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from restora.chat.constraints import ConstrainedPlanner
from restora.chat.instructions import parse
from restora.chat.session import ChatSession, SessionServices, build_graph
from restora.planners.base import Action, Observation
from restora.planners.heuristic import HeuristicPlanner
from restora.store import DiskImageStore, image_hash
from restora.tools.registry import get_tool

TOOLS = ["denoise_srmd", "denoise_nlm", "denoise_bm3d", "dehaze_dcp", "lowlight_gamma"]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def services() -> SessionServices:
    return SessionServices(allow=TOOLS, turn_steps=3)


@pytest.fixture(scope="module")
def noisy(clean_photo: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.clip(clean_photo + rng.normal(0, 20 / 255, clean_photo.shape), 0, 1).astype(np.float32)


def _hash(a: np.ndarray) -> str:
    return image_hash(np.asarray(a, np.float32))


# -- the graph and the store ------------------------------------------------------------------------
def test_the_session_graph_has_its_routes():
    nodes = set(build_graph().get_graph().nodes)
    assert {"understand", "restore", "compare", "propose", "approve", "apply", "finish"} <= nodes


def test_disk_store_outlives_the_object(tmp_path: Path, noisy: np.ndarray):
    ref = DiskImageStore(tmp_path).put(noisy)
    again = DiskImageStore(tmp_path)
    assert ref in again and np.array_equal(again.get(ref), noisy.astype(np.float32))
    assert not list(tmp_path.glob("*.part"))
    with pytest.raises(Exception, match="not an image reference"):
        again.get("img:../../etc/passwd")


# -- constraints on planners -------------------------------------------------------------------------
def _obs(findings: dict[str, float], history: list | None = None) -> Observation:
    from restora.tools.registry import ToolBox

    report = {
        "width": 160,
        "height": 160,
        "findings": {d: {"degradation": d, "present": s > 0, "severity": s, "evidence": {}} for d, s in findings.items()},
    }
    catalogue = {n: t.describe() for n, t in ToolBox(allow=TOOLS).catalogue().items()}
    return Observation(step=len(history or []), report=report, input_report=report, scores={"overall": 0.5},
                       history=history or [], steps_left=4, seconds_left=100.0, catalogue=catalogue)


def test_avoided_tasks_are_hidden_and_their_tools_removed():
    planner = ConstrainedPlanner(HeuristicPlanner(), parse("don't dehaze"))
    obs = planner.constrain(_obs({"haze": 0.8, "noise": 0.4}))
    assert not obs.report["findings"]["haze"]["present"] and obs.report["findings"]["noise"]["present"]
    assert "dehaze_dcp" not in obs.catalogue and "denoise_srmd" in obs.catalogue
    assert planner.next_action(_obs({"haze": 0.8, "noise": 0.4})).task == "denoise"


def test_only_keeps_the_asked_task_and_a_request_adds_what_perception_missed():
    planner = ConstrainedPlanner(HeuristicPlanner(), parse("only denoise"))
    action = planner.next_action(_obs({"haze": 0.9, "dark": 0.7}))  # no noise found, haze and dark are
    assert action.kind == "tool" and action.task == "denoise"
    assert set(planner.constrain(_obs({"haze": 0.9})).catalogue) == {"denoise_srmd", "denoise_nlm", "denoise_bm3d"}


def test_preserving_the_colours_avoids_the_tone_tasks():
    planner = ConstrainedPlanner(HeuristicPlanner(), parse("fix it but don't touch the colours"))
    assert not planner.allows_task("low_light") and not planner.allows_task("dehaze") and planner.allows_task("denoise")


@pytest.mark.parametrize(("words", "factor"), [("a bit gentler", 0.7), ("much stronger", 1.6)])
def test_strength_scales_the_chosen_params_within_the_tools_bounds(words: str, factor: float):
    plain = HeuristicPlanner().next_action(_obs({"noise": 0.5}))
    scaled = ConstrainedPlanner(HeuristicPlanner(), parse(words)).next_action(_obs({"noise": 0.5}))
    assert scaled.tool == plain.tool
    key = next(k for k in ("strength", "sigma") if k in plain.params)
    lo_hi = get_tool(plain.tool).Params.model_fields[key].metadata
    assert scaled.params[key] == pytest.approx(plain.params[key] * factor, rel=1e-3) or any(
        getattr(m, "le", None) == scaled.params[key] for m in lo_hi
    )
    assert "strength as asked" in scaled.reason


def test_a_planner_that_ignores_the_instructions_is_overruled():
    class Stubborn:  # a test double for a VLM that did not listen
        name = "stubborn"

        def next_action(self, obs):
            return Action(kind="tool", tool="dehaze_dcp", task="dehaze", params={})

    action = ConstrainedPlanner(Stubborn(), parse("no dehazing")).next_action(_obs({"haze": 0.8, "noise": 0.5}))
    assert action.tool != "dehaze_dcp" and action.task == "denoise"
    assert "rule out" in (action.fallback or "")


def test_a_task_asked_for_again_gets_a_fresh_start():
    from restora.planners.base import HistoryItem

    history = [HistoryItem(step=0, tool="denoise_srmd", task="denoise", params={"sigma": 20.0}, decision="accept", gain=0.1)]
    obs = _obs({"noise": 0.5}, history)
    assert HeuristicPlanner().next_action(obs).kind == "stop"  # done once: the plain planner skips it
    again = ConstrainedPlanner(HeuristicPlanner(), parse("denoise"), since_step=1).next_action(obs)
    assert again.kind == "tool" and again.task == "denoise"


# -- the session ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_session_restores_undoes_redoes_and_resets_exactly(tmp_path: Path, noisy: np.ndarray, services: SessionServices):
    with ChatSession.create(noisy, home=tmp_path, services=services) as s:
        original = _hash(s.image)
        r = s.say("remove the noise")
        assert r.changed and "I will denoise" in r.text
        denoised = _hash(s.image)
        assert denoised != original
        assert s.undo().changed and _hash(s.image) == original
        assert s.redo().changed and _hash(s.image) == denoised
        assert s.reset().changed and _hash(s.image) == original
        assert s.undo().changed and _hash(s.image) == denoised  # the reset is undone too
        assert s.redo().changed and _hash(s.image) == original  # and redone
        assert not s.redo().changed and "Nothing to redo" in s.redo().text

        r = s.reset()
        r = s.say("fix it")  # no constraint: the planner decides, and says so
        assert r.text.startswith("I will fix what I find.") and r.changed
        r = s.say("make it pop")
        assert not r.changed and "did not understand" in r.text and "'make it pop'" in r.text

        records = s.records()
        assert records[0].event == "start"
        kinds = [(x.action.kind, x.decision, x.action.planner == "user") for x in records[1:] if x.action.kind != "stop"]
        assert kinds[0] == ("tool", "accept", False)  # the agent's step
        assert ("rollback", "rollback", True) in kinds and ("tool", "accept", True) in kinds  # undo, redo by the person
        assert all(x.request for x in records[1:]), "every step says what the person asked"
        steps = [x.step for x in records[1:]]
        assert steps == sorted(steps) and len(set(steps)) == len(steps)


@pytest.mark.slow
def test_compare_keeps_the_candidates_and_pick_replaces_the_kept_step(tmp_path: Path, noisy: np.ndarray, services: SessionServices):
    with ChatSession.create(noisy, home=tmp_path, services=services) as s:
        s.say("remove the noise")
        kept = s.state["agent"]["accepted"]
        current = s.image_ref
        r = s.say("show me the other denoisers")
        assert not r.changed and s.image_ref == current
        cands = [c for c in r.compare["candidates"] if c.get("ref")]
        assert len(cands) >= 2 and {c["tool"] for c in cands} >= {"denoise_srmd", "denoise_nlm"}
        assert r.compare["replaces"] and r.compare["base"] == s.input_ref, "compared on the image before the denoise"
        assert all("overall" in c["scores"] and isinstance(c["gain"], float) for c in cands)
        assert s.messages[-1]["gallery"] == [c["ref"] for c in cands]
        other = next(i for i, c in enumerate(r.compare["candidates"], 1) if c.get("ref") and c["tool"] != kept[-1])
        chosen = r.compare["candidates"][other - 1]
        r = s.pick(other)
        assert r.changed and s.image_ref == chosen["ref"]
        assert s.state["agent"]["accepted"] == [chosen["tool"]], "the pick replaced the kept denoise"
        assert s.undo().changed and s.image_ref == current


@pytest.mark.slow
def test_keep_the_grain_puts_back_a_share_of_what_the_denoiser_removed(tmp_path: Path, noisy: np.ndarray, services: SessionServices):
    with ChatSession.create(noisy, home=tmp_path, services=services) as s:
        r = s.say("remove the noise but keep the grain")
        assert r.changed and "30%" in r.text
        agent = s.state["agent"]
        assert agent["accepted"][-1] == "keep_grain"
        before = s.ctx.store.get(agent["undo"][-2]["ref"])  # the denoiser's input
        denoised = s.ctx.store.get(agent["undo"][-1]["ref"])  # its output, under the grain
        np.testing.assert_allclose(s.image, np.clip(denoised + 0.3 * (before - denoised), 0, 1), atol=1e-6)
        s.grain(0.6)
        np.testing.assert_allclose(s.image, np.clip(denoised + 0.6 * (before - denoised), 0, 1), atol=1e-6)
        assert s.state["agent"]["accepted"].count("keep_grain") == 1, "a new share replaces the old one"
        s.undo()
        np.testing.assert_allclose(s.image, np.clip(denoised + 0.3 * (before - denoised), 0, 1), atol=1e-6)
        # a denoiser picked from a comparison keeps the grain share asked for
        r = s.compare("denoise")
        n, cand = next((i, c) for i, c in enumerate(r.compare["candidates"], 1) if c.get("ref") and c["tool"] != agent["accepted"][0])
        s.pick(n)
        picked = s.ctx.store.get(cand["ref"])
        np.testing.assert_allclose(s.image, np.clip(picked + 0.3 * (before - picked), 0, 1), atol=1e-6)
        assert s.state["agent"]["accepted"] == [cand["tool"], "keep_grain"]


@pytest.mark.slow
def test_step_by_step_approval_waits_and_obeys(tmp_path: Path, noisy: np.ndarray, services: SessionServices):
    with ChatSession.create(noisy, home=tmp_path, services=services, approval=True) as s:
        r = s.say("remove the noise")
        assert r.proposal is not None and not r.changed and "Approve?" in r.text
        first = (r.proposal["tool"], r.proposal["params"])
        r = s.answer("no")  # rejected: banned in this session; the next proposal comes
        assert f"Skipped {first[0]}" in r.text and not r.changed
        assert r.proposal is not None and (r.proposal["tool"], r.proposal["params"]) != first
        r = s.say("yes")  # a pending proposal takes the next message as the answer
        assert r.changed or "rolled back" in r.text
        assert [x.action.planner for x in s.records()[1:] if x.action.kind == "tool"] == ["heuristic, approved by the person"]
        while s.pending() is not None:
            r = s.answer(False)
        assert s.pending() is None


@pytest.mark.slow
def test_a_session_resumes_by_id_in_another_process(tmp_path: Path, noisy: np.ndarray, services: SessionServices):
    with ChatSession.create(noisy, home=tmp_path, services=services) as s:
        s.say("remove the noise")
        s.say("/reset")
        sid, image, undo = s.id, _hash(s.image), len(s.state["undo"])
    script = textwrap.dedent(
        f"""
        import json
        from restora.chat.session import ChatSession, SessionServices
        from restora.store import image_hash
        s = ChatSession.resume({sid!r}, home={str(tmp_path)!r}, services=SessionServices(allow={TOOLS!r}))
        before = dict(image=image_hash(s.image), undo=len(s.state["undo"]), history=s.history())
        s.undo()
        print(json.dumps(dict(before=before, after=image_hash(s.image), redo=s.can_redo)))
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["before"]["image"] == image and got["before"]["undo"] == undo
    assert got["before"]["history"][0] == "you: remove the noise" and got["before"]["history"][2] == "you: /reset"
    assert got["after"] != image and got["redo"], "the undo stack came back with the session"
    with ChatSession.resume(sid, home=tmp_path, services=services) as again:
        assert _hash(again.image) == got["after"], "the other process's undo was checkpointed"
    with pytest.raises(Exception, match="no session"):
        ChatSession.resume("0123456789ab", home=tmp_path)


def test_a_bad_file_is_refused_clearly_and_leaves_no_session(tmp_path: Path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    home = tmp_path / "home"
    with pytest.raises(Exception, match="notes.png"):
        ChatSession.create(bad, home=home, services=SessionServices(allow=TOOLS))
    assert ChatSession.list(home) == []


# -- restora chat ---------------------------------------------------------------------------------
def _noisy_file(path: Path, clean: np.ndarray) -> Path:
    noisy = clean + np.random.default_rng(1).normal(0, 20 / 255, clean.shape)
    Image.fromarray((np.clip(noisy, 0, 1) * 255 + 0.5).astype(np.uint8)).save(path)
    return path


def _chat(args: list[str], lines: str, env_home: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "RESTORA_SESSIONS": str(env_home)}
    return subprocess.run([sys.executable, "-m", "restora.cli", "chat", *args], input=lines, capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.mark.slow
def test_a_scripted_terminal_session_end_to_end(tmp_path: Path, clean_photo: np.ndarray):
    """The issue's script: denoise, undo, denoise keeping the grain, save, quit; then resume by id."""
    photo = _noisy_file(tmp_path / "photo.png", clean_photo)
    saved = tmp_path / "OUT.png"
    script = f"remove the noise\n/undo\nremove the noise, keep the grain\n/save {saved}\n/quit\n"
    proc = _chat([str(photo), "--allow", ",".join(TOOLS)], script, tmp_path / "home")
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "found moderate noise" in text or "found strong noise" in text or "found mild noise" in text, text
    assert "Undid turn 1" in text and "Put back 30% of the grain" in text
    assert f"saved {saved}" in text
    sid = text.split("kept. Resume: restora chat --resume ")[1].split()[0]
    out = np.asarray(Image.open(saved), np.float32) / 255
    assert out.shape == clean_photo.shape
    from restora.traces import read_trace

    records = read_trace(tmp_path / "OUT.trace.jsonl")
    assert records[0].event == "start" and records[-1].event == "end"
    steps = [r for r in records if r.event == "step"]
    assert [r.request for r in steps if r.action.kind == "tool"][-2:] == ["remove the noise, keep the grain"] * 2
    assert steps[-1].action.tool == "keep_grain" and steps[-1].action.params == {"share": 0.3}
    assert any(r.action.kind == "rollback" and r.request == "/undo" for r in steps)
    assert records[-1].accepted[-1] == "keep_grain"
    assert (tmp_path / "OUT.html").read_text().count("keep_grain") >= 1

    again = _chat(["--resume", sid], "/history\n/undo\n/quit\n", tmp_path / "home")
    assert again.returncode == 0, again.stderr
    assert "you: remove the noise, keep the grain" in again.stdout and "Undid turn 2" in again.stdout
    listed = _chat(["--list"], "", tmp_path / "home")
    assert sid in listed.stdout and "photo.png" in listed.stdout


@pytest.mark.slow
def test_ctrl_c_in_a_turn_leaves_the_session_as_it_was(tmp_path: Path, clean_photo: np.ndarray):
    """Ctrl-C while a turn runs: exit 130 with the resume command; the unfinished turn is not in
    the session, the finished one is."""
    big = np.tile(clean_photo, (3, 3, 1))  # slow enough to interrupt in its second turn
    photo = _noisy_file(tmp_path / "big.png", big)
    env = {**os.environ, "RESTORA_SESSIONS": str(tmp_path / "home")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "restora.cli", "chat", str(photo), "--allow", ",".join(TOOLS)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write("/compare denoise\n")
        proc.stdin.flush()
        seen = ""
        deadline = time.monotonic() + 240
        while "session " not in seen:
            seen += proc.stdout.readline()
            assert time.monotonic() < deadline
        sid = seen.split("session ")[1].split(":")[0]
        while "you> /compare denoise" not in seen:
            seen += proc.stdout.readline()
        time.sleep(1.0)  # inside the comparison (three denoisers on a 480 px photo)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert f"restora chat --resume {sid}" in stderr
    with ChatSession.resume(sid, home=tmp_path / "home", services=SessionServices(allow=TOOLS)) as s:
        assert s.messages == [] and s.comparison is None, "the interrupted message left nothing behind"


@pytest.mark.slow
def test_the_vlm_planner_gets_the_words_and_obeys_the_constraints(tmp_path: Path, noisy: np.ndarray, tiny_planner: Path):
    """The in-process VLM planner (the tiny random-weight Qwen2.5-VL, real transformers) in a
    session: the person's words are in the observation it gets and in the prompt it builds from
    it, and whatever it answers, only the task asked for runs (the tiny model's random answers fall
    back to the heuristic on the constrained observation, and say so)."""
    from restora.planners.vlm import TransformersBackend, VLMPlanner

    vlm = VLMPlanner(TransformersBackend(str(tiny_planner), max_tokens=32), max_retries=0)
    seen: list[Observation] = []

    class Watched:  # the real VLM planner, with the observations it was given kept for the assertions
        name = vlm.name if hasattr(vlm, "name") else "vlm"

        def next_action(self, obs):
            seen.append(obs)
            return vlm.next_action(obs)

    services = SessionServices(planner=Watched(), allow=TOOLS, turn_steps=1)
    words = "only denoise, a bit gentler please"
    with ChatSession.create(noisy, home=tmp_path / "home", services=services) as s:
        s.say(words)
        assert seen and all(o.request == words for o in seen)
        assert set(seen[0].catalogue) == {"denoise_srmd", "denoise_nlm", "denoise_bm3d"}, "the VLM sees only the tools allowed"
        messages, _ = vlm._step_messages(seen[0], {})
        assert words in json.dumps(messages), "the words are in the prompt the model is sent"
        tools = [r for r in s.records()[1:] if r.action.kind == "tool"]
        assert tools and all(r.action.task == "denoise" for r in tools), [(r.action.tool, r.action.task) for r in tools]
        assert all("strength as asked" in r.action.reason for r in tools)
