"""Low-light enhancement in the manner of LIME (Guo, Li & Ling, "LIME: Low-light image
enhancement via illumination map estimation", IEEE TIP 2017).

The illumination of each pixel is first taken as its brightest colour channel,
``T = max_c I_c``, then refined into a smooth, edge-aware map (here a guided filter steered by
``T`` itself, a fast stand-in for LIME's structure-aware optimisation), and the image is divided
by ``T ** gamma``, the gain capped at ``max_gain`` (black skies stay black, their noise down).
``gamma`` < 1 keeps some of the original darkness; by default it is searched so that the
result's mean luminance reaches ``target`` (0.42, about that of well-exposed photos; an image
already that bright is left as it is). Dividing by one map keeps colour ratios, as a real
under-exposure does; it cannot undo a per-channel gamma (``lowlight_gamma`` can). As in LIME,
noise the brightening lifts out of the shadows is then reduced where the gain was high: the
result is denoised with OpenCV non-local means (strength from the input noise times the typical
gain) and blended in by gain.

Examples:
    >>> from restora.tools import create_tool
    >>> tool = create_tool("lowlight_lime")
    >>> bright = tool(dark)                                 # doctest: +SKIP
    >>> bright = tool(dark, {"gamma": 0.8, "denoise": 0})   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from pydantic import Field

from restora.taxonomy import Task
from restora.tools._classical import (
    guided_filter,
    nlm_denoise,
    noise_sigma_rgb,
    rgb_to_luma,
)
from restora.tools.base import Tool, ToolParams


class LowlightLIME(Tool):
    """LIME-style illumination-map brightening with shadow denoising."""

    task = Task.LOW_LIGHT
    summary = "low light: LIME-style illumination map (max-RGB, guided-filter refined), gamma, shadow denoise"
    cost = 2.0

    class Params(ToolParams):
        gamma: float | None = Field(
            None, ge=0.0, le=1.0, description="exponent on the illumination map; None: chosen to reach the target brightness"
        )
        target: float = Field(0.42, ge=0.15, le=0.7, description="mean luminance aimed at when gamma is None")
        max_gain: float = Field(
            10.0, ge=1.0, le=50.0, description="largest brightening factor of any pixel (keeps black skies black, noise down)"
        )
        denoise: float = Field(
            1.0, ge=0.0, le=3.0, description="strength of the shadow denoising (0: off; 1: by the measured noise)"
        )

    @classmethod
    def suggest_params(cls, severity: float, evidence: Mapping[str, float]) -> list[ToolParams]:
        return [cls.Params(), cls.Params(target=0.35, denoise=0.5), cls.Params(target=0.5, denoise=1.5)]

    def run(self, image: np.ndarray, params: ToolParams) -> np.ndarray:
        p = params
        h, w = image.shape[:2]
        radius = max(4, min(h, w) // 32)
        lum = image.max(axis=2)
        illum = np.clip(guided_filter(lum, lum, radius, 1e-3), 1e-3, 1.0)
        gamma = p.gamma if p.gamma is not None else _gamma_for_target(image, illum, p.target, p.max_gain)
        gain = np.minimum(illum**-gamma, p.max_gain)
        out = np.clip(image * gain[..., None], 0.0, 1.0).astype(np.float32)
        if p.denoise > 0:
            out = _denoise_shadows(out, gain, noise_sigma_rgb(image), p.denoise)
        return out


def _gamma_for_target(image: np.ndarray, illum: np.ndarray, target: float, max_gain: float) -> float:
    """The gamma in [0, 1] whose output has mean luminance closest to ``target`` (bisection;
    brightness grows monotonically with gamma). 0, i.e. no change, when already that bright."""
    small_img = image[::4, ::4]
    small_t = illum[::4, ::4, None]
    lo, hi = 0.0, 1.0  # gamma 0 leaves the image as it is (already bright enough)

    def mean_at(g: float) -> float:
        return float(rgb_to_luma(np.clip(small_img * np.minimum(small_t**-g, max_gain), 0.0, 1.0)).mean())

    if mean_at(lo) >= target:
        return lo
    if mean_at(hi) <= target:
        return hi
    for _ in range(20):
        mid = 0.5 * (lo + hi)
        if mean_at(mid) < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _denoise_shadows(image: np.ndarray, gain: np.ndarray, sigma_in: float, strength: float) -> np.ndarray:
    """Non-local means tuned to the noise the brightening lifted (input noise times the typical
    gain), blended in where the gain was high."""
    typical = float(np.median(gain))
    h = 0.55 * strength * sigma_in * typical
    if h < 0.5:
        return image
    den = nlm_denoise(image, h, h * 1.1)
    weight = np.clip((gain - 1.0) / max(typical - 1.0, 1e-3), 0.0, 1.0)[..., None]
    return np.clip(image * (1.0 - weight) + den * weight, 0.0, 1.0).astype(np.float32)
