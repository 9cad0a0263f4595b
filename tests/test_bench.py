"""restora bench mio: cases, prefix cache, strategies, rank_pct, results.json format, determinism.

Tests restrict the library with ``allow`` (fast classical tools) and use tiny crops so the whole
file runs in well under a minute; the full library runs in the benchmark itself.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from restora.bench import COMBOS, GROUPS, STRATEGIES, CaseRunner, rank_pct
from restora.cases import (
    case_seed,
    clean_images,
    load_clean,
    make_case,
    parse_combos,
)
from restora.bench.mio import run_mio
from restora.planners.search import PrefixCache
from restora.quality.fidelity import psnr
from restora.cli import app
from restora.quality import QualityScorer
from restora.taxonomy import RESTORATION_ORDER, Task
from restora.tools import ToolBox

FAST = ["denoise_nlm", "denoise_bm3d", "dejpeg_deblock", "dehaze_dcp", "dehaze_clahe", "derain_guided"]


@pytest.fixture(scope="module")
def kodak(data_dir: Path) -> Path:
    return data_dir / "clean" / "kodak24"


@pytest.fixture(scope="module")
def scorer() -> QualityScorer:
    return QualityScorer()


@pytest.fixture(scope="module")
def noise_jpeg_case(kodak: Path):
    clean = load_clean(kodak / "kodim05.png", 96)
    return make_case(clean, "kodim05.png", "noise+jpeg", seed=0)


# -- cases -----------------------------------------------------------------------------------
def test_the_sixteen_combinations_in_three_groups():
    assert [len(GROUPS[g]) for g in "ABC"] == [8, 4, 4]
    assert len(set(COMBOS)) == 16
    assert parse_combos(None) == list(COMBOS)
    with pytest.raises(ValueError, match="did you mean"):
        parse_combos("noise+jpge")
    with pytest.raises(ValueError, match="synthesis-only"):
        parse_combos("noise+moire")


def test_same_image_combo_and_seed_give_the_same_input_bytes(kodak: Path):
    clean = load_clean(kodak / "kodim01.png", 64)
    a = make_case(clean, "kodim01.png", "rain+haze", seed=0)
    b = make_case(clean, "kodim01.png", "rain+haze", seed=0)
    c = make_case(clean, "kodim01.png", "rain+haze", seed=1)
    d = make_case(clean, "kodim02.png", "rain+haze", seed=0)
    assert a.degraded.tobytes() == b.degraded.tobytes()
    assert a.degraded.tobytes() != c.degraded.tobytes()
    assert a.seed != d.seed  # each image gets its own severities
    assert list(a.labels) == ["haze", "rain"]  # formation order
    assert a.degraded.shape == clean.shape == (64, 64, 3)
    # the input is what a saved 8-bit file holds
    assert np.array_equal(a.degraded, np.round(a.degraded * 255) / 255)
    assert case_seed(0, "x.png", "haze+rain") == case_seed(0, "x.png", "rain+haze")


def test_clean_images_sorted_limited_and_named_uniquely(tmp_path: Path, kodak: Path):
    imgs = clean_images([kodak], limit=3)
    assert [i.name for i in imgs] == ["kodim01.png", "kodim02.png", "kodim03.png"]
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        d.mkdir()
        (d / "same.png").write_bytes((kodak / "kodim01.png").read_bytes())
    assert [i.name for i in clean_images([a, b])] == ["a/same.png", "b/same.png"]
    with pytest.raises(FileNotFoundError):
        clean_images([tmp_path / "missing"])


# -- rank_pct and the enumeration ----------------------------------------------------------------
def test_rank_pct_on_a_hand_checkable_enumeration():
    pipelines = [20.0, 22.0, 24.0, 26.0]
    assert rank_pct(26.0, pipelines) == 100.0
    assert rank_pct(24.0, pipelines) == 75.0
    assert rank_pct(23.0, pipelines) == 50.0
    assert rank_pct(19.9, pipelines) == 0.0
    assert rank_pct(30.0, pipelines) == 100.0
    assert math.isnan(rank_pct(20.0, []))


def test_oracle_enumerates_every_order_and_tool(noise_jpeg_case, scorer):
    box = ToolBox(allow=["denoise_nlm", "denoise_bm3d", "dejpeg_deblock"])
    runner = CaseRunner(noise_jpeg_case, box, scorer)
    pipes = runner.pipelines()
    # 2 orders x (2 denoisers x 1 deblocker)
    assert pipes == sorted(
        [
            ("denoise_nlm", "dejpeg_deblock"),
            ("denoise_bm3d", "dejpeg_deblock"),
            ("dejpeg_deblock", "denoise_nlm"),
            ("dejpeg_deblock", "denoise_bm3d"),
        ]
    )
    oracle = runner.run("oracle")
    assert len(runner.oracle_psnrs) == 4
    assert psnr(oracle.image, noise_jpeg_case.clean) == pytest.approx(max(runner.oracle_psnrs))
    # the prefix cache ran 3 first steps and 4 second steps instead of 8 steps
    assert oracle.tool_calls == 7 and runner.prefix.executions == 7 and runner.prefix.requests == 8
    assert oracle.extra["naive_calls"] == 8
    # each pipeline's PSNR is what running it by hand gives
    by_hand = CaseRunner(noise_jpeg_case, box, scorer, cache=False)
    for pipe, value in zip(pipes, runner.oracle_psnrs, strict=True):
        assert psnr(by_hand.prefix.run(pipe)[-1].image, noise_jpeg_case.clean) == pytest.approx(value)


def test_prefix_cache_computes_each_prefix_once_and_matches_the_naive_run(noise_jpeg_case, scorer):
    box = ToolBox(allow=FAST)
    cached = PrefixCache(noise_jpeg_case.degraded, box)
    naive = PrefixCache(noise_jpeg_case.degraded, box, enabled=False)
    for pipe in [("denoise_nlm",), ("denoise_nlm", "dejpeg_deblock"), ("denoise_nlm", "dejpeg_deblock")]:
        a, b = cached.run(pipe)[-1], naive.run(pipe)[-1]
        assert np.array_equal(a.image, b.image)
        assert a.params == b.params  # the tool's own first suggestion for that image
    assert cached.executions == 2 and naive.executions == 5
    assert cached.requests == naive.requests == 5


# -- strategies ---------------------------------------------------------------------------------
def test_every_strategy_on_a_tiny_case(noise_jpeg_case, scorer):
    box = ToolBox(allow=FAST)
    runner = CaseRunner(noise_jpeg_case, box, scorer, max_steps=3)
    outs = {s: runner.run(s) for s in ["oracle", *[s for s in STRATEGIES if s != "oracle"]]}
    clean = noise_jpeg_case.clean
    assert outs["none"].tool_calls == 0 and outs["none"].plan == []
    assert psnr(outs["none"].image, clean) == psnr(noise_jpeg_case.degraded, clean)
    # fixed: the true tasks in restoration order (jpeg before noise), default tool each
    assert outs["fixed"].plan == [runner.default_tool(Task.DEJPEG), runner.default_tool(Task.DENOISE)]
    assert RESTORATION_ORDER.index(Task.DEJPEG) < RESTORATION_ORDER.index(Task.DENOISE)
    # random: one tool for each true task, in some order
    assert sorted(box.get_class(t).task for t in outs["random"].plan) == sorted([Task.DENOISE, Task.DEJPEG])
    # label strategies run pipelines from the enumeration, so the oracle is at least as good
    best = psnr(outs["oracle"].image, clean)
    for s in ("random", "fixed"):
        assert psnr(outs[s].image, clean) <= best + 1e-9
        assert rank_pct(psnr(outs[s].image, clean), runner.oracle_psnrs) <= 100.0
    for s, o in outs.items():
        if s != "oracle":
            assert o.tool_calls <= 3, s
        assert o.image.shape == clean.shape
        assert all(isinstance(t, str) for t in o.plan)
    # greedy and explore keep only steps that raised the NR score
    for s in ("greedy", "explore"):
        assert len(outs[s].plan) <= outs[s].tool_calls
    assert outs["agent"].extra["stop_reason"]


def test_max_steps_caps_every_strategy(kodak: Path, scorer):
    clean = load_clean(kodak / "kodim03.png", 64)
    case = make_case(clean, "kodim03.png", "rain+noise+low_res", seed=0)
    runner = CaseRunner(case, ToolBox(allow=FAST + ["sr_srmd"]), scorer, max_steps=1)
    for s in ("random", "fixed", "greedy", "explore", "agent"):
        assert runner.run(s).tool_calls <= 1, s


# -- results.json -------------------------------------------------------------------------------
def _strip_seconds(obj):
    if isinstance(obj, dict):
        return {k: _strip_seconds(v) for k, v in obj.items() if k not in {"seconds", "workers"}}
    if isinstance(obj, list):
        return [_strip_seconds(v) for v in obj]
    return obj


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, kodak: Path) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("bench")
    results = run_mio(
        [kodak], out, size=64, limit=2, combos=["noise+jpeg", "rain+haze"], max_steps=3, allow=FAST
    )
    return out, results


def test_results_json_has_the_stated_format(tiny_run):
    out, results = tiny_run
    data = json.loads((out / "results.json").read_text())
    assert data == json.loads(json.dumps(results))
    for key, kind in [("suite", str), ("version", int), ("size", int), ("seed", int), ("max_steps", int), ("images", int)]:
        assert isinstance(data[key], kind), key
    assert (data["suite"], data["size"], data["images"], data["max_steps"]) == ("mio", 64, 2, 3)
    assert list(data["strategies"]) == list(STRATEGIES)
    for s, body in data["strategies"].items():
        for part in (body["overall"], *body["groups"].values(), *body["combos"].values()):
            for m in ("psnr", "ssim", "tool_calls", "seconds", "rank_pct"):
                assert isinstance(part[m], float), (s, m)
        assert set(body["groups"]) == {"A"} and set(body["combos"]) == {"noise+jpeg", "rain+haze"}
    assert len(data["cases"]) == 2 * 2 * len(STRATEGIES)
    for case in data["cases"]:
        assert {"image", "combo", "strategy", "psnr", "ssim", "tool_calls", "seconds", "rank_pct", "plan"} <= set(case)
        assert isinstance(case["tool_calls"], int) and isinstance(case["plan"], list)
    # overall values are means over cases
    agent = [c for c in data["cases"] if c["strategy"] == "agent"]
    assert data["strategies"]["agent"]["overall"]["psnr"] == pytest.approx(np.mean([c["psnr"] for c in agent]), abs=1e-3)
    oracle = [c for c in data["cases"] if c["strategy"] == "oracle"]
    assert all(c["rank_pct"] == 100.0 for c in oracle)
    md = (out / "results.md").read_text()
    assert "| agent |" in md and "rain+haze" in md and "Prefix cache" in md


def test_two_runs_are_identical_except_seconds(tiny_run, tmp_path: Path, kodak: Path):
    out, first = tiny_run
    # a second run in two worker processes: scheduling must not change a thing
    second = run_mio(
        [kodak], tmp_path, size=64, limit=2, combos=["noise+jpeg", "rain+haze"], max_steps=3, allow=FAST, workers=2
    )
    assert _strip_seconds(first) == _strip_seconds(second)
    assert (out / "results.json").read_text() != ""


def test_a_case_that_fails_does_not_stop_the_others(tmp_path: Path, kodak: Path):
    """A corrupt photo among the clean ones: its cases fail (named, with the reason), the rest of
    the suite runs, in worker processes as in one; the CLI names them and exits 1."""
    import shutil

    clean = tmp_path / "clean"
    clean.mkdir()
    shutil.copy(kodak / "kodim01.png", clean / "a_good.png")
    (clean / "b_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    args = dict(size=64, combos=["noise+jpeg", "rain+haze"], max_steps=2, allow=FAST, strategies=["none", "fixed"])
    results = run_mio([clean], tmp_path / "out", workers=2, **args)
    assert {(f["image"], f["combo"]) for f in results["failures"]} == {("b_broken.png", "noise+jpeg"), ("b_broken.png", "rain+haze")}
    assert all(f["error"] for f in results["failures"])
    assert {c["image"] for c in results["cases"]} == {"a_good.png"} and len(results["cases"]) == 2 * 2
    assert "b_broken.png" in (tmp_path / "out" / "results.md").read_text()
    serial = run_mio([clean], tmp_path / "out1", workers=1, **args)
    assert _strip_seconds(serial["cases"]) == _strip_seconds(results["cases"])
    res = CliRunner().invoke(
        app,
        ["bench", "mio", "--clean", str(clean), "--out", str(tmp_path / "cli"), "--size", "64", "--combos", "noise+jpeg",
         "--strategies", "none", "--allow", ",".join(FAST), "-q"],
    )
    assert res.exit_code == 1 and "FAILED b_broken.png noise+jpeg" in res.output
    assert json.loads((tmp_path / "cli" / "results.json").read_text())["cases"][0]["image"] == "a_good.png"


def test_cli_bench_mio_and_bad_arguments(tmp_path: Path, kodak: Path):
    runner = CliRunner()
    res = runner.invoke(
        app,
        ["bench", "mio", "--clean", str(kodak), "--out", str(tmp_path), "--size", "48", "--limit", "1",
         "--combos", "dark+noise", "--strategies", "none,fixed,oracle", "--allow", ",".join(FAST + ["lowlight_gamma"]),
         "--save-images", "-q"],
    )
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "results.json").read_text())
    assert list(data["strategies"]) == ["none", "fixed", "oracle"]
    assert data["cases"][1]["plan"]  # fixed did something
    case_dir = tmp_path / "cases" / "kodim01__dark+noise"
    assert {p.name for p in case_dir.iterdir()} == {"clean.png", "input.png", "labels.json", "sheet.png", "none.png", "fixed.png", "oracle.png"}
    bad = runner.invoke(app, ["bench", "mio", "--clean", str(kodak), "--out", str(tmp_path), "--combos", "rain+hazy"])
    assert bad.exit_code == 2 and "did you mean" in bad.output
    bad = runner.invoke(app, ["bench", "mio", "--clean", str(kodak), "--out", str(tmp_path), "--strategies", "smart"])
    assert bad.exit_code == 2 and "unknown strategies" in bad.output


# -- suite real ---------------------------------------------------------------------------------
def test_real_pairs_and_tasks_from_folder_names():
    from restora.bench.real import pair_files, task_for_set

    deg = [Path("b/im1_kernel1_img.png"), Path("b/im12_kernel1_img.png"), Path("b/01.png"), Path("b/alone.png")]
    gts = [Path("g/im1.png"), Path("g/im12.png"), Path("g/01.png"), Path("g/kernel1.png")]
    assert pair_files(deg, gts) == [
        (deg[0], gts[0]),
        (deg[1], gts[1]),
        (deg[2], gts[2]),
    ]
    assert task_for_set(Path("levin"), Path("levin/blurred")) == Task.MOTION_DEBLUR
    assert task_for_set(Path("sots_outdoor"), Path("sots_outdoor/hazy")) == Task.DEHAZE
    assert task_for_set(Path("polyu"), Path("polyu/noisy")) == Task.DENOISE
    assert task_for_set(Path("mystery"), Path("mystery/input")) is None


def test_bench_real_on_a_small_copy_of_the_data(tmp_path: Path, data_dir: Path):
    from restora.cases import center_crop
    from restora.bench.real import run_real
    from restora.imageio import load_image, save_image

    def put(src: Path, dst: Path, size: int = 96) -> None:
        dst.parent.mkdir(parents=True, exist_ok=True)
        save_image(dst, center_crop(load_image(src).pixels, size))

    data = tmp_path / "data"
    for name in ("airnet_1.png", "mfdnet_1.png"):
        put(data_dir / "real_gt/rain100l/input" / name, data / "real_gt/rain100l/input" / name)
        put(data_dir / "real_gt/rain100l/target" / name, data / "real_gt/rain100l/target" / name)
    (data / "real_gt/unknown/stuff").mkdir(parents=True)
    (data / "real_gt/unknown/gt").mkdir(parents=True)
    put(data_dir / "real_nogt/haze" / min(p.name for p in (data_dir / "real_nogt/haze").iterdir()), data / "real_nogt/haze/h.png", 128)
    put(data_dir / "clean/kodak24/kodim03.png", data / "clean/kodak/k3.png", 128)
    out = tmp_path / "out"
    res = run_real(data, out, limit=1)
    saved = json.loads((out / "results.json").read_text())
    assert saved["suite"] == "real" and saved["images"] == 3
    rain = saved["gt"]["rain100l"]
    assert rain["task"] == "derain" and rain["pairs"] == 1
    assert {"none", "derain_guided", "agent"} <= set(rain["strategies"])
    assert all(isinstance(v["psnr"], float) for v in rain["strategies"].values())
    assert any("unknown" in n for n in saved["notes"])
    haze = saved["nogt"]["haze"]
    assert haze["images"] == 1 and haze["no_harm_pct"] in (0.0, 100.0)
    assert set(haze["strategies"]) == {"none", "agent"}
    assert saved["clean"]["kodak"]["images"] == 1
    assert "## With ground truth" in (out / "results.md").read_text()
    assert res["cases"] == saved["cases"]
    with pytest.raises(FileNotFoundError):
        run_real(tmp_path / "nope", out)
