"""restora train perception: samples are a pure function of (seed, index), the split is by photo,
a tiny run trains and writes its model, metrics and report, and a resumed run continues exactly
where the checkpoint left it (the same weights as an uninterrupted run)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file
from typer.testing import CliRunner

from restora import degrade
from restora.cli import app
from restora.trainer.perception import (
    DEGRADATIONS,
    MEASURES,
    PerceptionTrainConfig,
    SynthDataset,
    roc_auc,
    split_photos,
    train_perception,
)


@pytest.fixture(scope="module")
def pool(data_dir: Path) -> list[Path]:
    return [data_dir / "clean" / "cbsd68", data_dir / "clean" / "live1"]


def tiny(out: Path, pool: list[Path], steps: int, **kw) -> PerceptionTrainConfig:
    return PerceptionTrainConfig(
        out=out, clean=pool, steps=steps, batch_size=4, crop=64, val_samples=16, eval_every=2, checkpoint_every=2, workers=0, warmup=2, **kw
    )


def test_config_is_checked():
    with pytest.raises(ValueError, match="crop must be at least 32"):
        PerceptionTrainConfig(out=Path("x"), crop=16)
    with pytest.raises(ValueError, match="max_degradations"):
        PerceptionTrainConfig(out=Path("x"), max_degradations=0)


def test_samples_are_seeded_and_the_split_is_by_photo(pool: list[Path], tmp_path: Path):
    from restora.cases import clean_images

    cfg = tiny(tmp_path, pool, 1)
    photos = clean_images(pool)
    train, val = split_photos(photos, cfg.seed, cfg.val_fraction)
    assert not {p.name for p in train} & {p.name for p in val} and len(val) >= 1
    assert len(train) + len(val) == len(photos)
    ds = SynthDataset(train, cfg, "train")
    a, la = ds.image_and_labels(7)
    b, lb = SynthDataset(train, cfg, "train").image_and_labels(7)
    assert a.shape == (64, 64, 3) and np.array_equal(a, b) and json.dumps(la, sort_keys=True, default=str) == json.dumps(lb, sort_keys=True, default=str)
    kinds = [tuple(sorted(ds.image_and_labels(i)[1])) for i in range(60)]
    assert () in kinds  # clean samples are there
    assert {d for k in kinds for d in k} == set(DEGRADATIONS)  # and every degradation
    from restora.trainer.perception import sample_spec

    hard = [sample_spec(cfg.seed, "train", i, len(train), cfg)["hard"] for i in range(200)]
    assert 10 <= sum(h is not None for h in hard) <= 60  # hard negatives, about hard_share of them
    x, presence, severity, measures, mask = ds[7]
    assert tuple(x.shape) == (3, 64, 64) and presence.shape[0] == len(DEGRADATIONS) and mask.shape[0] == len(MEASURES)
    assert set(presence.nonzero().flatten().tolist()) == {DEGRADATIONS.index(d) for d in la}


def test_roc_auc():
    assert roc_auc(np.array([0.9, 0.8, 0.1, 0.2]), np.array([1, 1, 0, 0])) == 1.0
    assert roc_auc(np.array([0.5, 0.5]), np.array([1, 0])) == 0.5
    assert roc_auc(np.array([0.5, 0.5]), np.array([1, 1])) is None


def test_a_tiny_run_trains_and_a_resumed_run_continues_exactly(pool: list[Path], tmp_path: Path):
    straight = train_perception(tiny(tmp_path / "a", pool, 4))
    assert straight["resumed_from"] == 0
    for name in ("model.safetensors", "model.json", "metrics.json", "history.jsonl", "report.md", "curves.png", "validation.png"):
        assert (tmp_path / "a" / name).is_file(), name
    assert set(straight["val"]["degradations"]) == set(DEGRADATIONS)
    assert [e["step"] for e in straight["evals"]] == [2, 4]
    card = json.loads((tmp_path / "a" / "model.json").read_text())
    assert set(card["thresholds"]) == set(DEGRADATIONS) and card["arch"] == "mobilenet_v3_small"

    train_perception(tiny(tmp_path / "b", pool, 2))  # stopped after 2 steps ...
    resumed = train_perception(tiny(tmp_path / "b", pool, 4))  # ... and continued to 4
    assert resumed["resumed_from"] == 2
    assert [e["step"] for e in resumed["evals"]] == [2, 4]
    rows = [json.loads(line) for line in (tmp_path / "b" / "history.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    a, b = load_file(str(tmp_path / "a" / "model.safetensors")), load_file(str(tmp_path / "b" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=0, atol=1e-6, err_msg=k)

    with pytest.raises(ValueError, match="other settings \\(crop\\)"):
        train_perception(PerceptionTrainConfig(**{**tiny(tmp_path / "b", pool, 6).to_json(), "crop": 96}))


def test_a_fine_tune_starts_from_its_init_weights(pool: list[Path], tmp_path: Path):
    train_perception(tiny(tmp_path / "base", pool, 2))
    base = load_file(str(tmp_path / "base" / "model.safetensors"))
    # a learning rate too small to move anything: the fine-tune's weights are its init's
    tuned = tiny(tmp_path / "ft", pool, 1, init=tmp_path / "base", lr=1e-12)
    assert tuned.init == tmp_path / "base" / "model.safetensors"
    assert tuned.identity()["init"].startswith("sha256:") and "init" not in tiny(tmp_path / "x", pool, 1).identity()
    train_perception(tuned)
    after = load_file(str(tmp_path / "ft" / "model.safetensors"))
    # the learned weights (batch norm's running statistics follow the data at any learning rate)
    floats = [k for k in base if np.issubdtype(base[k].dtype, np.floating) and "running_" not in k]
    moved = [k for k in floats if not np.allclose(base[k], after[k], atol=1e-6)]
    assert not moved, moved[:3]
    train_perception(tiny(tmp_path / "rand", pool, 1, lr=1e-12))  # the same without init: the seed's random weights
    rand = load_file(str(tmp_path / "rand" / "model.safetensors"))
    assert [k for k in floats if not np.allclose(rand[k], after[k], atol=1e-6)]

    # resuming with other init weights is another run
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "model.safetensors").write_bytes((tmp_path / "rand" / "model.safetensors").read_bytes())
    with pytest.raises(ValueError, match="other settings \\(init\\)"):
        train_perception(tiny(tmp_path / "ft", pool, 2, init=tmp_path / "other", lr=1e-12))
    with pytest.raises(ValueError, match="init: no weights at"):
        tiny(tmp_path / "y", pool, 1, init=tmp_path / "nowhere")
    with pytest.raises(ValueError, match="does not hold resnet18 perception weights"):
        train_perception(tiny(tmp_path / "z", pool, 1, init=tmp_path / "base", arch="resnet18"))


def test_cli_train_perception(pool: list[Path], tmp_path: Path):
    res = CliRunner().invoke(
        app,
        ["train", "perception", "--out", str(tmp_path / "run"), "--clean", str(pool[0]), "--clean", str(pool[1]), "--steps", "2",
         "--batch-size", "2", "--crop", "48", "--val-samples", "8", "--eval-every", "2", "--workers", "0", "-q"],
    )
    assert res.exit_code == 0, res.output
    assert "mean AUC" in res.output and (tmp_path / "run" / "model.safetensors").is_file()
    bad = CliRunner().invoke(app, ["train", "perception", "--out", str(tmp_path / "x"), "--arch", "resnet_nope", "--steps", "1", "-q",
                                   "--clean", str(pool[0])])
    assert bad.exit_code == 2 and "unknown architecture" in bad.output


def test_the_learned_backend_reads_a_trained_run(pool: list[Path], tmp_path: Path, clean_photo: np.ndarray):
    from restora.errors import RestoraError
    from restora.imageio import save_image
    from restora.perception.learned import LearnedPerception, crop_boxes

    train_perception(tiny(tmp_path / "run", pool, 2))
    perceive = LearnedPerception.load(tmp_path / "run")
    big = np.tile(clean_photo, (2, 3, 1))  # 320 x 480: read in several native 64-px crops
    pred = perceive.predict(big)
    assert len(pred["crops"]) == 8 and all(h == 64 and w == 64 for _, _, h, w in pred["crops"])
    report = perceive(big)
    assert set(report.findings) == set(DEGRADATIONS) and (report.width, report.height) == (480, 320)
    noise = report.findings["noise"].evidence
    assert 0.0 <= noise["probability"] <= 1.0 and "learned_noise_sigma" in noise and "noise_sigma_coarse" in noise  # classical evidence kept
    from restora.perception import perceive as classical_perceive
    from restora.perception.learned import BOTH_READINGS, CLASSICAL_ALONE, EITHER_READING, WHOLE_IMAGE

    classical = classical_perceive(big)
    for f in report.findings.values():
        d = f.degradation.value
        if d in WHOLE_IMAGE:  # the frame's tone: the whole-image estimators decide, the network's reading kept
            by_net = f.evidence["learned_probability"] >= EITHER_READING.get(d, float("inf"))
            agrees = d not in BOTH_READINGS or f.evidence["learned_probability"] >= perceive.card["thresholds"][d]
            assert f.present == ((classical.findings[d].present or by_net) and agrees)
            assert ("not_confirmed_by_network" in f.evidence) == (classical.findings[d].present and not agrees)
            assert ("found_by_network" in f.evidence) == (f.present and not classical.findings[d].present)
            if classical.findings[d].present or not f.present:
                assert f.severity == classical.findings[d].severity
            assert 0.0 <= f.evidence["learned_probability"] <= 1.0 and "probability" not in f.evidence
        else:  # the network decides; the classical estimators alone add what they find strongly
            by_net = f.evidence["probability"] >= perceive.card["thresholds"][d]
            c = classical.findings[d]
            by_classical = c.present and c.severity >= CLASSICAL_ALONE.get(d, float("inf"))
            assert f.present == (by_net or by_classical)
            assert ("found_by_classical" in f.evidence) == (by_classical and not by_net)
    # haze is found when either reading finds it (the network alone above a stricter threshold than
    # its own); dark only by the classical one
    assert set(EITHER_READING) == {"haze"}
    for d, thr, expect in (("haze", 0.0, True), ("haze", 1.01, classical.findings["haze"].present)):
        seen = LearnedPerception(perceive.model, perceive.card, either_reading={d: thr})(big).findings[d]
        assert seen.present == expect, (d, thr)
        assert ("found_by_network" in seen.evidence) == (expect and not classical.findings[d].present)
    card = {**perceive.card, "thresholds": {**perceive.card["thresholds"], "dark": 0.0}}
    assert LearnedPerception(perceive.model, card)(big).findings["dark"].present == classical.findings["dark"].present
    # dark needs both readings: a dim photo the network does not read as dark (a night sky) is not dark
    assert BOTH_READINGS == ("dark",)
    dim = (big * 0.08).astype(np.float32)  # dim everywhere: the classical estimators read it as dark
    assert classical_perceive(dim).findings["dark"].present
    never = {**perceive.card, "thresholds": {**perceive.card["thresholds"], "dark": 1.01}}
    seen = LearnedPerception(perceive.model, never)(dim).findings["dark"]
    assert not seen.present and seen.evidence["not_confirmed_by_network"] == 1.0
    assert LearnedPerception(perceive.model, never, both_readings=())(dim).findings["dark"].present
    assert LearnedPerception(perceive.model, {**never, "both_readings": []})(dim).findings["dark"].present  # a run's own value
    always = {**perceive.card, "thresholds": {**perceive.card["thresholds"], "dark": 0.0}}
    assert LearnedPerception(perceive.model, always)(dim).findings["dark"].present
    assert LearnedPerception(perceive.model, {**perceive.card, "either_reading": {"haze": 0.0}})(big).findings["haze"].present  # a run's own value
    # jpeg, low_res: also found when the classical estimators alone find them strongly
    assert set(CLASSICAL_ALONE) == {"jpeg", "low_res"}
    blocky = degrade.jpeg_roundtrip(big, 20)  # strong JPEG: the quantisation comb reads it
    assert classical_perceive(blocky).findings["jpeg"].present
    never = {d: 0.0 for d in DEGRADATIONS if d not in WHOLE_IMAGE}
    card = {**perceive.card, "thresholds": {**perceive.card["thresholds"], **{d: 1.01 for d in never}}}  # the network finds nothing
    alone = LearnedPerception(perceive.model, card, classical_alone=never)(blocky).findings["jpeg"]
    assert alone.present and alone.evidence["found_by_classical"] == 1.0
    assert alone.severity == classical_perceive(blocky).findings["jpeg"].severity
    from restora.report import _plain_evidence

    assert "found by the classical measures, which the network missed" in _plain_evidence("jpeg", alone.evidence)  # the report page says so
    assert not LearnedPerception(perceive.model, card, classical_alone={})(blocky).findings["jpeg"].present
    assert LearnedPerception(perceive.model, {**card, "classical_alone": {"jpeg": 0.0}})(blocky).findings["jpeg"].present  # a run's own value
    if report.findings["noise"].present:  # tools get the larger sigma: the white-noise estimate misses camera noise
        assert noise["noise_sigma"] == round(max(noise["classical_noise_sigma"], noise["learned_noise_sigma"]), 4)
    else:
        assert noise["noise_sigma"] == noise["classical_noise_sigma"]
    # the network chooses the tools; the classical reading judges the steps (the accept score's perception term)
    from restora.agent.nodes import assess
    from restora.quality import QualityScorer, degradation_quality

    assert report.judge.findings == classical.findings and report.model_copy(update={"width": 1}).judge is report.judge
    dumped, scores = assess(perceive, QualityScorer(), big)
    assert dumped["judge"]["findings"] == classical.model_dump(mode="json")["findings"]
    assert scores["degradation"] == pytest.approx(degradation_quality(classical))
    alone = LearnedPerception.load(tmp_path / "run", classical=False)(big)
    assert alone.judge is alone and "judge" not in assess(LearnedPerception.load(tmp_path / "run", classical=False), QualityScorer(), big)[0]
    assert all(f.present == (f.evidence["probability"] >= perceive.card["thresholds"][f.degradation.value]) for f in alone.findings.values())
    assert crop_boxes(90, 80, 64) == [(0, 0, 90, 80)]  # small enough: read whole

    with pytest.raises(RestoraError, match="not a perception model"):
        LearnedPerception.load(tmp_path)
    save_image(tmp_path / "img.png", clean_photo)
    res = CliRunner().invoke(app, ["perceive", str(tmp_path / "img.png"), "--backend", "learned", "--model", str(tmp_path / "run"), "--json"])
    assert res.exit_code == 0, res.output
    assert set(json.loads(res.output)[0]["report"]["findings"]) == set(DEGRADATIONS)
    bad = CliRunner().invoke(app, ["perceive", str(tmp_path / "img.png"), "--backend", "guess"])
    assert bad.exit_code == 2 and "unknown backend" in bad.output
    bad = CliRunner().invoke(app, ["perceive", str(tmp_path / "img.png"), "--backend", "classical", "--model", str(tmp_path / "run")])
    assert bad.exit_code == 2 and "--model is for --backend learned" in bad.output


def test_the_camera_look_softens_and_leaves_the_other_draws_alone(pool: list[Path], tmp_path: Path):
    from restora.cases import clean_images
    from restora.trainer.perception import CAMERA_PSF_SIGMA, camera_look, sample_spec

    with pytest.raises(ValueError, match="camera_share"):
        tiny(tmp_path, pool, 1, camera_share=1.5)
    on, off = tiny(tmp_path, pool, 1, camera_share=1.0), tiny(tmp_path, pool, 1, camera_share=0.0)
    for i in range(40):  # the look has its own stream: every other draw is the same with or without it
        a, b = sample_spec(0, "train", i, 50, on), sample_spec(0, "train", i, 50, off)
        assert b["look"] is None and CAMERA_PSF_SIGMA[0] <= a["look"]["psf_sigma"] <= CAMERA_PSF_SIGMA[1]
        assert {k: v for k, v in a.items() if k != "look"} == {k: v for k, v in b.items() if k != "look"}
    train, _ = split_photos(clean_images(pool), 0, 0.15)
    sharp, _ = SynthDataset(train, off, "train").image_and_labels(3)
    soft, _ = SynthDataset(train, on, "train").image_and_labels(3)

    def fine(x):  # energy of the finest detail
        return float(np.abs(np.diff(x.mean(2), axis=1)).mean())

    look = sample_spec(0, "train", 3, len(train), on)["look"]
    assert fine(camera_look(sharp.astype(np.float32), {**look, "sharpen": 0.0})) < 0.8 * fine(sharp)
    assert soft.shape == sharp.shape and not np.array_equal(soft, sharp)


def test_a_shipped_card_checksum_is_checked_and_backends_load_once(pool: list[Path], tmp_path: Path, clean_photo: np.ndarray):
    """scripts/ship_perception.py writes a run into a package folder with its card (sha256, command,
    terms); the loader checks the checksum; backend() loads a network once per process."""
    import subprocess
    import sys

    from restora.errors import RestoraError
    from restora.perception import SHIPPED_MODEL, backend, perceive
    from restora.perception.learned import LearnedPerception

    train_perception(tiny(tmp_path / "run", pool, 2))
    dest = tmp_path / "model"
    cmd = "restora train perception --out run --steps 2"
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, str(root / "scripts" / "ship_perception.py"), str(tmp_path / "run"), "--command", cmd, "--dest", str(dest)], check=True)
    card = json.loads((dest / "model.json").read_text())
    assert card["command"] == cmd and card["seed"] == 0 and "non-commercial" in card["terms"] and len(card["sha256"]) == 64
    text = (dest / "CARD.md").read_text()
    assert card["sha256"] in text and cmd in text and "Validation" in text
    loaded = backend(dest)
    assert isinstance(loaded, LearnedPerception) and backend(dest) is loaded  # loaded once
    assert set(loaded(clean_photo).findings) == set(DEGRADATIONS)
    data = bytearray((dest / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (dest / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(RestoraError, match="does not match its card"):
        LearnedPerception.load(dest)
    assert backend("classical") is perceive
    shipped = backend("learned")  # the default: the network that ships in the package, its checksum checked
    assert isinstance(shipped, LearnedPerception) and backend(None) is shipped and backend(SHIPPED_MODEL) is shipped
    assert shipped.card["sha256"] == hashlib.sha256((SHIPPED_MODEL / "model.safetensors").read_bytes()).hexdigest()
    assert "restora train perception" in shipped.card["command"] and "non-commercial" in shipped.card["terms"]
    with pytest.raises(RestoraError, match="use learned, classical or a run folder"):
        backend(tmp_path / "nowhere")


def test_calibration_bounds_false_alarms(pool: list[Path], tmp_path: Path):
    cfg = tiny(tmp_path / "run", pool, 2, max_false_alarm=0.05)
    metrics = train_perception(cfg)["val"]
    assert metrics["max_false_alarm"] == 0.05
    for d, v in metrics["degradations"].items():  # within the bound, or the highest threshold when none is
        assert v["false_alarm_at_threshold"] <= 0.05 + 1e-9 or v["threshold"] == 0.95, (d, v)
    again = train_perception(PerceptionTrainConfig(**{**cfg.__dict__, "max_false_alarm": 1.0}))  # a finished run: recalibrate only
    assert again["val"]["max_false_alarm"] == 1.0 and again["steps"] == 2
    for d in DEGRADATIONS:
        assert again["val"]["degradations"][d]["threshold"] <= metrics["degradations"][d]["threshold"]


def test_the_camera_luma_nr_share_marks_camera_noise_only_and_leaves_the_other_draws_alone(pool: list[Path], tmp_path: Path):
    from restora.trainer.perception import sample_spec

    with pytest.raises(ValueError, match="camera_luma_nr_share"):
        tiny(tmp_path, pool, 1, camera_luma_nr_share=-0.1)
    on, off = tiny(tmp_path, pool, 1, camera_luma_nr_share=1.0), tiny(tmp_path, pool, 1)
    assert off.identity() == {k: v for k, v in on.identity().items() if k != "camera_luma_nr_share"}  # old runs resume
    marked = 0
    for i in range(200):
        a, b = sample_spec(0, "train", i, 50, on), sample_spec(0, "train", i, 50, off)
        noise = b["options"].get("noise") or {}
        if noise.get("model") == "camera":
            assert a["options"]["noise"] == {**noise, "luma_nr": True}
            marked += 1
            a["options"]["noise"].pop("luma_nr")
        assert a == b
    assert marked > 0


def test_the_camera_mild_share_moves_camera_noise_to_mild_severities_and_leaves_the_other_draws_alone(pool: list[Path], tmp_path: Path):
    from restora.trainer.common import MILD_SEVERITY
    from restora.trainer.perception import sample_spec

    with pytest.raises(ValueError, match="camera_mild_share"):
        tiny(tmp_path, pool, 1, camera_mild_share=1.5)
    on, off = tiny(tmp_path, pool, 1, camera_mild_share=1.0), tiny(tmp_path, pool, 1)
    assert off.identity() == {k: v for k, v in on.identity().items() if k != "camera_mild_share"}  # old runs resume
    moved = 0
    for i in range(300):
        a, b = sample_spec(0, "train", i, 50, on), sample_spec(0, "train", i, 50, off)
        if (b["options"].get("noise") or {}).get("model") == "camera":
            assert 0.0 <= a["severities"]["noise"] < MILD_SEVERITY
            moved += b["severities"]["noise"] >= MILD_SEVERITY
            a["severities"]["noise"] = b["severities"]["noise"]
        assert a == b
    assert moved > 0


def test_the_dark_noise_label_marks_dim_light_noise_and_changes_no_picture(pool: list[Path], tmp_path: Path):
    """A dark sample whose dim-light noise nothing after it smooths away is labelled noisy too, with
    the std it actually added; every picture (and every other label) stays as without the option."""
    from restora.cases import clean_images
    from restora.trainer.perception import sample_spec, targets

    on, off = tiny(tmp_path, pool, 1, dark_noise_label=True), tiny(tmp_path, pool, 1)
    assert off.identity() == {k: v for k, v in on.identity().items() if k != "dark_noise_label"}  # old runs resume
    train, _ = split_photos(clean_images(pool), 0, 0.15)
    ds_on, ds_off = SynthDataset(train, on, "train"), SynthDataset(train, off, "train")
    labelled = 0
    for i in range(400):
        spec = sample_spec(0, "train", i, len(ds_on.photos), on)
        if "dark" not in spec["severities"]:
            continue
        img_on, lab_on = ds_on.image_and_labels(i)
        img_off, lab_off = ds_off.image_and_labels(i)
        assert np.array_equal(img_on, img_off)
        smoothed = {"noise", "motion_blur", "defocus", "low_res", "jpeg"} & set(lab_off)
        if smoothed:
            assert lab_on == lab_off
            continue
        labelled += 1
        sigma = lab_on["noise"]["sigma"]
        assert sigma == lab_off["dark"]["noise_sigma"] and 0.5 < sigma < 6.0  # faint, as a dim exposure's noise is
        presence, _, measures, mask = targets(lab_on)
        assert presence[DEGRADATIONS.index("noise")] == 1.0 and mask[list(MEASURES).index("noise_sigma")] == 1.0
        assert {k: v for k, v in lab_on.items() if k != "noise"} == lab_off
    assert labelled > 0


def test_the_camera_dim_share_dims_camera_noise_samples_and_leaves_the_other_draws_alone(pool: list[Path], tmp_path: Path):
    """A dimmed camera-noise sample: its dark degradation (added where not drawn) without the dark's
    own noise, the camera's noise after it; every other sample is drawn as without the option."""
    from restora.trainer.perception import sample_spec

    with pytest.raises(ValueError, match="camera_dim_share"):
        tiny(tmp_path, pool, 1, camera_dim_share=2.0)
    on, off = tiny(tmp_path, pool, 1, camera_dim_share=1.0), tiny(tmp_path, pool, 1)
    assert off.identity() == {k: v for k, v in on.identity().items() if k != "camera_dim_share"}  # old runs resume
    dimmed = 0
    for i in range(300):
        a, b = sample_spec(0, "train", i, 50, on), sample_spec(0, "train", i, 50, off)
        if (b["options"].get("noise") or {}).get("model") == "camera":
            assert a["options"].pop("dark") == {"noise": False} and 0.0 <= a["severities"]["dark"] <= 1.0
            dimmed += "dark" not in b["severities"]
            if "dark" not in b["severities"]:
                a["severities"].pop("dark")
        assert a == b
    assert dimmed > 0
    img = np.full((64, 64, 3), 0.5, np.float32)
    quiet, labels = degrade.compose(img, "dark", seed=1, severities={"dark": 0.5}, options={"dark": {"noise": False}})
    noisy, _ = degrade.compose(img, "dark", seed=1, severities={"dark": 0.5})
    assert labels["dark"]["noise_sigma"] == 0.0 and float(np.ptp(quiet)) == 0.0  # the dimming alone
    assert float(np.std(noisy - quiet)) * 255 > 1.0


def test_the_pool_scripts_read_the_shipped_fine_tunes_validation_split(data_dir: Path):
    """scripts/_pool.validation_split rebuilds the shipped network's config from its card; the card of
    a fine-tune names its starting weights by checksum, which is not a path to load."""
    import sys

    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "scripts"))
    try:
        from _pool import validation_split
    finally:
        sys.path.remove(str(root / "scripts"))
    folder, card, cfg, val = validation_split()
    assert cfg.init is None and len(val) == card["data"]["val_photos"]
    if card.get("init_sha256"):
        assert str(card["config"]["init"]).startswith("sha256:")


def test_a_dim_pictures_noise_is_read_as_viewed_brightened(pool: list[Path], tmp_path: Path, clean_photo: np.ndarray):
    """A dim photo's noise is a few grey levels, which a network taught on normally exposed
    pictures reads as clean: with view_noise, the noise finding of a dim picture is the network's
    reading of its crops brightened by view_gain (the sigma back in the picture's units); a picture
    at normal exposure is read as it is. On by default (VIEW_NOISE); off by the caller or a run's model.json."""
    from restora.perception.learned import LearnedPerception
    from restora.perception.measures import LUMA as luma_weights
    from restora.perception.measures import view_gain, view_slope

    train_perception(tiny(tmp_path / "run", pool, 2))
    perceive = LearnedPerception.load(tmp_path / "run", view_noise=True)
    j = list(DEGRADATIONS).index("noise")
    dim = degrade.apply(clean_photo, "dark", 0.8, noise=False)
    gain = view_gain(dim[::4, ::4])
    assert gain > 1.5
    ev = perceive(dim).findings["noise"].evidence
    viewed, plain = perceive.predict(dim, gain), perceive.predict(dim)
    assert ev["view_gain"] == round(gain, 3)
    assert ev["probability"] == round(float(viewed["probability"][j]), 4)
    assert ev["unviewed_probability"] == round(float(plain["probability"][j]), 4)
    thr = float(perceive.thresholds[j])  # found on the view alone: the planner waits for the brightening
    assert ("only_viewed" in ev) == (float(viewed["probability"][j]) >= thr > float(plain["probability"][j]))
    slope = view_slope(gain, float(np.median(dim[::4, ::4] @ luma_weights)))
    assert ev["learned_noise_sigma"] == round(viewed["measures"]["noise_sigma"] / slope, 4)
    assert "view_gain" not in perceive(clean_photo).findings["noise"].evidence  # normal exposure: as it is
    assert LearnedPerception.load(tmp_path / "run")(dim).findings["noise"].evidence == ev  # on by default
    off = LearnedPerception.load(tmp_path / "run", view_noise=False)(dim).findings["noise"].evidence
    assert "view_gain" not in off and off["probability"] == round(float(plain["probability"][j]), 4)
    card = json.loads((tmp_path / "run" / "model.json").read_text())
    assert "view_gain" not in LearnedPerception(perceive.model, {**card, "view_noise": False})(dim).findings["noise"].evidence  # a run's own value
