"""Planning a large image on native-resolution crops (restora.agent.proxy) and rendering the kept
steps on the whole image (restora.agent.Run). Pictures are made here from scikit-image's samples."""

from __future__ import annotations

import math

import cv2
import numpy as np
from skimage import data

from restora.agent import Run, restore
from restora.agent.proxy import ROLES, mosaic, planning_crops
from restora.config import RunConfig
from restora.tools import ToolBox


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return 10 * math.log10(1.0 / max(float(np.mean((a - b) ** 2)), 1e-10))


def _large_photo(w: int = 1200, h: int = 900) -> np.ndarray:
    """A photo at a size where a 512 px downscale hides fine noise: scikit-image's samples tiled at
    their native resolution (no upscale, so every pixel has real detail)."""
    tiles = [getattr(data, n)().astype(np.float32) / 255.0 for n in ("astronaut", "coffee", "chelsea", "rocket")]
    tiles = [t[:300, :400] for t in tiles]
    row = np.concatenate(tiles, axis=1)
    grid = np.concatenate([row, row[:, ::-1], row], axis=0)
    return np.ascontiguousarray(grid[:h, :w])


def test_planning_crops_cover_textured_flat_and_dark_areas() -> None:
    img = np.full((1000, 1000, 3), 0.6, np.float32)
    rng = np.random.default_rng(0)
    img[:400, :400] = rng.random((400, 400, 3), dtype=np.float32)  # texture, top left
    img[600:, 600:] = 0.05  # dark, bottom right
    boxes = dict(zip(ROLES, planning_crops(img, side=200), strict=True))
    y, x, h, w = boxes["textured"]
    assert y + h <= 400 and x + w <= 400
    y, x, h, w = boxes["dark"]
    assert y >= 600 and x >= 600
    y, x, h, w = boxes["flat"]
    flat = img[y : y + h, x : x + w]
    assert float(flat.std()) < 0.01
    assert len(set(boxes.values())) == 4
    assert mosaic(img, list(boxes.values())).shape == (400, 400, 3)


def test_small_images_are_not_planned_on_crops() -> None:
    img = _large_photo(400, 300)
    run = Run.open(img, toolbox=ToolBox(allow=["denoise_nlm"]))
    assert not run.planned_on_crops
    assert run.records[0].config["plan_crops"] is None
    run.close()


def test_large_noisy_image_is_planned_on_native_crops_and_rendered_whole() -> None:
    clean = _large_photo()
    noisy = np.clip(clean + np.random.default_rng(1).normal(0, 12 / 255, clean.shape), 0, 1).astype(np.float32)
    box = ToolBox(allow=["denoise_nlm"])
    config = RunConfig(max_steps=2, plan_megapixels=0.5, sibling_trials=True)
    result = restore(noisy, config=config, toolbox=box)
    start = result.records[0]
    assert (start.width, start.height) == (1200, 900)
    crops = start.config["plan_crops"]
    assert [c["role"] for c in crops] == list(ROLES) and all(c["h"] == c["w"] == 256 for c in crops)
    assert any("native-resolution" in n for n in start.notes)
    steps = [r for r in result.records if r.event == "step" and r.action.tool == "denoise_nlm"]
    assert steps and steps[0].decision == "accept", [(r.decision, r.guard) for r in steps]
    # the planner saw the whole image's size, the tools ran on the 512 px proxy
    assert steps[0].observation["width"] == 1200
    assert result.store.get(steps[0].image_after).shape == (512, 512, 3)
    assert result.image.shape == noisy.shape
    assert _psnr(result.image, clean) > _psnr(noisy, clean) + 2.0
    # rendering is the kept steps on the whole image, once: the same call gives the same pixels
    direct = box.run("denoise_nlm", noisy, steps[0].action.params)
    assert np.array_equal(result.image, direct)
    # sibling trials (opt-in): the tool's other suggested strengths ran on the crops too, the best-scoring was kept
    trials = steps[0].tool_info["trials"]
    assert len(trials) == 3 and sum(t["chosen"] for t in trials) == 1
    chosen = next(t for t in trials if t["chosen"])
    assert chosen["params"] == steps[0].action.params
    assert chosen["overall"] == max(t["overall"] for t in trials if t["guard_ok"])
    # the trace's input and output are the whole image; the page says which crops were used
    assert result.store.get(start.image).shape == noisy.shape
    assert np.array_equal(result.store.get(result.records[-1].image), result.image)
    from restora.report import render_report

    page = render_report(result, "large.png")
    assert "Planned at native resolution on 4 crops" in page and "textured at x=" in page


def test_proxy_sees_noise_that_a_downscale_hides() -> None:
    from restora.perception import perceive

    clean = _large_photo()
    noisy = np.clip(clean + np.random.default_rng(2).normal(0, 8 / 255, clean.shape), 0, 1).astype(np.float32)
    small = cv2.resize(noisy, (512, 384), interpolation=cv2.INTER_AREA)
    proxy = mosaic(noisy, planning_crops(noisy, 256))
    sigma_small = perceive(small).findings["noise"].evidence["noise_sigma"]
    sigma_proxy = perceive(proxy).findings["noise"].evidence["noise_sigma"]
    assert sigma_proxy > 1.5 * sigma_small
