"""restora batch end to end on tiny real photos: poisoned inputs fail alone (a decompression bomb,
a truncated file, a tool that raises, a worker that segfaults, one past the time limit), a lock
keeps a second batch off the same OUT, a read-only or full output disk stops with a clear error
and an intact ledger, and kill -9 of the whole batch at seeded random moments, then a rerun,
gives every input done exactly once, pixel-identical to an uninterrupted run, nothing redone."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from restora.batch.engine import ledger_path, run_batch
from restora.batch.job import BatchSettings, Restorer

pytestmark = pytest.mark.data
ROOT = Path(__file__).resolve().parents[1]
RESTORA = [sys.executable, "-m", "restora.cli"]
FAST = ["--max-steps", "2", "--allow", "denoise_nlm,dejpeg_deblock", "--perception", "classical"]
SETTINGS = BatchSettings(max_steps=2, allow=["denoise_nlm", "dejpeg_deblock"], perception="classical")


def make_tree(data_dir: Path, root: Path, n: int) -> list[Path]:
    """``n`` tiny crops (64x48) of the shared photos in a nested tree, PNG and JPEG (q 40)."""
    photos = sorted((data_dir / "clean" / "kodak24").glob("*.png"))
    made = []
    for i in range(n):
        im = Image.open(photos[i % len(photos)]).convert("RGB")
        x, y = 60 + 37 * (i // len(photos)), 80
        crop = im.crop((x, y, x + 64, y + 48))
        folder = root / ["", "2019", "2019/roll 2", "scans"][i % 4]
        folder.mkdir(parents=True, exist_ok=True)
        p = folder / f"img{i:02d}.{'jpg' if i % 2 else 'png'}"
        crop.save(p, quality=40)
        made.append(p)
    return made


def ledger_rows(out: Path, read_only: bool = False) -> list[dict]:
    con = sqlite3.connect(f"file:{ledger_path(out)}?immutable=1", uri=True) if read_only else sqlite3.connect(ledger_path(out))
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute("SELECT * FROM files ORDER BY source")]
    finally:
        con.close()


def outputs(out: Path) -> dict[str, Path]:
    return {p.relative_to(out).as_posix(): p for p in out.rglob("img*.*") if "restora-batch" not in p.parts and not p.name.startswith(".")}


class PoisonRestorer(Restorer):
    """A test double of the worker's restorer for what cannot be made to happen on a real photo
    on demand: a worker that segfaults, an image that hangs, a tool that raises a non-restora
    error (as a buggy native library would). Everything else is the real restorer."""

    def _restore(self, job, out):
        if "segv" in job.name:
            os.kill(os.getpid(), signal.SIGSEGV)
        if "slow" in job.name:
            time.sleep(120)
        if "toolraise" in job.name:
            real = self.toolbox.run

            def boom(name, image, params=None):
                raise RuntimeError(f"{name} blew up")

            self.toolbox.run = boom
            try:
                return super()._restore(job, out)
            finally:
                self.toolbox.run = real
        return super()._restore(job, out)


def test_poisoned_inputs_fail_alone(data_dir: Path, tmp_path: Path):
    src = tmp_path / "in"
    good = make_tree(data_dir, src, 3)
    Image.new("L", (10000, 6000)).save(src / "bomb.png")  # 60 MP > the 50 MP limit: refused before decoding
    (src / "truncated.jpg").write_bytes(good[1].read_bytes()[:300])
    for name in ("segv", "slow", "toolraise"):
        (src / f"{name}.jpg").write_bytes(good[1].read_bytes())  # JPEG q40: the agent will run a dejpeg tool
    out = tmp_path / "out"
    report = run_batch([src], out, SETTINGS, workers=2, timeout=20, restorer=PoisonRestorer)  # room for a loaded machine
    rows = {Path(r["source"]).name: r for r in ledger_rows(out)}
    assert {n for n, r in rows.items() if r["state"] == "done"} == {p.name for p in good}, {n: r["error"] for n, r in rows.items()}
    errors = {n: r["error"] for n, r in rows.items() if r["state"] == "failed"}
    assert "exceeds the limit of 50 megapixels" in errors["bomb.png"]
    assert "truncated or corrupt" in errors["truncated.jpg"]
    assert "SIGSEGV" in errors["segv.jpg"] and "worker process died" in errors["segv.jpg"]
    assert "took longer than 20s" in errors["slow.jpg"]
    assert errors["toolraise.jpg"].startswith("RuntimeError: ") and "blew up" in errors["toolraise.jpg"]
    assert len(report.results) == 8
    summary = (out / "summary.json").read_text()
    assert "SIGSEGV" in summary and (out / "index.html").read_text().count("<tr>") >= 8

    # a rerun retries the failures (not the done ones); after 3 failures they are left alone
    fast_fail = BatchSettings(**{**SETTINGS.__dict__})
    for _ in range(2):
        for n in ("segv", "slow", "toolraise"):
            (src / f"{n}.jpg").unlink(missing_ok=True)
        again = run_batch([src], out, fast_fail, workers=1)
        assert sorted(Path(r["source"]).name for r in again.results) == ["bomb.png", "truncated.jpg"]
    third = run_batch([src], out, fast_fail, workers=1)
    assert third.results == [] and third.sync["gave_up"] == 2
    assert {Path(r["source"]).name: r["failures"] for r in ledger_rows(out) if r["state"] == "failed"} == {"bomb.png": 3, "truncated.jpg": 3}
    redo = run_batch([src], out, fast_fail, workers=1, redo="failed")
    assert len(redo.results) == 2


def _run_cli(src: Path, out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(
        [*RESTORA, "batch", str(src), "-o", str(out), "--workers", "2", *FAST, *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, start_new_session=True, text=True,
        # Ctrl-C as from a shell, even when the tests run as a background job (which starts with SIGINT
        # ignored, and the CLI rightly keeps an inherited ignore)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_kill_9_at_random_moments_then_resume(data_dir: Path, tmp_path: Path, seed: int):
    src = tmp_path / "in"
    make_tree(data_dir, src, 10)
    reference = tmp_path / "reference"
    run_batch([src], reference, SETTINGS, workers=1)
    expected = {k: p.read_bytes() for k, p in outputs(reference).items()}
    assert len(expected) == 10

    out = tmp_path / "out"
    rng = random.Random(seed)
    for _ in range(2):  # two kill -9 of the whole batch (driver and workers) at random moments
        proc = _run_cli(src, out)
        time.sleep(rng.uniform(1.0, 14.0))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.communicate()
    finished = {k: os.stat(p) for k, p in outputs(out).items()}
    for k, p in outputs(out).items():  # nothing half-written stands under a final name
        assert p.read_bytes() == expected[k], f"{k} differs from the uninterrupted run"

    proc = _run_cli(src, out)
    stdout, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 0, stderr
    got = outputs(out)
    assert sorted(got) == sorted(expected)
    for k, p in got.items():
        assert p.read_bytes() == expected[k], f"{k} differs from the uninterrupted run"
        with Image.open(p) as im:
            im.load()  # decodes whole
    for k, st in finished.items():  # finished before a kill: not redone (same file, same inode)
        now = os.stat(got[k])
        assert (now.st_ino, now.st_mtime_ns) == (st.st_ino, st.st_mtime_ns), f"{k} was redone"
    rows = ledger_rows(out)
    assert len(rows) == 10 and {r["state"] for r in rows} == {"done"}
    assert all(r["done_count"] == 1 for r in rows), [(r["source"], r["done_count"]) for r in rows]
    assert not [p for p in out.rglob("*.part")], "temporary files left behind"
    con = sqlite3.connect(ledger_path(out))
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()


def test_a_second_batch_on_the_same_out_is_refused(data_dir: Path, tmp_path: Path):
    from typer.testing import CliRunner

    from restora.batch.ledger import BatchLock
    from restora.cli import app

    src = tmp_path / "in"
    make_tree(data_dir, src, 1)
    out = tmp_path / "out"
    with BatchLock(out):  # as a running batch holds it
        result = CliRunner().invoke(app, ["batch", str(src), "-o", str(out), *FAST])
    assert result.exit_code == 2
    assert "another restora batch is writing to" in result.output and f"pid {os.getpid()}" in result.output
    assert not ledger_path(out).exists()


def _mount_tmpfs(where: Path, size: str) -> None:
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")


def test_a_full_disk_stops_with_a_clear_error_and_an_intact_ledger(data_dir: Path, tmp_path: Path):
    from typer.testing import CliRunner

    from restora.cli import app

    src = tmp_path / "in"
    make_tree(data_dir, src, 8)
    out = tmp_path / "small"
    _mount_tmpfs(out, "160k")
    try:
        result = CliRunner().invoke(app, ["batch", str(src), "-o", str(out), *FAST])
        assert result.exit_code == 2, result.output
        assert "No space left on device" in result.output or "disk is full" in result.output
        rows = ledger_rows(out)
        assert {r["state"] for r in rows} <= {"done", "pending", "running"}  # no image blamed for the disk
        con = sqlite3.connect(ledger_path(out))
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        con.close()
        for r in rows:
            if r["state"] == "done":
                with Image.open(r["output"]) as im:
                    im.load()
    finally:
        subprocess.run(["umount", str(out)], check=False)


def test_a_read_only_output_folder_is_a_clear_error(data_dir: Path, tmp_path: Path):
    from typer.testing import CliRunner

    from restora.cli import app

    src = tmp_path / "in"
    make_tree(data_dir, src, 1)
    out = tmp_path / "ro"
    _mount_tmpfs(out, "4m")
    try:
        first = CliRunner().invoke(app, ["batch", str(src), "-o", str(out), *FAST, "--workers", "1"])
        assert first.exit_code == 0, first.output
        before = ledger_rows(out)
        make_tree(data_dir, src / "new", 1)
        subprocess.run(["mount", "-o", "remount,ro", str(out)], check=True)
        result = CliRunner().invoke(app, ["batch", str(src), "-o", str(out), *FAST, "--workers", "1"])
        assert result.exit_code == 2
        assert f"the output folder {out} is not writable" in result.output
        assert ledger_rows(out, read_only=True) == before
    finally:
        subprocess.run(["umount", str(out)], check=False)


def test_ctrl_c_finishes_the_images_in_flight_and_says_how_to_resume(data_dir: Path, tmp_path: Path):
    src = tmp_path / "in"
    make_tree(data_dir, src, 20)  # enough that a busy machine cannot finish them all before the signal lands
    out = tmp_path / "out"
    proc = _run_cli(src, out)
    for line in proc.stderr:  # the first finished image: the batch is under way
        if " -> " in line:
            break
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole process group
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "resume with: restora batch" in stderr
    rows = ledger_rows(out)
    assert {r["state"] for r in rows} <= {"done", "pending"}  # the images in flight finished; none left running
    assert 1 <= sum(r["state"] == "done" for r in rows) < 20
    assert not list(out.rglob("*.part"))
