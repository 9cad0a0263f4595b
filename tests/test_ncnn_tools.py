"""The learned ncnn tools (SRMD, waifu2x, Real-ESRGAN) on real photo crops: each one fixes its
own synthetic degradation (PSNR against the clean crop), tiling matches the one-pass result,
runs are deterministic, and the parameter suggestions follow the evidence."""

from __future__ import annotations

import numpy as np
import pytest

from restora.degrade import apply_labeled
from restora.tools import create_tool, get_tool
from restora.tools._ncnn import back_project, pad_to_multiple, resize
from restora.tools._tiling import run_tiled, tile_starts


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / max(np.mean((a.astype(np.float64) - b) ** 2), 1e-12)))


def detail(img: np.ndarray) -> float:
    """High-frequency energy: mean squared Laplacian of the grey image."""
    import cv2

    return float(np.mean(cv2.Laplacian(img.mean(axis=2), cv2.CV_32F) ** 2))


@pytest.fixture(scope="module")
def tools():
    return {n: create_tool(n) for n in ("denoise_srmd", "dejpeg_waifu2x", "sr_srmd", "sr_realesrgan")}


# -- each tool fixes its degradation ---------------------------------------------------------
def test_denoise_srmd_removes_gaussian_noise(tools, clean_photo):
    noisy, label = apply_labeled(clean_photo, "noise", 0.5, seed=3)  # sigma 27.5
    params = get_tool("denoise_srmd").suggest_params(0.5, {"noise_sigma": label["sigma"]})[0]
    out = tools["denoise_srmd"](noisy, params)
    before, after = psnr(noisy, clean_photo), psnr(out, clean_photo)
    assert after > 30.0 and after - before > 8.0, (before, after)
    # the noise level matters: a map far too weak leaves most of the noise in
    weak = tools["denoise_srmd"](noisy, {"sigma": 5})
    assert psnr(weak, clean_photo) < after - 3.0


def test_dejpeg_waifu2x_removes_compression_artefacts(tools, clean_photo):
    jpeg, label = apply_labeled(clean_photo, "jpeg", 0.8, seed=3)  # quality 20
    params = get_tool("dejpeg_waifu2x").suggest_params(0.8, {"jpeg_quality": label["quality"]})[0]
    out = tools["dejpeg_waifu2x"](jpeg, params)
    assert psnr(out, clean_photo) - psnr(jpeg, clean_photo) > 1.0


def test_sr_srmd_restores_lost_resolution(tools, clean_photo):
    soft, label = apply_labeled(clean_photo, "low_res", 0.5, seed=3)  # factor 2.75
    params = get_tool("sr_srmd").suggest_params(0.5, {"lowres_factor": label["factor"]})[0]
    out = tools["sr_srmd"](soft, params)
    assert out.shape == soft.shape
    assert psnr(out, clean_photo) - psnr(soft, clean_photo) > 0.5
    assert detail(out) > 1.3 * detail(soft)


def test_sr_realesrgan_sharpens_and_stays_faithful(tools, clean_photo):
    """A GAN invents texture, so PSNR is not its strength (on Kodak crops -0.8 .. +0.6 dB against
    the bicubic input with back-projection, -2 .. -4 dB without); what it must do is sharpen a
    lot, and back-projection must pull it back towards the truth."""
    clean = np.ascontiguousarray(clean_photo[16:144, 16:144])  # 128 px: the GAN is the slow one
    soft, label = apply_labeled(clean, "low_res", 0.5, seed=3)
    first, crisp = get_tool("sr_realesrgan").suggest_params(0.5, {"lowres_factor": label["factor"]})[:2]
    assert first.fidelity and not crisp.fidelity
    out = tools["sr_realesrgan"](soft, first)
    raw = tools["sr_realesrgan"](soft, crisp)
    assert out.shape == raw.shape == soft.shape
    p_soft, p_out, p_raw = (psnr(x, clean) for x in (soft, out, raw))
    assert p_out > p_raw + 1.0 and p_out > p_soft - 1.0, (p_soft, p_out, p_raw)
    e_soft, e_out, e_raw, e_clean = map(detail, (soft, out, raw, clean))
    assert e_out > 3.0 * e_soft and e_raw > e_out, (e_soft, e_out, e_raw)
    assert e_raw < e_clean  # sharper, but no noise or ringing beyond the real detail


def test_upscale_mode_sizes(tools, clean_photo):
    small = np.ascontiguousarray(clean_photo[:24, :32])
    assert tools["sr_srmd"](small, {"mode": "upscale", "scale": 3}).shape == (72, 96, 3)
    up2 = tools["sr_realesrgan"](small, {"mode": "upscale", "scale": 2})
    assert up2.shape == (48, 64, 3)
    # back-projected: shrinking the result gives the input back closely
    assert psnr(resize(up2, 32, 24), small) > 38.0


# -- tiling and determinism ----------------------------------------------------------------
def test_tiling_matches_one_pass_srmd_exactly(clean_photo):
    one = create_tool("sr_srmd")
    tiled = create_tool("sr_srmd")
    tiled.tile = 64  # 2x2 overlapping tiles; the default tile (384) runs this crop in one pass
    small = np.ascontiguousarray(clean_photo[:100, :112])
    a = one(small, {"mode": "upscale", "scale": 2, "fidelity": False})
    b = tiled(small, {"mode": "upscale", "scale": 2, "fidelity": False})
    np.testing.assert_allclose(a, b, atol=1e-4)  # context 12 = SRMD's receptive radius


def test_tiling_waifu2x_close_to_one_pass_and_deterministic(tools, clean_photo):
    jpeg, _ = apply_labeled(np.ascontiguousarray(clean_photo[:96, :120]), "jpeg", 0.6, seed=1)
    tiled = create_tool("dejpeg_waifu2x")
    tiled.tile = 64  # 2x2 tiles
    a = tools["dejpeg_waifu2x"](jpeg)
    b = tiled(jpeg)
    # CUNet's squeeze-excitation pools over the whole tile, so tiles differ slightly
    diff = np.abs(a - b)
    assert diff.mean() < 3e-3 and diff.max() < 0.06, (diff.mean(), diff.max())
    np.testing.assert_array_equal(b, tiled(jpeg.copy()))


def test_run_tiled_blends_overlaps_exactly_for_a_local_filter():
    import cv2

    rng = np.random.default_rng(0)
    img = rng.random((203, 157, 3), dtype=np.float32)

    def blur_up2(t: np.ndarray) -> np.ndarray:  # 5x5 box blur (radius 2), then 2x nearest
        b = cv2.blur(t, (5, 5), borderType=cv2.BORDER_REFLECT_101)
        return np.repeat(np.repeat(b, 2, axis=0), 2, axis=1)

    whole = blur_up2(img)
    tiled = run_tiled(blur_up2, img, scale=2, tile=64, overlap=8, context=4)
    assert tiled.shape == (406, 314, 3)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)
    assert tile_starts(203, 64, 8) == [0, 56, 112, 139]


def test_padding_and_back_projection_helpers():
    img = np.random.default_rng(1).random((10, 13, 3), dtype=np.float32)
    padded, pads = pad_to_multiple(img, 4, margin=28, mode="replicate")
    assert padded.shape[0] % 4 == 0 and padded.shape[1] % 4 == 0 and pads[0] == 28
    np.testing.assert_array_equal(padded[28:38, 28:41], img)
    flat = np.full((20, 26, 3), 0.5, np.float32)
    fixed = back_project(flat, img)
    assert np.abs(resize(fixed, 13, 10) - img).mean() < 0.5 * np.abs(resize(flat, 13, 10) - img).mean()


# -- parameter suggestions -----------------------------------------------------------------
def test_suggestions_follow_the_evidence():
    srmd = get_tool("denoise_srmd")
    assert [p.sigma for p in srmd.suggest_params(0.5, {"noise_sigma": 20.0})] == [20.0, 14.0, 28.0]
    assert srmd.suggest_params(0.9, {})[0].sigma > srmd.suggest_params(0.1, {})[0].sigma

    w2x = get_tool("dejpeg_waifu2x")
    levels = [w2x.suggest_params(0.5, {"jpeg_quality": q})[0].level for q in (90, 60, 30, 10)]
    assert levels == sorted(levels) and levels[0] == 0 and levels[-1] >= 2

    esr = get_tool("sr_realesrgan")
    first = esr.suggest_params(0.5, {"lowres_factor": 1.9})[0]
    assert (first.mode, first.scale) == ("restore", 2)
    assert esr.suggest_params(0.5, {"lowres_factor": 3.7})[0].scale == 4
    assert esr.suggest_params(0.5, {})[0].factor == pytest.approx(2.75)

    sr = get_tool("sr_srmd")
    assert [sr.suggest_params(0.5, {"lowres_factor": f})[0].scale for f in (2.1, 3.0, 3.9)] == [2, 3, 4]


def test_params_are_checked():
    from restora.errors import ToolError

    with pytest.raises(ToolError, match="invalid params"):
        get_tool("sr_realesrgan").parse_params({"scale": 3})
    with pytest.raises(ToolError, match="invalid params"):
        get_tool("denoise_srmd").parse_params({"sigma": 100})
    with pytest.raises(ToolError, match="invalid params"):
        get_tool("dejpeg_waifu2x").parse_params({"level": 4})
