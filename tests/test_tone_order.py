"""The low-light tools' order follows the training-pool calibration (scripts/calibrate_tone.py), and
CLAHE keeps its tiles at least 32 px on small pictures; checked on scikit-image photos, which the
calibration never saw."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data

import restora.tools.lowlight_gamma as lowlight_gamma
from restora import degrade
from restora.cases import center_crop
from restora.imageio import quantize
from restora.planners.heuristic import rank_tools
from restora.quality import psnr
from restora.tools import create_tool
from restora.tools._classical import clahe_lightness
from restora.tools.registry import list_tools

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")


def _darkened(name: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    clean = center_crop(getattr(skimage.data, name)().astype(np.float32) / 255.0, size)
    return clean, quantize(degrade.compose(clean, "dark", seed=3)[0])


def test_low_light_tries_the_gamma_curve_first() -> None:
    catalogue = {n: c.describe() for n, c in list_tools("low_light").items() if not c.multi_task()}
    assert rank_tools("low_light", catalogue) == ["lowlight_gamma", "lowlight_lime"]
    # dehaze: the calibration was a tie, the order stayed
    catalogue = {n: c.describe() for n, c in list_tools("dehaze").items() if not c.multi_task()}
    assert rank_tools("dehaze", catalogue)[0] == "dehaze_dcp"


def test_gamma_curve_beats_lime_on_darkened_photos_it_was_not_calibrated_on() -> None:
    gamma, lime = create_tool("lowlight_gamma"), create_tool("lowlight_lime")
    gains = []
    for name in PHOTOS:
        clean, dark = _darkened(name, 256)
        gains.append(psnr(gamma(dark, {}), clean) - psnr(lime(dark, {}), clean))
    assert np.mean(gains) > 1.0, gains


def test_clahe_tiles_are_not_smaller_than_32_px() -> None:
    img = np.random.default_rng(0).random((128, 160, 3)).astype(np.float32)
    assert np.array_equal(clahe_lightness(img, 1.0), clahe_lightness(img, 1.0, tiles=4))
    big = np.random.default_rng(1).random((300, 300, 3)).astype(np.float32)
    assert np.array_equal(clahe_lightness(big, 1.0), clahe_lightness(big, 1.0, tiles=8))


def test_small_pictures_lose_less_to_the_gamma_curves_clahe(monkeypatch: pytest.MonkeyPatch) -> None:
    """With 8 x 8 tiles on 128 px (16-px tiles) the curve's mild CLAHE cost 1.6 dB on these photos."""
    gamma = create_tool("lowlight_gamma")
    now, before = [], []
    for name in PHOTOS:
        clean, dark = _darkened(name, 128)
        now.append(psnr(gamma(dark, {}), clean))
        with monkeypatch.context() as m:
            m.setattr(lowlight_gamma, "clahe_lightness", lambda im, clip: clahe_lightness(im, clip, 8))
            before.append(psnr(gamma(dark, {}), clean))
    assert np.mean(now) > np.mean(before) + 1.0, (now, before)
