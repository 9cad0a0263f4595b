"""The command line as a person meets it: progress that counts real tool calls, the closing table,
output file modes, Ctrl-C, --allow errors, tables or plain lines, perceive on folders, --version."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from rich.console import Console
from typer.testing import CliRunner

import restora
from restora.cli import app, common
from restora.cli.run import Finished, Tally, progress_line, summary_rows
from restora.traces import read_trace

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "damaged.png"
runner = CliRunner()


def _noisy_photo(path: Path, size: int, which: str = "astronaut", seed: int = 0) -> Path:
    """A crop of a scikit-image sample photo with Gaussian noise (sigma 20/255), saved as PNG."""
    from skimage import data

    photo = getattr(data, which)()[:size, :size].astype(np.float32) / 255
    noisy = photo + np.random.default_rng(seed).normal(0, 20 / 255, photo.shape).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.clip(noisy, 0, 1) * 255 + 0.5).astype(np.uint8)).save(path)
    return path


def test_version():
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.strip() == f"restora {restora.__version__}"


def test_tally_counts_the_tool_calls_made_not_the_step_limit():
    t = Tally(limit=8)
    assert t.counter() == "0/8 tool calls"
    for kind, data in [
        ("loaded", {}),
        ("perceived", {}),
        ("plan", {"action": {"tool": "denoise_nlm"}}),
        ("decide", {"decision": "accept", "action": {"tool": "denoise_nlm"}}),
        ("plan", {"action": {"tool": "dehaze_dcp"}}),
        ("decide", {"decision": "rollback", "action": {"tool": "dehaze_dcp"}}),
        ("rollback", {"action": {"tool": "denoise_nlm"}}),  # undoing is not a tool call
        ("stop", {"reason": "clean"}),
    ]:
        t.on_event(kind, data)
    assert t.calls == 2 and t.counter() == "2/8 tool calls"
    t.finish(tool_calls=2, kept=0)
    assert t.counter() == "2 tool calls, 0 kept"
    none = Tally(limit=8)
    none.finish(tool_calls=0, kept=0)
    assert none.counter() == "0 tool calls, 0 kept"
    f = Finished(Path("in/a.jpg"), ["noise", "haze"], ["denoise_nlm"], 1, 2.04, Path("out/a.png"))
    assert progress_line(2, 5, f.path, f, None) == "[2/5] in/a.jpg: 1 tool call, 1 kept, 2.0s -> out/a.png"
    assert progress_line(3, 5, Path("b.jpg"), None, "boom") == "[3/5] b.jpg: failed"
    assert summary_rows([f, Finished(Path("c.png"), output=Path("out/c.png"))]) == [
        ["in/a.jpg", "noise, haze", "denoise_nlm", "1", "2.0s", "out/a.png"],
        ["c.png", "nothing", "nothing kept", "0", "0.0s", "out/c.png"],
    ]


def test_run_shows_real_tool_calls_and_a_closing_table(tmp_path: Path):
    clean = tmp_path / "in" / "clean.png"
    clean.parent.mkdir()
    from skimage import data

    Image.fromarray(data.astronaut()[:96, :96]).save(clean)  # a clean crop: little or nothing to do
    damaged = tmp_path / "in" / "damaged.png"
    damaged.write_bytes(EXAMPLE.read_bytes())
    out = tmp_path / "out"
    res = runner.invoke(app, ["run", str(tmp_path / "in"), "-o", str(out), "--max-steps", "8"])
    assert res.exit_code == 0, res.output
    assert "/8" not in res.output, "finished images show their real count, not the step limit"
    for stem in ("clean", "damaged"):
        calls = read_trace(out / f"{stem}.trace.jsonl")[-1].tool_calls
        assert calls < 8
        noun = "call" if calls == 1 else "calls"
        line = next(x for x in res.output.splitlines() if x.startswith("[") and f"{stem}.png:" in x)
        assert f": {calls} tool {noun}, " in line and line.endswith(f"-> {out / stem}.png"), line
        row = next(x for x in res.output.splitlines() if x.startswith(str(tmp_path / "in" / f"{stem}.png") + " "))
        assert row.split()[-1] == str(out / f"{stem}.png") and f" {calls} " in row, row
    assert "IMAGE" in res.output and "FOUND" in res.output and "DONE" in res.output  # plain header: not a terminal
    assert f"outputs in {out}" in res.output
    assert "noise" in next(x for x in res.output.splitlines() if x.startswith(str(damaged) + " "))


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_outputs_get_the_mode_the_umask_gives(tmp_path: Path, umask: int, mode: int):
    from restora.imageio import save_image, write_text_atomic

    old = os.umask(umask)
    try:
        png = save_image(tmp_path / "a.png", np.zeros((8, 8, 3), np.float32))
        page = write_text_atomic(tmp_path / "a.html", "<p>hi</p>")
        (tmp_path / "b.png").write_bytes(b"old")
        os.chmod(tmp_path / "b.png", 0o600)
        replaced = save_image(tmp_path / "b.png", np.ones((8, 8, 3), np.float32))  # replacing makes a new file
    finally:
        os.umask(old)
    for p in (png, page, replaced):
        assert stat.S_IMODE(p.stat().st_mode) == mode, (p, oct(p.stat().st_mode))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.html", "a.png", "b.png"], "no temporary file left"


def test_run_outputs_follow_the_umask(tmp_path: Path):
    old = os.umask(0o027)
    try:
        res = runner.invoke(app, ["run", str(EXAMPLE), "-o", str(tmp_path / "out"), "--max-steps", "1", "--allow", "denoise_nlm", "-q"])
    finally:
        os.umask(old)
    assert res.exit_code == 0, res.output
    for suffix in (".png", ".trace.jsonl", ".html"):
        p = tmp_path / "out" / f"damaged{suffix}"
        assert stat.S_IMODE(p.stat().st_mode) == 0o640, (p, oct(p.stat().st_mode))


def test_allow_naming_an_unavailable_tool_says_how_to_get_it(tmp_path: Path):
    from restora.tools import list_tools

    missing = [(n, t.availability()) for n, t in list_tools().items() if t.availability() is not None]
    if not missing:
        pytest.skip("every tool's weights are present here: no unavailable tool to name")
    name, reason = missing[0]
    res = runner.invoke(app, ["run", str(EXAMPLE), "-o", str(tmp_path / "out"), "--allow", f"denoise_nlm,{name}"])
    assert res.exit_code == 2, res.output
    assert f"{name} is not available here" in res.output
    assert "restora zoo fetch" in res.output or "RESTORA_ZOO" in res.output, res.output  # how to make it available
    assert not (tmp_path / "out").exists(), "nothing runs"


def test_allow_naming_an_unknown_tool_lists_the_known_ones(tmp_path: Path):
    from restora.tools.registry import tool_names

    res = runner.invoke(app, ["run", str(EXAMPLE), "-o", str(tmp_path / "out"), "--allow", "denoise_nlm,sharpen_magic"])
    assert res.exit_code == 2, res.output
    assert "unknown tool 'sharpen_magic'" in res.output and "known tools: " in res.output
    assert all(n in res.output for n in tool_names())
    assert not (tmp_path / "out").exists()


def test_an_empty_folder_is_an_error_naming_it(tmp_path: Path):
    empty = tmp_path / "nothing here"
    (empty / "sub").mkdir(parents=True)
    (empty / "notes.txt").write_text("not an image")
    for args in (["run", str(EXAMPLE), str(empty), "-o", str(tmp_path / "out")], ["perceive", str(empty), str(EXAMPLE)]):
        res = runner.invoke(app, args)
        assert res.exit_code == 2, res.output
        assert f"no images in folder {empty}" in " ".join(res.output.split()), res.output
    assert not (tmp_path / "out").exists()


def test_perceive_takes_folders_and_json_is_always_a_list(tmp_path: Path):
    folder = tmp_path / "photos"
    _noisy_photo(folder / "2019" / "a.png", 64)
    _noisy_photo(folder / "b.png", 64, "coffee")
    (folder / "broken.png").write_text("not an image")
    res = runner.invoke(app, ["perceive", str(folder), "--json"])
    assert res.exit_code == 1, res.output  # one input failed: named, the others reported
    entries = json.loads(res.stdout)
    assert [e["path"] for e in entries] == [str(folder / "2019" / "a.png"), str(folder / "b.png"), str(folder / "broken.png")]
    assert all(set(e) == {"path", "report", "error"} for e in entries)
    assert entries[0]["report"]["findings"]["noise"]["present"] and entries[0]["error"] is None
    assert entries[2]["report"] is None and "not an image" in entries[2]["error"]
    single = runner.invoke(app, ["perceive", str(folder / "b.png"), "--json"])
    assert single.exit_code == 0
    [alone] = json.loads(single.stdout)  # one image gives the same shape as many
    assert alone["path"] == entries[1]["path"] and alone["report"]["findings"] == entries[1]["report"]["findings"]
    twins = runner.invoke(app, ["perceive", str(folder / "b.png"), str(folder / "2019"), str(folder / "b.png"), "--json"])
    assert twins.exit_code == 0, twins.output  # perceive writes nothing: inputs sharing a stem are fine
    assert [e["path"] for e in json.loads(twins.stdout)] == [str(folder / "b.png"), str(folder / "2019" / "a.png"), str(folder / "b.png")]


def test_tools_and_zoo_list_print_one_plain_line_each_without_a_terminal():
    from restora.model_zoo import list_cards
    from restora.tools import list_tools

    res = runner.invoke(app, ["tools"])
    assert res.exit_code == 0
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["TOOL", "TASK", "KIND", "COST", "AVAILABLE"]
    tools = list_tools()
    assert len(lines) == 1 + len(tools) and not any(c in res.stdout for c in "│┃━")
    for line, (name, cls) in zip(lines[1:], tools.items(), strict=True):
        assert line.split()[0] == name
        if cls.availability() is None:
            assert line.split()[4] == "yes", line
        else:
            assert line.split()[4] == "no:" and len(line) < 140, line  # a short reason, not the paragraph
    zoo = runner.invoke(app, ["zoo", "list"])
    assert zoo.exit_code == 0
    lines = zoo.stdout.splitlines()
    assert len(lines) == 1 + len(list_cards()) and lines[0].startswith("CARD")
    assert all(" yes (" in line or " no: " in line for line in lines[1:]), lines


@pytest.mark.parametrize("width", [60, 80, 120, 200])
def test_tables_fit_the_terminal(monkeypatch: pytest.MonkeyPatch, width: int):
    from restora.model_zoo import list_cards
    from restora.tools import list_tools

    console = Console(force_terminal=True, width=width, color_system=None, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    monkeypatch.setattr(common, "out", console)
    for args in (["tools"], ["zoo", "list"]):
        res = runner.invoke(app, args)
        assert res.exit_code == 0, res.output
        text = console.export_text()
        if "┃" in text:  # a table that fits, or else plain lines that the terminal may wrap
            assert max(len(line) for line in text.splitlines()) <= width, (args, width)
        else:
            assert len(text.splitlines()) == 1 + (len(list_tools()) if args == ["tools"] else len(list_cards()))
        assert "┃" in text or width < 100, "a wide terminal gets a table"


@pytest.mark.slow
@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_stops_after_the_current_image_and_leaves_no_partial_files(tmp_path: Path, presses: int):
    """A real `restora run` in a subprocess, Ctrl-C'd once its first image is written: exit 130
    with a message naming what finished; no image starts after the first Ctrl-C; the one running
    finishes (one press) or is stopped and its files removed (two presses); no `.part` file stays."""
    inputs = tmp_path / "in"
    _noisy_photo(inputs / "a.png", 96, "astronaut", 0)
    _noisy_photo(inputs / "b.png", 512, "astronaut", 1)  # big: still running when Ctrl-C comes
    _noisy_photo(inputs / "c.png", 96, "coffee", 2)
    _noisy_photo(inputs / "d.png", 96, "chelsea", 3)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "restora.cli", "run", str(inputs), "-o", str(out), "--max-steps", "4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as from a shell, even under a background job
    )
    try:
        deadline = time.monotonic() + 240
        while not (out / "a.html").exists():  # the page is the last file an image gets
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the first image did not finish in time"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)  # first: finish the image being restored, start no other
        if presses == 2:
            time.sleep(0.5)
            proc.send_signal(signal.SIGINT)  # second: stop now
        stdout, stderr = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, (stdout, stderr)
    assert not [p for p in out.rglob("*") if p.name.endswith(".part")], sorted(out.rglob("*"))
    names = sorted(p.name for p in out.iterdir())
    finished = sorted({n.split(".")[0] for n in names})
    if presses == 2:
        assert finished == ["a"], names  # b was stopped and its files removed; c and d never started
    else:
        assert finished in (["a"], ["a", "b"]), names  # b finishes (or had not started); c and d never start
    assert names == sorted(f"{x}{s}" for x in finished for s in (".html", ".png", ".trace.jsonl")), "whole images only"
    for x in finished:
        records = read_trace(out / f"{x}.trace.jsonl")
        assert records[0].event == "start" and records[-1].event == "end"
        assert Image.open(out / f"{x}.png").size == Image.open(inputs / f"{x}.png").size
        assert str(inputs / f"{x}.png") in stdout, "the closing table lists the finished images"
    assert "Ctrl-C" in stderr and f"interrupted: {len(finished)} of 4 images finished" in stderr, stderr
    assert str(inputs / "a.png") in stderr.split("interrupted:")[1], "the message names what finished"
