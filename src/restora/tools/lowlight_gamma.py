"""Low-light enhancement by an adaptive tone curve, then CLAHE on the CIELAB lightness.

One global curve ``y = a * x ** g`` is applied to every colour channel. Its two numbers are fixed
by two anchors of the luminance histogram: the median goes to ``target`` (0.42 by default, about
where well-exposed photos have it) and the 99.5th percentile to 0.95, so both the gain and the
gamma of an under-exposure are undone (a darkened photo ``k * I ** G`` is mapped back exactly
when its own anchors were at those places). The gain is capped by ``max_gain`` so black skies
stay black, and where the curve would have to be too flat (night scenes) the highlight anchor
wins. A photo whose median already reaches ``target`` is left as it is. A light CLAHE (OpenCV,
8x8 tiles) then restores local contrast, and non-local means reduces the noise the brightening
lifts (its strength set from the measured input noise times the typical gain).

Examples:
    >>> from restora.tools import create_tool
    >>> tool = create_tool("lowlight_gamma")
    >>> bright = tool(dark)                                      # doctest: +SKIP
    >>> tool.suggest_params(0.6, {"mean_luma": 0.08})[0]         # doctest: +SKIP
    Params(target=0.42, max_gain=12.0, clahe=0.5, denoise=1.0)
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from pydantic import Field

from restora.taxonomy import Task
from restora.tools._classical import (
    clahe_lightness,
    nlm_denoise,
    noise_sigma_rgb,
    rgb_to_luma,
)
from restora.tools.base import Tool, ToolParams

HIGH_ANCHOR = (99.5, 0.95)  # percentile of the input luminance -> output value


class LowlightGamma(Tool):
    """Two-anchor adaptive gamma curve, CLAHE on lightness, noise reduction."""

    task = Task.LOW_LIGHT
    summary = "low light: adaptive gamma curve from the luminance histogram + mild CLAHE + denoise; natural colours"
    cost = 2.5
    prior = 0.7
    """Tried before LIME: on the training pool (``scripts/calibrate_tone.py --after``, 48 photos, dark
    alone and with each other degradation, that one restored first where the planner takes it
    first; 336 crops) its first suggestion gained 10.53 dB against LIME's 8.72 on 256-px crops (the
    better of the two on 80% of them, 69-85% in every context) and 9.33 against 8.45 on 128-px
    crops (65%); as the first step (without ``--after``) 10.07 against 8.49 and 9.17 against 8.40.
    Looked at on real night photos (DICM), it lifts black skies more than LIME does; the accept
    rule judges."""

    class Params(ToolParams):
        target: float = Field(0.42, ge=0.1, le=0.7, description="output value for the input's median luminance")
        max_gain: float = Field(12.0, ge=1.0, le=50.0, description="largest brightening factor of any pixel")
        clahe: float = Field(0.5, ge=0.0, le=8.0, description="CLAHE clip limit on lightness after the curve; 0: off")
        denoise: float = Field(1.0, ge=0.0, le=3.0, description="noise reduction strength (0: off; 1: by the measured noise)")

    @classmethod
    def suggest_params(cls, severity: float, evidence: Mapping[str, float]) -> list[ToolParams]:
        mean = evidence.get("mean_luma")
        # very dark frames (night scenes) are often mostly black by nature: aim a little lower
        target = 0.42 if mean is None or mean >= 0.05 else 0.35
        return [cls.Params(target=target), cls.Params(target=target - 0.07, clahe=0.0), cls.Params(target=target + 0.08, clahe=2.0)]

    def run(self, image: np.ndarray, params: ToolParams) -> np.ndarray:
        p = params
        lum = rgb_to_luma(image)
        if float(np.median(lum)) >= p.target:  # exposed well enough already: not a low-light photo
            return image.copy()
        a, g = tone_curve(lum, p.target, p.max_gain)
        x = np.maximum(image, 1e-6)
        gain = np.minimum(a * np.power(x, g - 1.0), p.max_gain)  # y = a x^g, as a per-pixel gain
        out = np.clip(x * gain, 0.0, 1.0).astype(np.float32)
        if p.clahe > 0:
            out = clahe_lightness(out, p.clahe)
        if p.denoise > 0:
            typical = float(np.median(np.minimum(a * np.power(np.maximum(lum, 1e-6), g - 1.0), p.max_gain)))
            h = 0.55 * p.denoise * noise_sigma_rgb(image) * typical
            if h >= 0.5:
                out = nlm_denoise(out, h, h * 1.1)
        return out


def tone_curve(lum: np.ndarray, target: float, max_gain: float) -> tuple[float, float]:
    """(a, g) of ``y = a * x ** g`` sending the median of ``lum`` to ``target`` and its 99.5th
    percentile to 0.95; g is kept in [0.25, 1.5] (then the highlight anchor is kept and the median
    falls short) and the median is never darkened."""
    v50 = float(np.clip(np.percentile(lum, 50), 1e-4, 0.99))
    vhi = float(np.clip(np.percentile(lum, HIGH_ANCHOR[0]), v50 * 1.05, 1.0))
    t50 = max(target, v50)  # never darken
    g = float(np.clip(np.log(HIGH_ANCHOR[1] / t50) / np.log(vhi / v50), 0.25, 1.5))
    # where g had to be clipped (night scenes: a black median far below bright lights), the
    # highlight anchor wins: the median gets less than target rather than the lights burning out
    a = min(t50 / v50**g, HIGH_ANCHOR[1] / vhi**g)
    return a, g

