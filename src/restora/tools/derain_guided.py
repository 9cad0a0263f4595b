"""Rain-streak removal by directional morphology, with guided-filter clean-up of the streak
traces.

Rain streaks are thin, bright, straight and share one direction. So, per colour channel: a grey
opening with a short line *across* the streak direction (``width`` px) removes everything thinner
than that, giving a background; the bright residue above it holds the streaks but also thin
bright details of any orientation; a second opening with a line *along* the streaks (``length``
px) keeps only residue that is elongated in the rain direction, minus what survives an opening
~9x longer (poles, window frames and other long straight edges are not rain). That layer is
subtracted. Where
something was removed, the result is blended with its own guided-filter smoothing (He et al.
2010, radius 2) to wipe the faint halo the streaks' soft edges leave.

The streak angle comes from the params (perception's ``rain_angle``) or is estimated: the
direction whose line opening keeps most of the image's thin bright residue, searched within 45
degrees of vertical (rain falls). Window sizes scale with the image (tuned on Rain100L at
~400 px: 9 px across, 7 px along).

Examples:
    >>> from restora.tools import create_tool
    >>> tool = create_tool("derain_guided")
    >>> dry = tool(rainy)                                    # doctest: +SKIP
    >>> dry = tool(rainy, {"angle": 95, "strength": 1.0})   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np
from pydantic import Field

from restora.taxonomy import Task
from restora.tools._classical import guided_filter, rgb_to_luma
from restora.tools.base import Tool, ToolParams

REFERENCE_SIDE = 400.0  # image short side the default window sizes were tuned at
ANGLE_RANGE = (45, 135)  # searched streak directions, degrees counter-clockwise from horizontal


class DerainGuided(Tool):
    """Directional morphological streak extraction plus guided-filter clean-up."""

    task = Task.DERAIN
    summary = "derain: directional morphology removes thin bright streaks along the estimated rain angle, guided-filter clean-up"
    cost = 0.3

    class Params(ToolParams):
        angle: float | None = Field(
            None, ge=0.0, le=180.0, description="streak direction in degrees from horizontal (90 = vertical); None: estimate"
        )
        width: int | None = Field(
            None, ge=3, le=51, description="widest streak removed, px (across); None: 9 px at a 400 px short side, scaled"
        )
        length: int | None = Field(
            None, ge=3, le=101, description="shortest streak removed, px (along); None: 7 px at a 400 px short side, scaled"
        )
        max_length: int | None = Field(
            None, ge=5, le=401, description="structures longer than this (px) are kept as scene; None: 61 px at 400 px, scaled"
        )
        strength: float = Field(
            0.8, ge=0.0, le=1.5, description="fraction of the extracted streak layer subtracted (suggested: 0.5-1 by severity)"
        )

    @classmethod
    def suggest_params(cls, severity: float, evidence: Mapping[str, float]) -> list[ToolParams]:
        angle = evidence.get("rain_angle")
        angle = float(angle) % 180.0 if angle is not None else None
        # light rain: thin bright scene details weigh more against few streaks, so take less
        strength = round(float(np.clip(0.5 + float(severity), 0.5, 1.0)), 3)
        return [
            cls.Params(angle=angle, strength=strength),
            cls.Params(angle=angle, strength=0.5),
            cls.Params(angle=angle, strength=1.0, width=15, length=11),
        ]

    def run(self, image: np.ndarray, params: ToolParams) -> np.ndarray:
        p = params
        scale = float(np.clip(min(image.shape[:2]) / REFERENCE_SIDE, 0.5, 4.0))
        width = p.width or max(5, round(9 * scale))
        length = p.length or max(5, round(7 * scale))
        max_length = max(p.max_length or round(61 * scale), length + 2)
        angle = p.angle if p.angle is not None else estimate_rain_angle(rgb_to_luma(image), round(15 * scale))
        across, along = line_kernel(width, angle + 90.0), line_kernel(length, angle)
        too_long = line_kernel(max_length, angle)
        streaks = np.empty_like(image)
        for c in range(3):
            ch = np.ascontiguousarray(image[..., c])
            residue = ch - cv2.morphologyEx(ch, cv2.MORPH_OPEN, across, borderType=cv2.BORDER_REFLECT)
            elongated = cv2.morphologyEx(residue, cv2.MORPH_OPEN, along, borderType=cv2.BORDER_REFLECT)
            streaks[..., c] = elongated - cv2.morphologyEx(residue, cv2.MORPH_OPEN, too_long, borderType=cv2.BORDER_REFLECT)
        out = np.clip(image - p.strength * streaks, 0.0, 1.0)
        # blend in an edge-preserving smoothing where streaks were taken out (their soft rims)
        smooth = guided_filter(rgb_to_luma(out), out, 2, 1e-3)
        mask = np.clip(p.strength * streaks.max(axis=2) / 0.02, 0.0, 1.0)
        mask = cv2.GaussianBlur(mask, (0, 0), 1.0)[..., None]
        return np.clip(out * (1.0 - mask) + smooth * mask, 0.0, 1.0).astype(np.float32)


def line_kernel(length: int, angle: float) -> np.ndarray:
    """A 1-px line structuring element with ``length`` pixels along its dominant axis at
    ``angle`` degrees (counter-clockwise, image y down), so all angles weigh the same."""
    t = np.deg2rad(angle)
    dominant = max(abs(np.cos(t)), abs(np.sin(t)))
    half = (int(length) // 2) / dominant
    c = int(np.ceil(half))
    k = np.zeros((2 * c + 1, 2 * c + 1), np.uint8)
    dx, dy = np.cos(t) * half, -np.sin(t) * half
    cv2.line(k, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1, 1)
    return k


def estimate_rain_angle(luma: np.ndarray, length: int = 15) -> float:
    """The direction (2-degree steps, within 45 degrees of vertical) whose line opening keeps the
    most of the thin bright residue ``luma - median5(luma)``."""
    med = cv2.medianBlur(np.clip(luma * 255.0 + 0.5, 0, 255).astype(np.uint8), 5).astype(np.float32) / 255.0
    residue = np.maximum(luma - med, 0.0)
    best_angle, best = 90.0, -1.0
    for a in range(ANGLE_RANGE[0], ANGLE_RANGE[1] + 1, 2):
        kept = float(cv2.morphologyEx(residue, cv2.MORPH_OPEN, line_kernel(length, a)).mean())
        if kept > best:
            best_angle, best = float(a), kept
    return best_angle
