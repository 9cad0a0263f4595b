"""The classical tools: each runs through ``Tool.__call__`` on a real photo crop with the right
form, deterministically, rejects unknown params, and fixes its own degradation (made by
``restora.degrade`` from a clean photo) with the first params ``suggest_params`` proposes from
plausible, slightly wrong evidence, by a clear PSNR margin. Plus the estimators the tools rely on
when evidence is missing (blur kernel, JPEG quality and grid, rain angle)."""

from __future__ import annotations

import numpy as np
import pytest

from restora import degrade
from restora.errors import ToolError
from restora.tools import create_tool, get_tool
from restora.tools._classical import SpectrumFit, deconvolve, guided_filter, rgb_to_luma

CLASSICAL = [
    "deblur_defocus",
    "deblur_motion",
    "dehaze_clahe",
    "dehaze_dcp",
    "dejpeg_deblock",
    "denoise_bm3d",
    "denoise_nlm",
    "derain_guided",
    "lowlight_gamma",
    "lowlight_lime",
]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / max(np.mean((a.astype(np.float64) - b) ** 2), 1e-12)))


@pytest.mark.parametrize("name", CLASSICAL)
def test_runs_on_a_photo_and_keeps_the_contract(name: str, clean_photo: np.ndarray):
    image = np.ascontiguousarray(clean_photo[:96, :128])
    tool = create_tool(name)
    out = tool(image)
    assert out.dtype == np.float32 and out.shape == image.shape
    assert 0.0 <= float(out.min()) and float(out.max()) <= 1.0
    np.testing.assert_array_equal(out, create_tool(name)(image.copy()))  # deterministic
    with pytest.raises(ToolError, match="invalid params"):
        tool(image, {"no_such_param": 1})
    for p in get_tool(name).suggest_params(0.5, {}):  # missing evidence is fine
        assert isinstance(p, get_tool(name).Params)


# degradation, severity, evidence a perception module could plausibly report (a little off)
CASES = {
    "denoise_nlm": ("noise", 0.3, lambda lab, img: {"noise_sigma": lab["sigma"] * 1.2}, 5.0),
    "denoise_bm3d": ("noise", 0.3, lambda lab, img: {"noise_sigma": lab["sigma"] * 0.8}, 7.0),
    "deblur_motion": (
        "motion_blur",
        0.4,
        lambda lab, img: {"blur_length": lab["length"] * 1.15, "blur_angle": lab["angle"] + 5.0},
        4.0,
    ),
    "deblur_defocus": ("defocus", 0.4, lambda lab, img: {"defocus_radius": lab["radius"] * 0.85}, 4.0),
    "dehaze_dcp": ("haze", 0.5, lambda lab, img: {}, 5.0),
    "dehaze_clahe": ("haze", 0.5, lambda lab, img: {}, 5.0),
    "derain_guided": ("rain", 0.6, lambda lab, img: {}, 4.0),
    "lowlight_lime": ("dark", 0.6, lambda lab, img: {"mean_luma": float(rgb_to_luma(img).mean())}, 5.0),
    "lowlight_gamma": ("dark", 0.6, lambda lab, img: {"mean_luma": float(rgb_to_luma(img).mean())}, 8.0),
    "dejpeg_deblock": ("jpeg", 0.6, lambda lab, img: {"jpeg_quality": lab["quality"] * 1.2}, 0.5),
}


@pytest.mark.parametrize("name", CLASSICAL)
def test_fixes_its_own_degradation(name: str, clean_photo: np.ndarray):
    deg, severity, evidence_of, margin = CASES[name]
    degraded, label = degrade.apply_labeled(clean_photo, deg, severity, seed=5)
    params = get_tool(name).suggest_params(severity, evidence_of(label, degraded))[0]
    out = create_tool(name)(degraded, params)
    before, after = psnr(degraded, clean_photo), psnr(out, clean_photo)
    assert after > before + margin, f"{name} on {deg}: PSNR {before:.2f} -> {after:.2f} (want +{margin} dB)"


def test_tiny_images_fail_clearly_or_work():
    tiny = np.full((6, 9, 3), 0.5, np.float32)
    for name in CLASSICAL:
        try:
            out = create_tool(name)(tiny)
        except ToolError as e:
            assert "at least" in str(e), (name, str(e))
        else:
            assert out.shape == tiny.shape


def test_motion_estimate_finds_length_and_angle(clean_photos: list[np.ndarray]):
    from restora.tools.deblur_motion import estimate_motion

    blurred, lab = degrade.apply_labeled(clean_photos[1], "motion_blur", 0.5, seed=2)
    length, angle = estimate_motion(SpectrumFit(blurred))  # no evidence at all
    assert abs(length - lab["length"]) < 0.15 * lab["length"]
    assert abs((angle - lab["angle"] + 90) % 180 - 90) < 4.0
    # with rough evidence, refined towards the truth
    length, angle = estimate_motion(SpectrumFit(blurred), lab["length"] * 1.25, lab["angle"] - 8.0)
    assert abs(length - lab["length"]) < 0.1 * lab["length"]
    assert abs((angle - lab["angle"] + 90) % 180 - 90) < 3.0


def test_defocus_radius_estimate(clean_photos: list[np.ndarray]):
    from restora.tools.deblur_defocus import estimate_radius

    for sev in (0.2, 0.7):
        blurred, lab = degrade.apply_labeled(clean_photos[2], "defocus", sev, seed=1)
        assert abs(estimate_radius(SpectrumFit(blurred)) - lab["radius"]) < 0.1 * lab["radius"]


def test_boundary_aware_deconvolution_does_not_ring_at_the_border(clean_photo: np.ndarray):
    kernel = degrade.motion_kernel(15, 30)
    blurred = degrade.apply(clean_photo, "motion_blur", 0.5, seed=0, angle=30.0)
    band = np.zeros(clean_photo.shape[:2], bool)
    band[:12], band[-12:], band[:, :12], band[:, -12:] = True, True, True, True
    cg = deconvolve(blurred, kernel, "cg", iterations=30, balance=1e-4)
    wiener = deconvolve(blurred, kernel, "wiener", balance=1e-4)
    err_cg = np.abs(cg - clean_photo)[band].mean()
    assert err_cg < np.abs(blurred - clean_photo)[band].mean()
    assert err_cg < np.abs(wiener - clean_photo)[band].mean()


def test_jpeg_quality_and_grid_are_measured_even_on_a_crop(clean_photo: np.ndarray):
    from restora.tools.dejpeg_deblock import estimate_quality, grid_offset

    for quality in (15, 45):
        decoded = degrade.jpeg_roundtrip(clean_photo, quality)
        luma = rgb_to_luma(decoded).astype(np.float64) * 255.0
        assert grid_offset(luma) == (0, 0)
        assert abs(estimate_quality(luma, (0, 0)) - quality) <= 2
        cropped = luma[3:, 5:]  # the block grid now starts at (5, 3)
        assert grid_offset(cropped) == (5, 3)
        assert abs(estimate_quality(cropped, (5, 3)) - quality) <= 2
    assert estimate_quality(rgb_to_luma(clean_photo).astype(np.float64) * 255.0, (0, 0)) is None


def test_rain_angle_estimate(clean_photo: np.ndarray):
    from restora.tools.derain_guided import estimate_rain_angle

    rainy, lab = degrade.apply_labeled(clean_photo, "rain", 0.8, seed=4)
    assert abs(estimate_rain_angle(rgb_to_luma(rainy), 11) - lab["angle"]) < 8.0


def test_denoise_nlm_leaves_a_clean_photo_alone(clean_photo: np.ndarray):
    # OpenCV filters 8-bit Lab; only its change is applied, so a tiny sigma costs no precision
    out = create_tool("denoise_nlm")(clean_photo, {"sigma": 0.5})
    assert psnr(out, clean_photo) > 45.0


def test_guided_filter_keeps_edges_and_smooths_flat_noise():
    rng = np.random.default_rng(0)
    step = np.zeros((64, 64), np.float32)
    step[:, 32:] = 1.0
    noisy = np.clip(step + rng.normal(0, 0.05, step.shape), 0, 1).astype(np.float32)
    out = guided_filter(noisy, noisy, 4, 1e-2)
    assert out[:, 36:60].std() < 0.5 * noisy[:, 36:60].std()  # flat side smoothed
    assert out[:, 34:].mean() - out[:, :30].mean() > 0.9  # the edge survives
