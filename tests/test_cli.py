"""The command line end to end: restore real files, report failures per input, never touch inputs."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from restora.cli import app
from restora.imageio import load_image
from restora.traces import read_trace

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "damaged.png"
runner = CliRunner()


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_example_is_bundled_and_damaged():
    from restora.perception import perceive

    img = load_image(EXAMPLE).pixels
    assert img.shape == (256, 256, 3)
    assert perceive(img).present(), "the bundled example should need restoring"


def test_run_restores_the_example_and_writes_png_trace_and_page(tmp_path: Path):
    src = tmp_path / "in" / "damaged.png"
    src.parent.mkdir()
    shutil.copy(EXAMPLE, src)
    before = _sha(src)
    res = runner.invoke(app, ["run", str(src), "-o", str(tmp_path / "out"), "--max-steps", "4", "-q"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "out"
    assert (out / "damaged.png").is_file() and (out / "damaged.html").is_file()
    records = read_trace(out / "damaged.trace.jsonl")
    assert records[0].event == "start" and records[-1].event == "end"
    steps = [r for r in records if r.event == "step"]
    assert records[-1].tool_calls >= 1 and records[-1].accepted, "the example should get at least one kept step"
    assert steps[-1].decision == "stop"
    final = records[-1]
    assert final.scores_final["overall"] > final.scores_input["overall"]
    page = (out / "damaged.html").read_text()
    assert "Before / after" in page and "accept" in page and page.count("data:image/") >= 2  # input and output, full resolution
    assert _sha(src) == before, "the input file was modified"
    assert not list(out.glob("*.part")) and not list(out.glob(".*"))


def test_batch_goes_on_past_bad_inputs_and_exits_nonzero(tmp_path: Path, clean_photo: np.ndarray):
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "empty.jpg").write_bytes(b"")
    (inputs / "notes.png").write_text("not an image")
    buf = io.BytesIO()
    Image.fromarray((clean_photo * 255).astype(np.uint8)).save(buf, format="JPEG", quality=95)
    (inputs / "cut.jpg").write_bytes(buf.getvalue()[:500])
    Image.fromarray((clean_photo[:64, :64] * 255).astype(np.uint8)).save(inputs / "good.png")
    hashes = {p.name: _sha(p) for p in inputs.iterdir()}
    res = runner.invoke(app, ["run", str(inputs), "-o", str(tmp_path / "out"), "--max-steps", "2", "-q"])
    assert res.exit_code == 1
    failed = [line for line in res.output.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 3, res.output
    assert any("empty.jpg: " in f and "empty file" in f for f in failed)
    assert any("notes.png: " in f and "not an image" in f for f in failed)
    assert any("cut.jpg: " in f and ("truncated" in f or "corrupt" in f) for f in failed)
    assert (tmp_path / "out" / "good.png").is_file()
    assert not (tmp_path / "out" / "empty.png").exists()
    assert {p.name: _sha(p) for p in inputs.iterdir()} == hashes


def test_outputs_mirror_the_input_tree_and_clashing_names_are_refused(tmp_path: Path, clean_photo: np.ndarray):
    tree = tmp_path / "in"
    for rel in ("a.png", "2019/a.png"):
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((clean_photo[:64, :64] * 255).astype(np.uint8)).save(tree / rel)
    out = tmp_path / "out"
    res = runner.invoke(app, ["run", str(tree), "-o", str(out), "--max-steps", "1", "--allow", "denoise_nlm", "-q"])
    assert res.exit_code == 0, res.output
    for stem in ("a", "2019/a"):  # same file name in two folders: two outputs, named by their path
        assert {(out / f"{stem}{s}").is_file() for s in (".png", ".trace.jsonl", ".html")} == {True}, stem
    clash = runner.invoke(app, ["run", str(tree / "a.png"), str(tree / "2019" / "a.png"), "-o", str(tmp_path / "o2"), "-q"])
    assert clash.exit_code == 2 and "would both be written as 'a'" in clash.output
    assert not (tmp_path / "o2").exists()
    bad = runner.invoke(app, ["run", str(tree), "-o", str(tmp_path / "o3"), "--device", "gpu", "-q"])
    assert bad.exit_code == 2 and "device 'gpu'" in bad.output


def test_refuses_to_overwrite_its_input(tmp_path: Path):
    src = tmp_path / "damaged.png"
    shutil.copy(EXAMPLE, src)
    before = _sha(src)
    res = runner.invoke(app, ["run", str(src), "-o", str(tmp_path), "-q"])
    assert res.exit_code == 1 and "overwrite the input" in res.output
    assert _sha(src) == before


def test_allow_rejects_unknown_tools_with_a_suggestion(tmp_path: Path):
    res = runner.invoke(app, ["run", str(EXAMPLE), "-o", str(tmp_path), "--allow", "denoise_nlmm"])
    assert res.exit_code == 2 and "did you mean 'denoise_nlm'" in res.output


def test_allow_limits_the_tools_used(tmp_path: Path):
    res = runner.invoke(app, ["run", str(EXAMPLE), "-o", str(tmp_path), "--allow", "denoise_nlm", "-q"])
    assert res.exit_code == 0, res.output
    records = read_trace(tmp_path / "damaged.trace.jsonl")
    used = {r.action.tool for r in records if r.event == "step" and r.action.kind == "tool"}
    assert used <= {"denoise_nlm"}
    assert records[0].config["tools"] == ["denoise_nlm"]


def test_tools_json_lists_the_catalogue():
    res = runner.invoke(app, ["tools", "--json"])
    assert res.exit_code == 0
    tools = json.loads(res.output)
    names = {t["name"] for t in tools}
    assert {"denoise_srmd", "dehaze_dcp", "sr_realesrgan"} <= names
    assert all(t["params"]["additionalProperties"] is False for t in tools)


def test_perceive_json(tmp_path: Path):
    res = runner.invoke(app, ["perceive", str(EXAMPLE), "--json"])
    assert res.exit_code == 0, res.output
    [entry] = json.loads(res.output)  # one image: still a list, same shape as for many
    assert entry["path"] == str(EXAMPLE) and entry["error"] is None
    report = entry["report"]
    assert set(report["findings"]) == {"noise", "motion_blur", "defocus", "haze", "rain", "dark", "jpeg", "low_res"}
    assert report["findings"]["noise"]["present"]


def test_console_script_is_installed():
    exe = Path(sys.executable).parent / "restora"
    assert exe.is_file(), "pip install should create the `restora` command"
    res = subprocess.run([str(exe), "tools"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "denoise_srmd" in res.stdout


@pytest.mark.slow
def test_run_on_real_degraded_photos(tmp_path: Path, data_dir: Path):
    """One real image of each kind from real_nogt goes through without failing."""
    picks = [data_dir / "real_nogt" / d for d in ("jpeg", "haze", "rain", "lowlight_dicm")]
    files = [sorted(p.iterdir())[0] for p in picks]
    res = runner.invoke(app, ["run", *map(str, files), "-o", str(tmp_path), "--max-steps", "3", "-q"])
    assert res.exit_code == 0, res.output
    assert len(list(tmp_path.glob("*.html"))) == len(files)


def test_degrade_is_seeded_and_writes_labels(tmp_path: Path, data_dir: Path):
    clean = data_dir / "clean" / "set5_hr" / min(p.name for p in (data_dir / "clean" / "set5_hr").iterdir())
    args = ["degrade", str(clean), "--combo", "rain+haze", "--seed", "4"]
    assert runner.invoke(app, [*args, "-o", str(tmp_path / "a.png")]).exit_code == 0
    assert runner.invoke(app, [*args, "-o", str(tmp_path / "b.png")]).exit_code == 0
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    res = runner.invoke(app, ["degrade", str(clean), "--combo", "rain+haze", "--seed", "5", "-o", str(tmp_path)])
    assert res.exit_code == 0, res.output
    other = tmp_path / f"{clean.stem}_haze+rain_s5.png"
    assert other.read_bytes() != (tmp_path / "a.png").read_bytes()
    meta = json.loads((tmp_path / "a.json").read_text())
    assert meta["combo"] == ["haze", "rain"] and meta["seed"] == 4
    assert set(meta["labels"]) == {"haze", "rain"}
    fixed = runner.invoke(app, ["degrade", str(clean), "--combo", "dark+noise", "--severity", "dark=0.7,noise=0.2", "-o", str(tmp_path / "d.png")])
    assert fixed.exit_code == 0, fixed.output
    labels = json.loads((tmp_path / "d.json").read_text())["labels"]
    assert labels["dark"]["severity"] == pytest.approx(0.7) and labels["noise"]["severity"] == pytest.approx(0.2)
    bad = runner.invoke(app, ["degrade", str(clean), "--combo", "rain+hazy", "-o", str(tmp_path)])
    assert bad.exit_code == 2 and "did you mean 'haze'" in bad.output


def test_degrade_options_pick_the_web_models(tmp_path: Path, data_dir: Path):
    clean = data_dir / "clean" / "kodak24" / "kodim05.png"
    base = ["degrade", str(clean), "--combo", "noise+jpeg+rain", "--seed", "1"]
    res = runner.invoke(
        app,
        [*base, "-o", str(tmp_path / "w.png"), "--option", "noise.model=granular", "--option", "jpeg.model=web",
         "--option", "rain.splashes=true"],
    )
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / "w.json").read_text())
    assert meta["options"] == {"noise": {"model": "granular"}, "jpeg": {"model": "web"}, "rain": {"splashes": True}}
    assert meta["labels"]["noise"]["model"] == "granular" and meta["labels"]["jpeg"]["model"] == "web"
    assert meta["labels"]["rain"]["splashes"] is True
    assert runner.invoke(app, [*base, "-o", str(tmp_path / "p.png")]).exit_code == 0
    assert (tmp_path / "w.png").read_bytes() != (tmp_path / "p.png").read_bytes()
    for opt, msg in [("noise.sigmaa=3", "no option 'sigmaa'"), ("haze.beta=1", "not in --combo"), ("noise=3", "name.key=value")]:
        bad = runner.invoke(app, [*base, "-o", str(tmp_path / "x.png"), "--option", opt])
        assert bad.exit_code == 2 and msg in bad.output, (opt, bad.output)
