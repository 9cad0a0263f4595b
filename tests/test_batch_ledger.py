"""The batch's inputs and ledger, without restoring anything: the walk never follows symlinks
and honours --glob/--exclude, a name clash skips the later input, the ledger keeps what is done,
retries what failed or was cut off, picks up new and changed files, refuses other settings, and
an image finished just before a kill is recorded from its receipt instead of being redone."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from restora.batch.engine import _recover
from restora.batch.job import Job, side_path
from restora.batch.ledger import RETRY_LIMIT, BatchLock, BatchLockedError, Ledger, LedgerError
from restora.batch.scan import scan_inputs
from restora.cli.batch import resume_command
from restora.errors import RestoraError


def touch(p: Path, data: bytes = b"x") -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def test_the_walk_mirrors_the_tree_and_never_follows_symlinks(tmp_path: Path):
    src, outside = tmp_path / "in", tmp_path / "outside"
    touch(src / "a.png")
    touch(src / "2019" / "b.JPG")
    touch(src / "2019" / "drafts" / "c.png")
    touch(src / "notes.txt")
    touch(outside / "secret.png")
    (src / "link_dir").symlink_to(outside, target_is_directory=True)
    (src / "link.png").symlink_to(outside / "secret.png")
    out = src / "restored"  # the output folder inside the input: never walked
    touch(out / "a.png")
    jobs, skipped = scan_inputs([src], out)
    assert [j.name for j in jobs] == ["2019/b", "2019/drafts/c", "a"]
    assert all(j.source.startswith(str(src)) for j in jobs) and not skipped
    jobs, _ = scan_inputs([src], out, globs=["*.jpg"])
    assert [j.name for j in jobs] == ["2019/b"]  # case-insensitive
    jobs, _ = scan_inputs([src], out, excludes=["*/drafts"])
    assert [j.name for j in jobs] == ["2019/b", "a"]
    jobs, _ = scan_inputs([src], out, globs=["2019/*"], excludes=["*/c.png"])
    assert [j.name for j in jobs] == ["2019/b"]


def test_a_name_clash_skips_the_later_input_with_the_reason(tmp_path: Path):
    src = tmp_path / "in"
    touch(src / "a.png")
    touch(src / "a.jpg")
    jobs, skipped = scan_inputs([src], tmp_path / "out")
    assert [Path(j.source).name for j in jobs] == ["a.jpg"]
    (reason,) = [r for _, r in skipped.values()]
    assert "would be written as 'a'" in reason
    (tmp_path / "empty").mkdir()
    with pytest.raises(RestoraError, match="no images in folder"):
        scan_inputs([tmp_path / "empty"], tmp_path / "x")


def job(name: str, size: int = 1, mtime: int = 1) -> Job:
    return Job(source=f"/in/{name}.png", name=name, size=size, mtime_ns=mtime)


def test_the_ledger_resumes_retries_and_redoes(tmp_path: Path):
    out = tmp_path / "out"
    with Ledger.open(out / "l.sqlite") as led:
        assert led.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        led.check_settings({"fmt": "keep"}, None)
        assert led.sync([job("a"), job("b"), job("c")], None)["new"] == 3
        touch(out / "a.png")
        for name, state in (("a", "done"), ("b", "failed")):
            led.claim(f"/in/{name}.png")
            led.finish({"source": f"/in/{name}.png", "state": state, "output": str(out / "a.png"), "error": "boom", "tool_calls": 2})
        led.claim("/in/c.png")  # cut off while running
        stats = led.sync([job("a"), job("b"), job("c"), job("d")], None)
        assert stats == {"new": 1, "done": 1, "todo": 3, "gave_up": 0}
        assert [r["name"] for r in led.todo()] == ["b", "c", "d"]
        # a changed file is done again; a failure is retried until RETRY_LIMIT failures
        stats = led.sync([job("a", mtime=2), job("b"), job("c"), job("d")], None)
        assert stats["todo"] == 4
        for _ in range(RETRY_LIMIT):
            led.claim("/in/b.png")
            led.finish({"source": "/in/b.png", "state": "failed", "error": "boom"})
        assert led.sync([job("a", mtime=2), job("b"), job("c"), job("d")], None)["gave_up"] == 1
        assert "b" not in [r["name"] for r in led.todo()]
        led.sync([job("a", mtime=2), job("b"), job("c"), job("d")], "failed")
        assert "b" in [r["name"] for r in led.todo()]
        # an input no longer listed (and not done) is skipped, with the reason
        led.sync([job("a", mtime=2), job("b"), job("c")], None)
        (d,) = [r for r in led.rows() if r["name"] == "d"]
        assert d["state"] == "skipped" and "not among" in d["error"]
        # other settings are refused, unless everything is redone
        with pytest.raises(LedgerError, match="other settings .*fmt: 'keep' -> 'jpg'"):
            led.check_settings({"fmt": "jpg"}, None)
        led.check_settings({"fmt": "jpg"}, "all")


def test_an_image_finished_before_a_kill_is_recovered_from_its_receipt(tmp_path: Path):
    out = tmp_path / "out"
    a, b = job("a"), job("b")
    with Ledger.open(out / "l.sqlite") as led:
        led.sync([a, b], None)
        led.claim(a.source)
        led.claim(b.source)  # both running when the driver was killed; only a had finished
        target = touch(out / "a.png")
        receipt = {"source": a.source, "name": "a", "state": "done", "output": str(target), "size": 1, "mtime_ns": 1, "tool_calls": 3, "kept": ["denoise_nlm"]}
        touch(side_path(out, "receipts", "a", ".json"), json.dumps(receipt).encode())
        assert _recover(led, out) == 1
        rows = {r["name"]: r for r in led.rows()}
        assert rows["a"]["state"] == "done" and rows["a"]["done_count"] == 1 and rows["a"]["kept"] == ["denoise_nlm"]
        assert rows["b"]["state"] == "running"  # redone by the next run


def test_the_lock_is_exclusive_and_names_its_holder(tmp_path: Path):
    with BatchLock(tmp_path):
        with pytest.raises(BatchLockedError, match=f"pid {os.getpid()}"):
            with BatchLock(tmp_path):
                pass
    with BatchLock(tmp_path):  # released on exit
        pass


def test_the_resume_command_drops_redo():
    assert resume_command(["restora", "batch", "in dir", "-o", "out", "--redo=failed"]) == "restora batch 'in dir' -o out"
