"""restora.perception on real clean photos and synthetic degradations of them (restora.degrade)."""

from __future__ import annotations

import numpy as np
import pytest

from restora import degrade
from restora.perception import DegradationReport, Finding, measure_all, perceive
from restora.taxonomy import Degradation

ALL = [d.value for d in Degradation]
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


@pytest.fixture(scope="module")
def three(clean_photos: list[np.ndarray]) -> list[np.ndarray]:
    """A landscape, a close-up and a portrait: kodim01 (house), kodim10 (boats), set5 baby."""
    return [clean_photos[0], clean_photos[3], clean_photos[8]]


def test_clean_photos_read_clean(clean_photos):
    for i, img in enumerate(clean_photos):
        report = perceive(img)
        assert report.is_clean(), f"clean photo #{i} read as {report.summary()}"
        assert report.present() == []


@pytest.mark.parametrize("which", [0, 1, 2])
@pytest.mark.parametrize("name", ALL)
def test_single_degradation_is_found_and_is_the_worst(three, name, which):
    img = degrade.apply(three[which], name, 0.5, seed=which)
    report = perceive(img)
    finding = report.findings[name]
    assert finding.present, f"{name} missed; report: {report.summary()}"
    assert report.present()[0].degradation == name, report.summary()


@pytest.mark.parametrize("name", ALL)
def test_severity_grows_with_true_severity(three, name):
    sev = [perceive(degrade.apply(three[0], name, s, seed=2)).findings[name].severity for s in (0.3, 0.6, 0.9)]
    assert sev[0] > 0
    assert sev[0] <= sev[1] + 0.02 and sev[1] <= sev[2] + 0.02, sev
    assert sev[2] > sev[0], sev


def test_estimates_match_the_synthetic_parameters(three):
    img = three[0]
    noisy, lab = degrade.apply_labeled(img, "noise", 0.5, seed=1)
    assert perceive(noisy).findings["noise"].evidence["noise_sigma"] == pytest.approx(lab["sigma"], rel=0.15)

    jpg, lab = degrade.apply_labeled(img, "jpeg", 0.5)
    assert perceive(jpg).findings["jpeg"].evidence["jpeg_quality"] == pytest.approx(lab["quality"], abs=3)

    blurred, lab = degrade.apply_labeled(img, "motion_blur", 0.5, seed=3)
    ev = perceive(blurred).findings["motion_blur"].evidence
    assert ev["blur_length"] == pytest.approx(lab["length"], rel=0.2)
    assert abs((ev["blur_angle"] - lab["angle"] + 90) % 180 - 90) < 8

    disc, lab = degrade.apply_labeled(img, "defocus", 0.5)
    assert perceive(disc).findings["defocus"].evidence["defocus_radius"] == pytest.approx(lab["radius"], rel=0.25)

    small, lab = degrade.apply_labeled(img, "low_res", 0.5)
    assert perceive(small).findings["low_res"].evidence["lowres_factor"] == pytest.approx(lab["factor"], rel=0.2)

    dark = degrade.apply(img, "dark", 0.5, seed=1)
    ev = perceive(dark).findings["dark"].evidence
    assert ev["mean_luma"] == pytest.approx(float((dark @ LUMA).mean()), abs=0.02)


def test_clean_evidence_reads_as_full_quality(clean_photos):
    ev = {k: v for f in perceive(clean_photos[1]).findings.values() for k, v in f.evidence.items()}
    assert ev["noise_sigma"] < 4
    assert ev["jpeg_quality"] == 100
    assert ev["lowres_factor"] < 1.5


def test_evidence_keys_tools_rely_on(three):
    report = perceive(three[1])
    keys = {
        "noise": {"noise_sigma"},
        "jpeg": {"jpeg_quality", "blockiness"},
        "motion_blur": {"blur_length", "blur_angle"},
        "defocus": {"defocus_radius"},
        "low_res": {"lowres_factor"},
        "dark": {"mean_luma"},
        "haze": {"dark_channel_median", "black_level"},
        "rain": {"rain_streak_energy", "rain_angle"},
    }
    for name, need in keys.items():
        assert need <= set(report.findings[name].evidence), name
    for f in report.findings.values():
        assert all(isinstance(v, float) for v in f.evidence.values())


def test_report_json_round_trip_and_helpers(three):
    img = degrade.compose(three[0], "noise+jpeg", seed=4, severities={"noise": 0.6, "jpeg": 0.3})[0]
    report = perceive(img)
    text = report.model_dump_json()
    back = DegradationReport.model_validate_json(text)
    assert back == report
    assert set(back.findings) == set(ALL)
    names = [f.degradation.value for f in report.present()]
    assert {"noise", "jpeg"} <= set(names)
    sev = [f.severity for f in report.present()]
    assert sev == sorted(sev, reverse=True)
    assert not report.is_clean()
    assert report.summary().startswith(names[0])
    assert (report.width, report.height) == (img.shape[1], img.shape[0])


def test_report_validates_its_contents():
    findings = {d.value: Finding(degradation=d, present=False, severity=0.0) for d in Degradation}
    DegradationReport(findings=findings, width=8, height=8)
    partial = dict(findings)
    partial.pop("rain")
    with pytest.raises(ValueError, match="rain"):
        DegradationReport(findings=partial, width=8, height=8)
    with pytest.raises(ValueError):
        Finding(degradation=Degradation.NOISE, present=True, severity=1.5)
    with pytest.raises(ValueError, match="finite"):
        Finding(degradation=Degradation.NOISE, present=True, severity=0.5, evidence={"x": float("nan")})


def test_measures_are_plain_finite_floats(three):
    m = measure_all(three[2])
    assert all(isinstance(v, float) and np.isfinite(v) for v in m.values())


def test_a_second_read_at_512_gives_the_same_report(clean_photos):
    """(Was a timed test, which failed on a loaded CI machine: speed belongs in benchmarks, e.g.
    scripts/perception_confusion.py's seconds.) The estimators keep no state between reads."""
    img = np.ascontiguousarray(np.tile(clean_photos[0], (3, 3, 1))[:512, :512])
    first, second = perceive(img), perceive(img)
    assert {k: (f.present, f.severity, dict(f.evidence)) for k, f in first.findings.items()} == {
        k: (f.present, f.severity, dict(f.evidence)) for k, f in second.findings.items()
    }


def test_rejects_what_it_cannot_read():
    with pytest.raises(ValueError, match="too small"):
        perceive(np.zeros((16, 64, 3), np.float32))
    with pytest.raises(ValueError, match="H, W, 3"):
        perceive(np.zeros((64, 64), np.float32))
    with pytest.raises(ValueError, match="float"):
        perceive(np.zeros((64, 64, 3), np.uint8))
