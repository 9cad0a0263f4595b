"""restora.synth.negatives: clean hard negatives -- determinism, shapes, and that each looks its part."""

from __future__ import annotations

import numpy as np
import pytest

from restora import degrade
from restora.synth import negatives

LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _photo(size: int) -> np.ndarray:
    """A smooth, fully deterministic stand-in for a clean photo crop (no data folder needed)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    r = 0.5 + 0.35 * np.sin(xx * 9.0) * np.cos(yy * 5.0)
    return np.stack([r, 0.2 + 0.6 * xx, 0.3 + 0.5 * yy], 2).astype(np.float32)


def _hf(img: np.ndarray) -> float:
    y = img @ LUMA
    return float(np.mean(np.abs(np.diff(y, axis=0))) + np.mean(np.abs(np.diff(y, axis=1))))


def test_kinds_cover_the_hard_negatives():
    assert set(negatives.KINDS) == {
        "text", "barcode", "qr", "fence", "stripes", "fabric", "film_grain", "bokeh", "night_lights", "night_sky", "overcast_sky", "tiles",
    }  # fmt: skip
    assert len(set(negatives.KINDS)) == len(negatives.KINDS)


@pytest.mark.parametrize("kind", negatives.KINDS)
@pytest.mark.parametrize("size", [64, 128])
@pytest.mark.parametrize("with_photo", [False, True], ids=["plain", "photo"])
def test_shape_dtype_range(kind, size, with_photo):
    photo = _photo(size) if with_photo else None
    for seed in range(4):
        img = negatives.render(kind, size, seed, photo)
        assert img.shape == (size, size, 3) and img.dtype == np.float32
        assert np.isfinite(img).all() and img.min() >= 0.0 and img.max() <= 1.0
        assert img.flags.c_contiguous
        assert img.std() > 0.005  # not a blank frame


@pytest.mark.parametrize("kind", negatives.KINDS)
def test_same_args_same_bytes_other_seed_differs(kind):
    photo = _photo(96)
    for ph in (None, photo):
        a = negatives.render(kind, 96, 11, ph)
        assert a.tobytes() == negatives.render(kind, 96, 11, ph).tobytes()
        assert a.tobytes() != negatives.render(kind, 96, 12, ph).tobytes()
    assert photo.tobytes() == _photo(96).tobytes()  # the photo is not modified in place


@pytest.mark.parametrize("size", [8, 33, 200])
def test_odd_sizes(size):
    for kind in negatives.KINDS:
        img = negatives.render(kind, size, 3, _photo(size))
        assert img.shape == (size, size, 3) and 0.0 <= img.min() and img.max() <= 1.0


def test_render_random_is_seeded_and_spreads_over_kinds():
    photo = _photo(64)
    kinds = set()
    for seed in range(60):
        kind, img = negatives.render_random(64, seed, photo)
        again_kind, again = negatives.render_random(64, seed, photo)
        assert kind == again_kind and img.tobytes() == again.tobytes()
        assert img.tobytes() == negatives.render(kind, 64, seed, photo).tobytes()
        kinds.add(kind)
    assert kinds == set(negatives.KINDS)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown negative kind"):
        negatives.render("smoke", 64, 0)
    with pytest.raises(ValueError, match="photo must be a"):
        negatives.render("text", 64, 0, _photo(32))
    with pytest.raises(ValueError, match="float"):
        negatives.render("text", 64, 0, (_photo(64) * 255).astype(np.uint8))
    with pytest.raises(ValueError, match="at least 8"):
        negatives.render("text", 4, 0)


def test_film_grain_is_mild_and_below_camera_noise_at_severity_0():
    grey = np.full((128, 128, 3), 0.5, np.float32)
    camera0 = min(degrade.apply_labeled(grey, "noise", 0.0, seed=s, model="camera")[1]["sigma"] for s in range(12))
    for seed in range(12):
        res = negatives.render("film_grain", 128, seed, grey) - grey
        std = float(res.std()) * 255
        assert 0.3 < std < 0.75 * camera0, (std, camera0)
        assert np.abs(res).max() < 8 / 255  # a look, not damage
        # luminance grain: the same in every channel
        assert np.allclose(res[..., 0], res[..., 2], atol=1e-6)
    photo = _photo(128)
    assert np.abs(negatives.render("film_grain", 128, 0, photo) - photo).max() < 8 / 255  # the photo, kept


@pytest.mark.parametrize("with_photo", [False, True])
def test_night_lights_are_dark_with_exposed_lights(with_photo):
    for seed in range(8):
        img = negatives.render("night_lights", 128, seed, _photo(128) if with_photo else None)
        y = img @ LUMA
        assert np.median(y) < 0.15  # a dark frame ...
        assert img.max() > 0.9  # ... with lights exposed correctly (near full scale)


@pytest.mark.parametrize("with_photo", [False, True])
def test_night_sky_is_near_black_with_points_at_full_scale(with_photo):
    for seed in range(8):
        img = negatives.render("night_sky", 128, seed, _photo(128) if with_photo else None)
        y = img @ LUMA
        assert np.median(y) < 0.08  # a near-black frame ...
        assert img.max() > 0.9  # ... with the brightest stars at full scale
        assert (y > 0.3).mean() < 0.05  # points, not areas


def test_overcast_sky_is_bright_and_flat_with_structure_at_an_edge():
    for seed in range(8):
        img = negatives.render("overcast_sky", 128, seed)
        y = img @ LUMA
        assert np.percentile(y, 60) > 0.75  # mostly bright sky
        gy, gx = np.abs(np.diff(y, axis=0)), np.abs(np.diff(y, axis=1))
        assert max(gy.max(), gx.max()) > 0.2  # a crisp edge somewhere


@pytest.mark.parametrize("with_photo", [False, True])
def test_bokeh_has_a_sharp_subject_over_a_soft_background(with_photo):
    for seed in range(6):
        img = negatives.render("bokeh", 128, seed, _photo(128) if with_photo else None)
        y = img @ LUMA
        g = np.hypot(np.diff(y, axis=0)[:, :-1], np.diff(y, axis=1)[:-1, :])
        assert g.max() > 0.15  # the subject's crisp edge: not a defocused frame
        assert np.median(g) < 0.02  # most of it smooth


@pytest.mark.parametrize("kind", ["fence", "stripes", "fabric", "tiles", "barcode", "qr", "text"])
def test_structured_kinds_have_fine_detail(kind):
    # the look a naive perception confuses with noise, moire or blocking: lots of fine structure
    values = [_hf(negatives.render(kind, 128, seed)) for seed in range(6)]
    assert np.median(values) > 0.02, values


def test_text_uses_the_photo_when_given():
    photo = _photo(128)
    used = [np.abs(negatives.render("text", 128, s, photo) - negatives.render("text", 128, s)).max() > 0.1 for s in range(10)]
    assert sum(used) >= 5
