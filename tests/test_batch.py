"""restora.batch: one failing job fails alone (here and in worker processes, also when a worker
process dies), and output names are a pure function of the input path."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from restora.batch import JobPool, NameClashError, expand_inputs, output_name, run_jobs
from restora.errors import RestoraError


def half(x: int) -> float:
    if x == 3:
        raise RestoraError("three is not allowed")
    if x == 4:
        raise ZeroDivisionError("four")
    return x / 2


def die_on(x: int, bad: int) -> int:
    """A job that kills its worker process outright (as a segfault or the OOM killer would)."""
    if x == bad:
        os._exit(3)
    return x * 10


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failing_job_fails_alone_and_order_is_kept(workers: int):
    seen = []
    done = run_jobs(half, [(x,) for x in range(6)], workers=workers, on_done=lambda d: seen.append(d.index))
    assert [d.index for d in done] == list(range(6))
    assert sorted(seen) == list(range(6))  # every job reported once, failures too
    assert [d.value for d in done if d.ok] == [0.0, 0.5, 1.0, 2.5]
    assert done[3].error == "three is not allowed"  # restora's own errors speak for themselves
    assert done[4].error == "ZeroDivisionError: four"  # others are named by type
    assert not done[3].ok and done[3].value is None


def test_a_worker_process_that_dies_fails_its_job_only():
    jobs = [(x, 2) for x in range(6)]
    done = run_jobs(die_on, jobs, workers=2)
    assert [d.value for d in done if d.ok] == [0, 10, 30, 40, 50]
    assert not done[2].ok and "worker process died" in done[2].error


def test_a_job_pool_keeps_its_workers_between_calls():
    with JobPool(workers=2) as pool:
        first = pool.run(_pid, [() for _ in range(4)])
        second = pool.run(_pid, [() for _ in range(4)])
    pids = {d.value for d in first} | {d.value for d in second}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2  # the same two processes served both


def _pid() -> int:
    return os.getpid()


def test_output_names_mirror_folders_and_do_not_depend_on_the_other_inputs(tmp_path: Path):
    from restora.imageio import save_image

    img = np.zeros((8, 8, 3), np.float32)
    for rel in ("a.png", "sub/b.jpg", "sub/deeper/c.png"):
        save_image(tmp_path / "in" / rel, img)
    save_image(tmp_path / "solo.png", img)
    items = expand_inputs([tmp_path / "in", tmp_path / "solo.png"])
    assert {i.name.as_posix() for i in items} == {"a", "sub/b", "sub/deeper/c", "solo"}
    alone = expand_inputs([tmp_path / "solo.png"])
    assert alone[0].name == next(i.name for i in items if i.path.name == "solo.png")
    c = next(i for i in items if i.path.name == "c.png")
    assert c.output(tmp_path / "out", ".trace.jsonl") == tmp_path / "out" / "sub" / "deeper" / "c.trace.jsonl"
    assert output_name(tmp_path / "in" / "sub" / "b.jpg", root=tmp_path / "in") == Path("sub/b")


def test_two_inputs_with_one_output_name_are_an_error_before_anything_runs(tmp_path: Path):
    from restora.imageio import save_image

    img = np.zeros((8, 8, 3), np.float32)
    save_image(tmp_path / "x" / "cat.png", img)
    save_image(tmp_path / "y" / "cat.png", img)
    with pytest.raises(NameClashError, match="cat.png and .*cat.png would both be written as 'cat'"):
        expand_inputs([tmp_path / "x" / "cat.png", tmp_path / "y" / "cat.png"])
