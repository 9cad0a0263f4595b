"""The no-harm guard (restora.quality.guard), its fit (restora.trainer.guard) and its place in the
agent's accept rule. The pictures are synthesized here (restora.synth.negatives, restora.degrade on
scikit-image's sample photos), so these run without ../shared/data."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from skimage import data

from restora import degrade
from restora.quality.guard import FEATURES, GUARD_FILE, GuardError, NoHarmGuard, guard_crops, residual_features
from restora.synth import negatives
from restora.tools import create_tool


def _photo(name: str) -> np.ndarray:
    return getattr(data, name)().astype(np.float32) / 255.0


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return 10 * math.log10(1.0 / max(float(np.mean((a - b) ** 2)), 1e-10))


@pytest.fixture(scope="module")
def guard() -> NoHarmGuard:
    return NoHarmGuard.default()


@pytest.fixture(scope="module")
def derain():
    return create_tool("derain_guided")


def test_shipped_guard_file_says_how_it_was_made(guard: NoHarmGuard) -> None:
    raw = json.loads(GUARD_FILE.read_text())
    assert raw["features"] == list(FEATURES)
    assert raw["command"].startswith("restora train guard")
    assert isinstance(raw["seed"], int)
    assert set(guard.families) == {"denoise", "denoise@dim", "derain", "dejpeg", "deblur", "super_resolution"}
    dim = raw["validation"]["denoise@dim"]["val_dim"]  # the dim pictures' validation steps
    assert dim["steps"] >= 50 and dim["fitted"]["mean_db_kept"] > dim["mean_db_before"], dim
    assert dim["fitted"]["help_rejected"] <= dim["kept"]["help_rejected"], dim
    assert "--view-dim-only" in raw["commands"]["denoise@dim"]
    for family, model in guard.families.items():
        assert 0.0 < model.threshold < 1.0, family
        assert len(model.weights) == len(FEATURES)
        val = raw["validation"][family]
        assert val["val_auc"] is not None and val["val_auc"] > 0.8, (family, val)
        # on the validation photos the guard must pay for itself: the kept steps gain more on
        # average than all of them, most harmful steps are stopped, and it does not simply
        # reject everything (the deblurs and super-resolution lose PSNR on most pictures they are
        # tried on, so their thresholds are strict)
        assert val["val_mean_db_kept_after"] > val["val_mean_db_kept_before"], (family, val)
        assert val["val_harm_rejected"] >= 0.8, (family, val)
        assert val["val_help_rejected"] <= 0.75, (family, val)


def test_features_are_finite_and_do_not_depend_on_size() -> None:
    photo = _photo("astronaut")
    noisy = degrade.apply(photo, "noise", 0.5, seed=3)
    nlm = create_tool("denoise_nlm")
    small = residual_features(noisy[:256, :256], nlm(noisy[:256, :256]))
    large = residual_features(noisy, nlm(noisy))
    assert set(small) == set(FEATURES)
    assert all(math.isfinite(v) for v in [*small.values(), *large.values()])
    for k in ("removed_over_noise", "big_share", "residual_correlation", "residual_sign"):
        assert abs(small[k] - large[k]) < 0.35, (k, small[k], large[k])
    same = residual_features(photo, photo)
    assert same["big_share"] == 0.0 and same["pieces"] == 0.0


@pytest.mark.parametrize("kind", ["barcode", "text"])
def test_guard_rejects_derain_that_erases_barcodes_and_text(guard: NoHarmGuard, derain, kind: str) -> None:
    damaged = 0
    for seed in range(6):
        img = negatives.render(kind, 256, seed=seed)
        out = derain(img)
        if _psnr(out, img) > 30:  # the derainer left this one nearly alone: nothing to guard
            continue
        damaged += 1
        verdict = guard.check(img, out, "derain")
        assert verdict.checked and not verdict.ok, (kind, seed, verdict.p_harm, verdict.reason)
        assert verdict.reason.startswith("likely harm")
    assert damaged >= 2, f"the derainer damaged only {damaged} of 6 {kind} pictures; the test needs harmful steps"


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea"])
def test_guard_keeps_derain_on_rain_and_denoise_on_noise(guard: NoHarmGuard, derain, name: str) -> None:
    photo = _photo(name)
    nlm = create_tool("denoise_nlm")
    for severity in (0.3, 0.7):
        rainy = degrade.apply(photo, "rain", severity, seed=1)
        dry = derain(rainy)
        assert _psnr(dry, photo) > _psnr(rainy, photo)  # a helpful step
        assert guard.check(rainy, dry, "derain").ok, (name, severity)
        noisy = degrade.apply(photo, "noise", severity, seed=1)
        assert guard.check(noisy, nlm(noisy), "denoise").ok, (name, severity)


def test_guard_rejects_ringing_deblur_on_a_sharp_photo(guard: NoHarmGuard) -> None:
    photo = _photo("astronaut")[:256, :256]
    tool = create_tool("deblur_motion")
    out = tool(photo, {"length": 15, "angle": 30})
    assert _psnr(out, photo) < 30
    assert not guard.check(photo, out, "motion_deblur").ok


def test_unguarded_steps_pass_and_large_images_use_native_crops(guard: NoHarmGuard) -> None:
    img = _photo("astronaut")
    v = guard.check(img, np.clip(img * 1.3, 0, 1), "low_light")
    assert not v.checked and v.ok
    assert not guard.check(img, img[::2, ::2], "denoise").checked  # a size change is not judged
    boxes = guard_crops((3000, 4000))
    assert len(boxes) == 4 and all(h == w == 512 for _, _, h, w in boxes)
    assert len({(y, x) for y, x, _, _ in boxes}) == 4


def test_a_bad_guard_file_is_a_clear_error(tmp_path) -> None:
    bad = tmp_path / "guard.json"
    bad.write_text(json.dumps({"features": ["x"], "families": {}}))
    with pytest.raises(GuardError, match="features"):
        NoHarmGuard.load(bad)
    bad.write_text("{not json")
    with pytest.raises(GuardError, match="cannot read"):
        NoHarmGuard.load(bad)


def test_agent_rolls_back_a_step_the_guard_rejects_and_says_why() -> None:
    from restora.agent import restore
    from restora.planners.scripted import ScriptedPlanner
    from restora.tools import ToolBox

    img = negatives.render("text", 256, seed=1)
    box = ToolBox(allow=["derain_guided"])
    # min_gain=-1: only the guard (and the structure check) can roll this step back
    result = restore(img, planner=ScriptedPlanner([("derain_guided", {})]), toolbox=box, max_steps=2, min_gain=-1.0)
    steps = [r for r in result.records if r.event == "step" and r.action.tool == "derain_guided"]
    assert steps and steps[0].decision == "rollback"
    assert steps[0].guard is not None and steps[0].guard["ok"] is False
    assert "likely harm" in steps[0].guard["reason"]
    assert np.array_equal(result.image, img)
    from restora.report import render_report

    assert "guard: likely harm" in render_report(result, "text.png")
    # the same step without the guard is kept: the guard is what stopped it
    kept = restore(img, planner=ScriptedPlanner([("derain_guided", {})]), toolbox=box, max_steps=2, min_gain=-1.0, guard=False)
    assert [r.decision for r in kept.records if r.event == "step" and r.action.tool == "derain_guided"] == ["accept"]


def test_guard_trainer_fits_and_writes_a_loadable_guard(tmp_path) -> None:
    from restora.imageio import save_image
    from restora.trainer.guard import FAMILIES, GuardTrainConfig, train_guard

    pool = tmp_path / "pool"
    for name in ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry"):
        save_image(pool / f"{name}.png", _photo(name))
    cfg = GuardTrainConfig(out=tmp_path / "run", clean=[pool], families=["derain"], samples=8, crop=128, workers=1, margin=0.05)
    result = train_guard(cfg)
    fitted = NoHarmGuard.load(tmp_path / "run" / "guard.json")
    assert set(fitted.families) == {"derain"}
    assert result["families"]["derain"]["train_steps"] > 0
    rows = [json.loads(line) for line in (tmp_path / "run" / "rows.jsonl").read_text().splitlines()]
    assert {r["split"] for r in rows} == {"train", "val"}
    # derain's tool is cheap and its fit was noisy: it gets sample_scale (5) times the pictures
    assert len({r["index"] for r in rows}) == 8 * FAMILIES["derain"]["sample_scale"] == 40
    assert len({r["photo"] for r in rows if r["split"] == "val"} & {r["photo"] for r in rows if r["split"] == "train"}) == 0
    assert (tmp_path / "run" / "report.md").read_text().startswith("# restora no-harm guard fit")
    assert "Vouching" in (tmp_path / "run" / "report.md").read_text()
    val = result["families"]["derain"]
    assert "vouch" in val and val["val_sure_steps"] >= 0
    assert (fitted.families["derain"].vouch is None) == (val["vouch"] is None)
    # same seed, same rows
    again = train_guard(GuardTrainConfig(out=tmp_path / "again", clean=[pool], families=["derain"], samples=8, crop=128, workers=1, margin=0.05))
    assert again["families"] == result["families"]
    # a rerun into the same folder with the sampling unchanged refits on the stored rows (the
    # fitting settings may change); a sampling change synthesizes again
    before = (tmp_path / "run" / "rows.jsonl").read_text()
    refit = train_guard(
        GuardTrainConfig(out=tmp_path / "run", clean=[pool], families=["derain"], samples=8, crop=128, workers=1, margin=0.05, threshold_rule="false_reject")
    )
    assert refit["rows_reused"] == ["derain"] and refit["steps"] == result["steps"]
    assert (tmp_path / "run" / "rows.jsonl").read_text() == before
    assert result["rows_reused"] == []
    # the vouch level calibrated on the validation steps is a refit too: never under vouch_p, never above the threshold
    scanned = train_guard(
        GuardTrainConfig(out=tmp_path / "run", clean=[pool], families=["derain"], samples=8, crop=128, workers=1, margin=0.05, vouch_scan=True, vouch_min_steps=1, vouch_max_harm=0.99)
    )
    fam = json.loads((tmp_path / "run" / "guard.json").read_text())["families"]["derain"]
    assert scanned["rows_reused"] == ["derain"] and fam["vouch"] is not None and min(0.1, fam["threshold"]) <= fam["vouch"] <= fam["threshold"]
    assert "the largest harm level from 0.1 up to its threshold" in (tmp_path / "run" / "report.md").read_text()
    resampled = train_guard(GuardTrainConfig(out=tmp_path / "run", clean=[pool], families=["derain"], samples=8, crop=160, workers=1, margin=0.05))
    assert resampled["rows_reused"] == []
    # keep_from: a refit of one family takes the other families of a guard file as they are
    kept = train_guard(
        GuardTrainConfig(out=tmp_path / "run", clean=[pool], families=["derain"], samples=8, crop=160, workers=1, margin=0.05, keep_from=GUARD_FILE)
    )
    assert kept["rows_reused"] == ["derain"] and json.loads((tmp_path / "run" / "metrics.json").read_text())["config"]["keep_from"] == str(GUARD_FILE)
    merged, shipped = json.loads((tmp_path / "run" / "guard.json").read_text()), json.loads(GUARD_FILE.read_text())
    assert set(merged["families"]) == set(shipped["families"])
    for family in set(shipped["families"]) - {"derain"}:
        assert merged["families"][family] == shipped["families"][family]
        assert merged["validation"][family] == shipped["validation"][family]
    assert merged["commands"]["derain"] == merged["command"]
    assert set(NoHarmGuard.load(tmp_path / "run" / "guard.json").families) == set(shipped["families"])
    with pytest.raises(ValueError, match="keep_from"):
        GuardTrainConfig(out=tmp_path / "x", clean=[pool], keep_from=tmp_path / "missing.json")
    (tmp_path / "other.json").write_text(json.dumps({**shipped, "features": ["removed_over_noise"]}))
    with pytest.raises(ValueError, match="other measures"):
        GuardTrainConfig(out=tmp_path / "x", clean=[pool], keep_from=tmp_path / "other.json")


def test_utility_threshold_keeps_the_steps_that_gain_most() -> None:
    from restora.trainer.guard import utility_threshold

    p = np.array([0.05, 0.1, 0.3, 0.6, 0.7, 0.95])
    gain = np.array([2.0, 1.0, 0.5, -20.0, 3.0, -1.0])
    # keeping up to 0.3 gains 3.5 dB; through 0.7 it is 3.5 - 10 (clipped) + 3 = -3.5
    t = utility_threshold(p, gain, clip=10.0)
    assert 0.3 < t < 0.6
    # without the harmful step everything but the last is kept
    assert 0.7 < utility_threshold(p[[0, 1, 2, 4, 5]], gain[[0, 1, 2, 4, 5]], clip=10.0) < 0.95
    # all helpful: keep everything
    assert utility_threshold(p, np.abs(gain), clip=10.0) == 0.99


def test_guard_samples_can_carry_an_earlier_degradation_as_context(tmp_path) -> None:
    """With context_share, a picture may also carry a degradation formed before the family's own
    (dark, haze, blur under a JPEG); the step is judged against the picture with that context, so
    a dejpeg step is not blamed for the darkness it was never meant to fix."""
    from restora.imageio import save_image
    from restora.trainer.guard import FORMATION, GuardTrainConfig, sample_steps

    pool = tmp_path / "pool"
    save_image(pool / "coffee.png", _photo("coffee"))
    base = GuardTrainConfig(out=tmp_path / "g", clean=[pool], families=["dejpeg"], samples=8, crop=96, hard_share=0.0, context_share=0.0)
    with_ctx = GuardTrainConfig(**{**base.to_json(), "context_share": 1.0, "out": tmp_path / "g", "clean": [pool]})
    path = str(pool / "coffee.png")
    plain = sample_steps(path, "coffee.png", "train", "dejpeg", 3, base.to_json())["rows"]
    ctx = sample_steps(path, "coffee.png", "train", "dejpeg", 3, with_ctx.to_json())["rows"]
    assert plain and ctx and " + " not in plain[0]["condition"]
    context = ctx[0]["condition"].split(" + ")[0].split("@")[0]
    assert context in FORMATION and FORMATION.index(context) < FORMATION.index("jpeg")
    # the same draws otherwise: the family's own degradation and severity are unchanged
    assert ctx[0]["condition"].split(" + ")[1] == plain[0]["condition"]


@pytest.mark.parametrize(("family", "own"), [("derain", "rain"), ("denoise", "noise")])
def test_samples_can_carry_a_later_degradation_on_top(tmp_path, monkeypatch, family, own) -> None:
    """The agent often derains first, while a downscale, noise or JPEG formed after the rain is
    still there, and denoises noise that was downscaled or compressed afterwards: with the
    family's later_share, its own degradation is followed by one that forms after it, on the
    picture and the reference alike, and the rest of the sample's draws are unchanged."""
    from restora.imageio import save_image
    from restora.trainer import guard as trainer

    pool = tmp_path / "pool"
    save_image(pool / "coffee.png", _photo("coffee"))
    cfg = trainer.GuardTrainConfig(out=tmp_path / "g", clean=[pool], families=[family], samples=8, crop=96, hard_share=0.0, context_share=0.0, degraded_share=1.0).to_json()
    path = str(pool / "coffee.png")
    from restora import degrade

    applied: list[tuple[str, float, int, tuple[int, ...]]] = []
    real_apply = degrade.apply

    def recording_apply(image, name, severity, seed=0, **kwargs):
        applied.append((str(name), round(float(severity), 6), int(seed), image.shape))
        return real_apply(image, name, severity, seed=seed, **kwargs)

    monkeypatch.setattr(degrade, "apply", recording_apply)
    rows, calls = {}, {}
    for share in (0.0, 1.0):
        applied.clear()
        monkeypatch.setitem(trainer.FAMILIES, family, {**trainer.FAMILIES[family], "later_share": share})
        rows[share] = trainer.sample_steps(path, "coffee.png", "train", family, 2, cfg)["rows"]
        calls[share] = list(applied)
    plain, later = rows[0.0][0]["condition"], rows[1.0][0]["condition"]
    assert plain.startswith(own) and " + " not in plain
    first, on_top = later.split(" + ")
    assert first == plain
    name = on_top.split("@")[0]
    assert trainer.FORMATION.index(name) > trainer.FORMATION.index(own)
    # its own is drawn as without the later one; the later one is applied twice with the same
    # severity and seed: to the reference and to the degraded picture, so a step that removes only
    # its own degradation is not blamed for the downscale or JPEG left over
    assert calls[0.0] == [c for c in calls[1.0] if c[0] == own] and [c[0] for c in calls[0.0]] == [own]
    extra = [c for c in calls[1.0] if c[0] != own]
    assert len(extra) == 2 and extra[0] == extra[1] and extra[0][0] == name


def test_samples_can_get_a_cameras_look_mild_severities_and_mottled_camera_noise(tmp_path) -> None:
    """camera_share gives a picture a camera's own softness first (on the reference too: real
    photos at native resolution are soft, the pool's downscaled ones crisp), mild_share draws the
    severity from the faint end and luma_nr_share gives camera noise the camera's luminance noise
    reduction; none moves the sample's other draws, and at 0 the rows (and their stamp) are the
    plain ones."""
    from restora.imageio import save_image
    from restora.trainer import guard as trainer

    pool = tmp_path / "pool"
    save_image(pool / "coffee.png", _photo("coffee"))
    common = dict(out=tmp_path / "g", clean=[pool], families=["denoise"], samples=8, crop=96, hard_share=0.0, context_share=0.0, degraded_share=1.0)
    with pytest.raises(ValueError, match="mild_share must be in"):
        trainer.GuardTrainConfig(**common, mild_share=1.5)
    plain_cfg, varied_cfg = trainer.GuardTrainConfig(**common), trainer.GuardTrainConfig(**common, camera_share=1.0, mild_share=1.0, luma_nr_share=1.0)
    assert "camera_share" not in plain_cfg.rows_stamp()["denoise"] and varied_cfg.rows_stamp()["denoise"]["mild_share"] == 1.0
    path = str(pool / "coffee.png")
    index = next(i for i in range(40) if "noise/camera@" in trainer.sample_steps(path, "coffee.png", "train", "denoise", i, plain_cfg.to_json())["rows"][0]["condition"])
    plain, varied = (trainer.sample_steps(path, "coffee.png", "train", "denoise", index, c.to_json())["rows"] for c in (plain_cfg, varied_cfg))
    assert "camera_look" not in plain[0] and 0.4 <= varied[0]["camera_look"] <= 1.3
    assert varied[0]["condition"].startswith("noise/camera+luma_nr@") and float(varied[0]["condition"].split("@")[1]) < trainer.MILD_SEVERITY
    assert [r["tool"] for r in plain] == [r["tool"] for r in varied]


def test_shipped_guard_vouches_only_where_its_validation_earned_it(guard: NoHarmGuard) -> None:
    raw = json.loads(GUARD_FILE.read_text())
    vouching = {f for f, m in guard.families.items() if m.vouch is not None}
    assert vouching, "no family vouches: the NR score alone would judge every step again"
    for family, model in guard.families.items():
        val = raw["validation"][family]
        if model.vouch is None:
            continue
        assert model.vouch <= model.threshold, family
        assert val["val_sure_steps"] >= 30 and val["val_sure_harm_share"] <= 0.05, (family, val)
    # the deblurs are the family the guard is least sure of (most of their validation steps harm)
    assert guard.families["deblur"].vouch is None


def test_vouch_threshold_needs_enough_sure_steps_and_few_harmful() -> None:
    from restora.trainer.guard import vouch_threshold

    p = np.linspace(0.0, 0.09, 40)
    harm = np.zeros(40)
    assert vouch_threshold(p, harm, 0.1, 0.05, 30) == 0.1
    harm[:3] = 1  # 3 of 40 = 7.5% harmful
    assert vouch_threshold(p, harm, 0.1, 0.05, 30) is None
    assert vouch_threshold(p[:20], np.zeros(20), 0.1, 0.05, 30) is None  # too few to tell


def test_agent_keeps_a_denoise_the_guard_vouches_for_though_the_nr_score_fell() -> None:
    """After a de-blocking, the denoise that takes out the noise underneath reads as worse to
    BRISQUE and PIQE (they over-reward texture) while it gains about 3 dB; the guard, sure of it,
    keeps it. Without vouching it is rolled back."""
    from restora.agent import restore
    from restora.planners.scripted import ScriptedPlanner
    from restora.report import step_verdict
    from restora.tools import ToolBox

    photo = _photo("astronaut")[:256, :256]
    img = degrade.apply(degrade.apply(photo, "noise", 0.7, seed=1), "jpeg", 0.5, seed=1)
    box = ToolBox(allow=["dejpeg_waifu2x", "denoise_srmd"])
    script = [("dejpeg_waifu2x", {}), ("denoise_srmd", {"sigma": 25.0})]
    runs = {v: restore(img, planner=ScriptedPlanner(script), toolbox=box, max_steps=3, guard_vouch=v) for v in (True, False)}
    steps = {v: [r for r in res.records if r.event == "step" and r.action.tool == "denoise_srmd"][0] for v, res in runs.items()}
    assert steps[True].gain < 0 and steps[True].guard["vouched"], steps[True].guard
    assert steps[True].decision == "accept" and steps[False].decision == "rollback"
    assert _psnr(runs[True].image, photo) > _psnr(runs[False].image, photo) + 1.5
    assert step_verdict(steps[True]).startswith("kept: the no-harm guard vouches for it")
    assert "quality fell" in step_verdict(steps[False])
    # on a clean photo the same denoise is rolled back: the guard may be sure of it (the shipped
    # denoise family vouches up to 0.40 and reads this step 0.14), but no reading finds noise there,
    # so its vouch does not count against the NR score
    clean = restore(photo, planner=ScriptedPlanner([("denoise_srmd", {"sigma": 25.0})]), toolbox=box, max_steps=2)
    step = [r for r in clean.records if r.event == "step" and r.action.tool == "denoise_srmd"][0]
    assert step.decision == "rollback", step.guard
    assert not step.guard["vouched"] or step.tool_info.get("vouch_withheld") == "no reading finds noise", (step.guard, step.tool_info)
    assert _psnr(clean.image, photo) == float("inf") or np.array_equal(clean.image, photo)


def test_the_vouch_needs_the_classical_reading_to_find_the_target_and_a_frame_that_is_not_dark() -> None:
    """A network false alarm is where the guard must not overrule the NR score (a clean LIVE1
    photo read as noisy by the network alone was denoised into flat paint with the guard sure of
    it); on a dark frame its PSNR-based sureness does not carry."""
    from restora.agent.nodes import vouch_withheld

    def report(net: bool, classical: bool, dark: bool = False) -> dict:
        findings = {"noise": {"present": net}, "dark": {"present": dark}}
        return {"findings": findings, "judge": {"findings": {"noise": {"present": classical}}}}

    assert vouch_withheld(report(True, True), report(True, True), "denoise") is None
    assert vouch_withheld(report(False, False), report(True, True), "denoise") is None  # found in the input
    assert "only the network" in vouch_withheld(report(True, False), report(True, False), "denoise")
    assert vouch_withheld(report(False, False), report(False, False), "denoise") == "no reading finds noise"
    assert vouch_withheld(report(True, True, dark=True), None, "denoise") == "the frame reads dark"


def test_a_dim_picture_is_kept_dim_once_its_brightening_was_declined() -> None:
    """A guard family measured on the dim picture viewed brightened may vouch on a dark frame only
    after a brightening was tried and not kept (a dim polyu shot, its ground truth as dim, denoised
    on the vouch and then brightened by the gamma curve ended at 8.17 dB, 41.00 as it was); once
    such a step is kept, the planner plans no tone step, though the frame still reads dark."""
    from restora.agent.nodes import vouch_withheld
    from restora.planners.base import HistoryItem, Observation
    from restora.planners.heuristic import HeuristicPlanner
    from restora.tools import ToolBox

    dim = {"findings": {"noise": {"present": True}, "dark": {"present": True}}, "judge": {"findings": {"noise": {"present": True}}}}
    gamma = HistoryItem(step=0, tool="lowlight_gamma", task="low_light", params={}, decision="rollback")
    lime = gamma.model_copy(update={"tool": "lowlight_lime", "decision": "accept"})
    assert vouch_withheld(dim, dim, "denoise", viewed=False, history=[gamma.model_dump()]) == "the frame reads dark"
    assert vouch_withheld(dim, dim, "denoise", viewed=True) == "the frame reads dark and its brightening was not tried"
    assert vouch_withheld(dim, dim, "denoise", viewed=True, history=[gamma.model_dump()]) is None
    both = ["lowlight_gamma", "lowlight_lime"]  # every brightening the run has must have been tried
    assert vouch_withheld(dim, dim, "denoise", viewed=True, history=[gamma.model_dump()], brighteners=both) is not None
    declined = [gamma.model_dump(), gamma.model_copy(update={"tool": "lowlight_lime"}).model_dump()]
    assert vouch_withheld(dim, dim, "denoise", viewed=True, history=declined, brighteners=both) is None
    assert vouch_withheld(dim, dim, "denoise", viewed=True, history=[gamma.model_dump(), lime.model_dump()]) is not None

    findings = {
        "noise": {"degradation": "noise", "present": True, "severity": 0.3, "evidence": {"noise_sigma": 4.0}},
        "dark": {"degradation": "dark", "present": True, "severity": 0.6, "evidence": {}},
    }
    denoise = HistoryItem(step=1, tool="denoise_srmd", task="denoise", params={"sigma": 5.0}, decision="accept")
    planner = HeuristicPlanner()
    catalogue = {n: t.describe() for n, t in ToolBox().catalogue().items()}

    def next_task(history: list[HistoryItem]):
        obs = Observation(step=len(history), report={"findings": findings}, scores={}, input_report={"findings": findings},
                          history=history, steps_left=6, seconds_left=300.0, catalogue=catalogue)
        return planner.next_action(obs)

    # noise found on the brightened view alone waits on a dark frame until every brightening was
    # tried and none kept (then the picture stays dim and its noise is the step left)
    seen = {**findings, "noise": {**findings["noise"], "evidence": {"noise_sigma": 4.0, "only_viewed": 1.0}}}
    findings_shown = findings
    findings = seen
    assert next_task([]).task == "low_light"
    lime_declined = lime.model_copy(update={"decision": "rollback"})
    assert next_task([gamma, lime_declined]).task == "denoise"
    findings = findings_shown
    # kept on the NR gain, not as a dim picture: brightening is still planned (LIME, untried)
    assert next_task([gamma, denoise]).task == "low_light"
    after = next_task([gamma, denoise.model_copy(update={"kept_dim": True})])
    assert after.kind == "stop", after
    findings.pop("noise")  # the noise gone too: the stop says why the dark it reads is left
    after = next_task([gamma, denoise.model_copy(update={"kept_dim": True})])
    assert after.kind == "stop" and "stays dim" in after.reason, after


def test_a_faint_steps_reason_says_it_was_faint_not_full_contrast(guard: NoHarmGuard) -> None:
    # a light smoothing of a photo with faint noise: nothing it removes rises above the piece level,
    # so every piece measure is 0, far below the denoise family's means. The reason must name the
    # low end of each measure that pushed the verdict (here "faint"), never the high end's words.
    from restora.quality.guard import EXPLAIN, EXPLAIN_LOW, NO_PIECES, PIECE_FEATURES, explain_harm

    import cv2

    photo = cv2.GaussianBlur(_photo("astronaut")[:256, :256], (0, 0), 3.0)  # soft, like a camera's picture
    noisy = np.clip(photo + np.random.default_rng(3).normal(0, 2.0 / 255, photo.shape), 0, 1).astype(np.float32)
    after = cv2.GaussianBlur(noisy, (0, 0), 0.6)
    feats = residual_features(noisy, after)
    assert all(feats[k] == 0.0 for k in PIECE_FEATURES)
    model = guard.families["denoise"]
    vec = np.array([feats[k] for k in FEATURES])
    why = explain_harm(model, vec, feats, top=len(FEATURES))
    low = [k for k in FEATURES if vec[FEATURES.index(k)] < model.mean[FEATURES.index(k)]]
    assert NO_PIECES in why  # the shipped model reads "no piece" as harm; the reason says so
    for k in low:
        assert EXPLAIN[k] not in why, (k, why)
    high = [k for k in FEATURES if k not in low and k not in PIECE_FEATURES]
    for k in high:
        assert EXPLAIN_LOW[k] not in why, (k, why)


def _soft_faint_noise() -> np.ndarray:
    import cv2

    photo = cv2.GaussianBlur(_photo("astronaut")[:256, :256], (0, 0), 3.0)  # soft, like a camera's picture
    return np.clip(photo + np.random.default_rng(3).normal(0, 2.0 / 255, photo.shape), 0, 1).astype(np.float32)


def test_a_faint_rejection_is_recorded_for_the_planner() -> None:
    # SRMD at sigma 2 on faint noise removes nothing above the piece level; the guard rejects it
    # (min_gain=-1: only the guard decides) and says it was faint, in the trace and the history
    from restora.agent import restore
    from restora.planners.scripted import ScriptedPlanner
    from restora.tools import ToolBox

    result = restore(_soft_faint_noise(), planner=ScriptedPlanner([("denoise_srmd", {"sigma": 2.0})]),
                     toolbox=ToolBox(allow=["denoise_srmd"]), max_steps=2, min_gain=-1.0)
    step = [r for r in result.records if r.event == "step" and r.action.tool == "denoise_srmd"][0]
    assert step.decision == "rollback" and step.guard["ok"] is False and step.guard["faint"] is True, step.guard
    assert result.state["history"][0]["guard_faint"] is True


def test_after_a_faint_rejection_the_planner_tries_the_same_tool_once_stronger() -> None:
    from restora.planners import HeuristicPlanner
    from restora.planners.base import HistoryItem, Observation

    report = {"findings": {"noise": {"degradation": "noise", "present": True, "severity": 0.1, "evidence": {"noise_sigma": 3.2}}}}

    def obs(*history: HistoryItem) -> Observation:
        return Observation(step=len(history), report=report, scores={}, history=list(history), steps_left=4, seconds_left=60.0)

    def srmd(sigma: float, faint: bool) -> HistoryItem:
        return HistoryItem(step=0, tool="denoise_srmd", task="denoise", params={"sigma": sigma, "rotations": 1},
                           decision="rollback", guard_rejected=True, guard_faint=faint)

    other = HistoryItem(step=1, tool="deblur_motion", task="motion_deblur", params={}, decision="rollback")
    planner = HeuristicPlanner(patience=3)
    action = planner.next_action(obs(srmd(3.2, True)))
    assert (action.tool, action.params) == ("denoise_srmd", {"sigma": 6.4, "rotations": 1}), action
    # owed even when the last `patience` steps all failed (the faint one among them)
    assert planner.next_action(obs(srmd(3.2, True), other, other)).tool == "denoise_srmd"
    # once: a stronger step that was faint too is not escalated again, and patience stops the run
    assert planner.next_action(obs(srmd(3.2, True), other, srmd(6.4, True))).kind == "stop"
    # a rejection that was not faint blames the step, not its strength: no escalation
    action = planner.next_action(obs(srmd(3.2, False)))
    assert action.kind == "stop" or action.params != {"sigma": 6.4, "rotations": 1}


def test_the_vouch_stands_where_the_network_reads_noise_too_faint_for_the_classical_reading() -> None:
    # the classical reading finds noise from sigma 5.5; below that its silence says nothing, above
    # it (a textured clean photo the network read at sigma 13) it still withholds the vouch
    from restora.agent.nodes import vouch_withheld
    from restora.perception.decide import NOISE_PRESENT_SIGMA

    def report(sigma: float) -> dict:
        return {"findings": {"noise": {"present": True, "evidence": {"noise_sigma": sigma}}},
                "judge": {"findings": {"noise": {"present": False}}}}

    assert vouch_withheld(report(3.2), report(3.2), "denoise") is None
    assert vouch_withheld(report(NOISE_PRESENT_SIGMA - 0.1), None, "denoise") is None
    assert "only the network" in vouch_withheld(report(13.3), report(13.3), "denoise")
    assert "only the network" in vouch_withheld(report(NOISE_PRESENT_SIGMA), None, "denoise")


def test_a_view_family_measures_a_dim_picture_as_viewed_brightened(guard: NoHarmGuard, tmp_path) -> None:
    """A dim high-ISO photo's noise is a few grey levels: measured as it is, a denoise that takes
    it out is too faint to judge (every piece measure 0). A family fitted on the brightened view
    (``view``, ``restora train guard --view-families``) measures steps that way, on a dim picture
    only; the shipped families do not, and a guard file says which do."""
    import dataclasses

    from restora.perception.measures import view_gain
    from restora.quality.guard import is_faint

    assert [name for name, m in guard.families.items() if m.view] == ["denoise@dim"]  # the shipped fit: dim pictures only
    plain_fit = NoHarmGuard({"denoise": guard.families["denoise"]})
    fam = dataclasses.replace(guard.families["denoise"], view=True)
    viewed = NoHarmGuard({"denoise": fam})
    photo = _photo("astronaut")[:256, :256]
    dim = degrade.apply(photo, "dark", 0.8, seed=3, noise=False)
    noisy = degrade.apply(dim, "noise", 0.1, seed=3, model="camera")
    srmd = create_tool("denoise_srmd")
    out = srmd(noisy, {"sigma": 4.0})
    assert _psnr(out, dim) > _psnr(noisy, dim) + 1.0  # a helpful step
    v, plain = viewed.check(noisy, out, "denoise"), plain_fit.check(noisy, out, "denoise")
    gain = view_gain(noisy[::4, ::4])
    assert gain > 2 and v.view_gain == pytest.approx(gain) and "brightened" in v.reason
    assert v.features == pytest.approx(residual_features(noisy, out, gain))
    assert plain.view_gain == 1.0 and plain.features == pytest.approx(residual_features(noisy, out))
    assert is_faint(plain.features) and not is_faint(v.features)
    bright = degrade.apply(photo, "noise", 0.1, seed=3, model="camera")
    assert viewed.check(bright, srmd(bright, {"sigma": 4.0}), "denoise").view_gain == 1.0  # normal exposure: as it is
    raw = json.loads(GUARD_FILE.read_text())
    raw["families"]["denoise"]["view"] = True
    (tmp_path / "g.json").write_text(json.dumps(raw))
    assert NoHarmGuard.load(tmp_path / "g.json").families["denoise"].view
    # a family for dim pictures beside the plain one (--view-dim-only): dim pictures go to it,
    # measured viewed; the rest to the plain family, as it is
    split = NoHarmGuard({"denoise": guard.families["denoise"], "denoise@dim": dataclasses.replace(fam, threshold=0.987)})
    assert guard.check(noisy, out, "denoise").threshold == guard.families["denoise@dim"].threshold  # as shipped
    on_dim = split.check(noisy, out, "denoise")
    assert on_dim.view_gain == pytest.approx(gain) and on_dim.threshold == 0.987
    on_bright = split.check(bright, srmd(bright, {"sigma": 4.0}), "denoise")
    assert on_bright.view_gain == 1.0 and on_bright.threshold == guard.families["denoise"].threshold


def test_the_trainer_can_measure_a_family_viewed_and_dim_the_denoise_context_without_its_noise(tmp_path) -> None:
    """--view-families: a family's steps are measured on the dim picture brightened, its rows are
    stamped so (stored rows of the plain fit are not reused) and its model says so; off, the rows
    and stamp are the shipped fit's. --dim-dark-context: the denoise family's dark context is the
    dimming alone (the dim exposure's own noise is the family's to remove)."""
    from restora.imageio import save_image
    from restora.trainer.guard import GuardTrainConfig, sample_steps

    pool = tmp_path / "pool"
    save_image(pool / "coffee.png", (_photo("coffee") * 0.12).astype(np.float32))  # a dim photo: view gain > 1
    base = GuardTrainConfig(out=tmp_path / "g", clean=[pool], families=["denoise", "derain"], samples=8, crop=96, hard_share=0.0, context_share=0.0)
    viewed = GuardTrainConfig(**{**base.to_json(), "out": tmp_path / "g", "clean": [pool], "view_families": ["denoise"]})
    assert "view" not in base.rows_stamp()["denoise"] and "view_families" not in base.rows_stamp()["denoise"]
    assert viewed.rows_stamp()["denoise"]["view"] is True and viewed.rows_stamp()["derain"] == base.rows_stamp()["derain"]
    path = str(pool / "coffee.png")
    plain_rows = sample_steps(path, "coffee.png", "train", "denoise", 2, base.to_json())["rows"]
    view_rows = sample_steps(path, "coffee.png", "train", "denoise", 2, viewed.to_json())["rows"]
    assert [r["dpsnr"] for r in plain_rows] == [r["dpsnr"] for r in view_rows]  # the same steps ...
    assert [r["features"] for r in plain_rows] != [r["features"] for r in view_rows]  # ... measured brightened
    # ... and as they are, for the kept family's figures on dim pictures (--view-dim-only)
    assert [r["features"] for r in plain_rows] == [r["features_as_is"] for r in view_rows]
    assert all(r["view_gain"] > 1 for r in view_rows) and not any("view_gain" in r for r in plain_rows)
    with pytest.raises(ValueError, match="view_dim_only needs keep_from"):
        GuardTrainConfig(out=tmp_path / "g", clean=[pool], view_families=["denoise"], view_dim_only=True)
    assert viewed.rows_stamp() == GuardTrainConfig(**{**viewed.to_json(), "out": tmp_path / "g", "clean": [pool],
                                                      "keep_from": GUARD_FILE, "view_dim_only": True}).rows_stamp()
    with pytest.raises(ValueError, match="unknown guard families"):
        GuardTrainConfig(out=tmp_path / "g", clean=[pool], view_families=["dehaze"])
    ctx = {**base.to_json(), "context_share": 1.0, "out": tmp_path / "g", "clean": [pool]}
    for index in range(40):  # a picture whose context is dark
        noisy_ctx = sample_steps(path, "coffee.png", "train", "denoise", index, ctx)["rows"]
        if noisy_ctx and noisy_ctx[0]["condition"].startswith("dark@"):
            break
    else:
        raise AssertionError("no dark context drawn")
    dimmed = sample_steps(path, "coffee.png", "train", "denoise", index, {**ctx, "dim_dark_context": True})["rows"]
    assert dimmed[0]["condition"] == noisy_ctx[0]["condition"]  # the same draws ...
    assert [r["dpsnr"] for r in dimmed] != [r["dpsnr"] for r in noisy_ctx]  # ... against a reference without the dark's noise
    assert GuardTrainConfig(**{**ctx, "dim_dark_context": True}).rows_stamp()["denoise"]["dim_dark_context"] is True
    assert "dim_dark_context" not in GuardTrainConfig(**{**ctx, "dim_dark_context": True}).rows_stamp()["derain"]
