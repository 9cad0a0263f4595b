"""A deblur of a blurred picture that was then JPEG-compressed: the deconvolution's balance takes
the JPEG error as noise (``noise_floor``, :func:`restora.tools._classical.jpeg_deconv_sigma`),
which the noise estimate reads as almost none. Photos from scikit-image (no data folder needed)."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from restora import degrade
from restora.planners import HeuristicPlanner
from restora.planners.base import HistoryItem, Observation
from restora.quality import psnr
from restora.tools import ToolBox
from restora.tools._classical import JPEG_DECONV_SIGMA, jpeg_deconv_sigma


def _case(quality: int) -> tuple[np.ndarray, np.ndarray, float]:
    clean = data.astronaut()[64:256, 160:352].astype(np.float32) / 255.0
    blurred, params = degrade.apply_labeled(clean, "defocus", 0.5, seed=3)
    return clean, degrade.jpeg_roundtrip(blurred, quality), float(params["radius"])


def test_the_floor_falls_with_quality_and_after_deblocking():
    qs = [15, 30, 45, 60, 75, 90]
    as_is = [jpeg_deconv_sigma(q, deblocked=False) for q in qs]
    deblocked = [jpeg_deconv_sigma(q, deblocked=True) for q in qs]
    assert as_is == sorted(as_is, reverse=True) and deblocked == sorted(deblocked, reverse=True)
    assert all(d <= a for a, d in zip(as_is, deblocked))
    assert len(set(map(len, JPEG_DECONV_SIGMA.values()))) == 1


@pytest.mark.parametrize("deblock", [False, True], ids=["as_is", "after_waifu2x"])
def test_a_deblur_with_the_jpeg_floor_beats_the_input_and_the_floorless_one(deblock):
    clean, x, r = _case(quality=40)
    box = ToolBox(allow=["dejpeg_waifu2x", "deblur_defocus"])
    if deblock:
        x = box.run("dejpeg_waifu2x", x, {"level": 2})
    floorless = box.run("deblur_defocus", x, {"radius": r, "search": 0.0})
    floored = box.run("deblur_defocus", x, {"radius": r, "search": 0.0, "noise_floor": jpeg_deconv_sigma(40, deblock)})
    assert psnr(floored, clean) > psnr(x, clean) + 0.3
    assert psnr(floored, clean) > psnr(floorless, clean) + 1.0


def test_the_planner_gives_deblurs_the_floor_of_the_input_jpeg():
    catalogue = {n: t.describe() for n, t in ToolBox().catalogue().items()}
    inp = {"findings": {
        "jpeg": {"degradation": "jpeg", "present": True, "severity": 0.5, "evidence": {"jpeg_quality": 45}},
        "defocus": {"degradation": "defocus", "present": True, "severity": 0.5, "evidence": {"defocus_radius": 3.0}},
    }}
    now = {"findings": {"defocus": inp["findings"]["defocus"]}}
    kept = HistoryItem(step=0, tool="dejpeg_waifu2x", task="dejpeg", params={"level": 2}, decision="accept")
    obs = Observation(step=1, report=now, input_report=inp, scores={}, history=[kept], steps_left=3, seconds_left=600, catalogue=catalogue)
    action = HeuristicPlanner().next_action(obs)
    assert action.tool == "deblur_defocus" and action.params["noise_floor"] == pytest.approx(jpeg_deconv_sigma(45, True), abs=0.01)
    plain = obs.model_copy(update={"input_report": now, "history": []})
    assert HeuristicPlanner().next_action(plain).params.get("noise_floor") is None
