"""Denoising with OpenCV's non-local means for colour images (Buades et al. 2005;
``cv2.fastNlMeansDenoisingColored``, which filters CIELAB luminance and colour separately).

The filter strength follows the noise level: ``h = 0.55 * strength * sigma`` on luminance and
10% more on colour (first set on Kodak crops; rechecked on 24 training-pool photos, never the
benchmark's, by ``scripts/calibrate_denoisers.py``: 1.0x is the best multiplier for Gaussian and
Poisson-Gaussian noise, +5.6 / +5.4 dB; camera-pipeline noise, which the estimate reads far too
low, wants 2x and more). ``sigma`` is
perception's ``noise_sigma`` (0-255 units, per channel) or, when missing, estimated from the
image (scikit-image's wavelet estimate). Works in 8 bits, as OpenCV's implementation requires.

Examples:
    >>> from restora.tools import create_tool
    >>> tool = create_tool("denoise_nlm")
    >>> clean = tool(noisy, {"sigma": 15})                 # doctest: +SKIP
    >>> tool.suggest_params(0.3, {"noise_sigma": 15})[0]   # doctest: +SKIP
    Params(sigma=15.0, strength=1.0, search_window=21)
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from pydantic import Field

from restora.taxonomy import Task
from restora.tools._classical import (
    nlm_denoise,
    noise_sigma_rgb,
    sigma_strength_suggestions,
)
from restora.tools.base import Tool, ToolParams

H_PER_SIGMA = 0.55
COLOR_RATIO = 1.1


class DenoiseNLM(Tool):
    """OpenCV non-local means (colour), strength set from the noise sigma."""

    task = Task.DENOISE
    stronger_param = "strength"
    summary = "denoise: OpenCV non-local means (colour), fast, mild; strength from the noise sigma"
    cost = 2.0

    class Params(ToolParams):
        sigma: float | None = Field(
            None, gt=0.0, le=100.0, description="noise std in 0-255 units; None: estimate it from the image"
        )
        strength: float = Field(1.0, ge=0.1, le=4.0, description="multiplier on the filter strength (1: tuned default)")
        search_window: int = Field(21, ge=7, le=41, description="side of the search area in px (odd; larger = slower)")

    @classmethod
    def suggest_params(cls, severity: float, evidence: Mapping[str, float]) -> list[ToolParams]:
        return sigma_strength_suggestions(cls.Params, evidence)

    def run(self, image: np.ndarray, params: ToolParams) -> np.ndarray:
        p = params
        sigma = p.sigma if p.sigma is not None else noise_sigma_rgb(image)
        h = H_PER_SIGMA * p.strength * sigma
        return nlm_denoise(image, h, h * COLOR_RATIO, p.search_window)
