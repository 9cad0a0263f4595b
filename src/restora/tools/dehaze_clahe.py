"""Dehazing by contrast restoration: atmospheric-veil subtraction (Tarel & Hautiere, "Fast
visibility restoration from a single color or gray level image", ICCV 2009), then a light CLAHE
on the CIELAB lightness.

A different route from the dark channel prior: the image is white-balanced by the airlight
``A`` (so haze is white), the veil ``V`` is taken as the largest smooth layer under the
per-pixel minimum colour ``W`` -- ``V = min(p * (median(W) - median|W - median(W)|), W)``, with
median filters of ~1/12 of the short side -- and removed by inverting ``I = J (1 - V) + A V``.
``p`` (how much of the veil is removed) defaults to 0.7 for thin .. 0.9 for dense haze, measured
from the dark channel. A mild CLAHE (OpenCV, 8x8 tiles) then lifts the local contrast that thick
haze flattens. Gentler than ``dehaze_dcp`` on thin haze and bright skies.

Examples:
    >>> from restora.tools import create_tool
    >>> tool = create_tool("dehaze_clahe")
    >>> clear = tool(hazy)                                  # doctest: +SKIP
    >>> clear = tool(hazy, {"veil": 0.9, "clahe": 0.0})    # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np
from pydantic import Field

from restora.taxonomy import Task
from restora.tools._classical import (
    clahe_lightness,
    dark_channel,
    dark_patch,
    estimate_airlight,
    haze_level,
)
from restora.tools.base import Tool, ToolParams


class DehazeCLAHE(Tool):
    """Tarel-Hautiere veil subtraction plus CLAHE on lightness."""

    task = Task.DEHAZE
    summary = "dehaze: atmospheric-veil subtraction (Tarel-Hautiere) + mild CLAHE on lightness; gentle"
    cost = 0.3

    class Params(ToolParams):
        veil: float | None = Field(
            None,
            ge=0.1,
            le=0.99,
            description="fraction of the estimated veil removed; None: 0.7 (thin) .. 0.9 (dense) by the haze density measured",
        )
        window: int | None = Field(
            None, ge=5, le=301, description="median-filter window in px; None: ~1/12 of the short side"
        )
        clahe: float = Field(0.5, ge=0.0, le=8.0, description="CLAHE clip limit on lightness after dehazing; 0: off")

    @classmethod
    def suggest_params(cls, severity: float, evidence: Mapping[str, float]) -> list[ToolParams]:
        s = float(np.clip(severity, 0.0, 1.0))
        return [cls.Params(), cls.Params(veil=round(0.7 + 0.2 * s, 3), clahe=0.0), cls.Params(veil=0.95, clahe=1.0)]

    def run(self, image: np.ndarray, params: ToolParams) -> np.ndarray:
        p = params
        h, w = image.shape[:2]
        patch = dark_patch(image.shape)
        airlight = estimate_airlight(image, dark_channel(image, patch))
        balanced = np.clip(image / airlight, 0.0, 1.0)
        veil_p = p.veil if p.veil is not None else 0.7 + 0.2 * haze_level(dark_channel(balanced, patch))
        window = (p.window or max(5, min(h, w) // 12)) | 1
        veil = atmospheric_veil(balanced.min(axis=2), veil_p, window)[..., None]
        out = (balanced - veil) / (1.0 - veil) * airlight
        out = np.clip(out, 0.0, 1.0).astype(np.float32)
        if p.clahe > 0:
            out = clahe_lightness(out, p.clahe)
        return out


def atmospheric_veil(white: np.ndarray, fraction: float, window: int) -> np.ndarray:
    """Tarel-Hautiere veil from the minimum colour ``white``: local median minus the local median
    absolute deviation (so the veil stays under textured regions), scaled, capped by ``white``."""
    w8 = np.clip(white * 255.0 + 0.5, 0, 255).astype(np.uint8)  # OpenCV: large medians need 8 bits
    med = cv2.medianBlur(w8, window).astype(np.float32) / 255.0
    dev8 = np.clip(np.abs(white - med) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    dev = cv2.medianBlur(dev8, window).astype(np.float32) / 255.0
    veil = np.minimum(fraction * (med - dev), white)
    return np.clip(veil, 0.0, 0.95)

