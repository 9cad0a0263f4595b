"""Rain-streak removal by oriented morphology: find thin, bright, long lines along the rain
direction and subtract them.

Rain streaks add light: each is a thin bright line, a few pixels wide and many long, all at
nearly the same angle, and grey (it brightens R, G and B alike). The image is rotated so the
rain runs vertically; in that frame, per channel,

1. a white top-hat across the rain (the image minus its opening by a horizontal line ``width``
   px long) keeps the high-frequency, positive layer: everything brighter than its surroundings
   and narrower than ``width`` across the rain;
2. an opening of that layer by a vertical line ``length`` px long keeps only what is at least
   that long along the rain: streaks, not texture or dots.

The minimum over the channels (rain is grey; a thin red line is not rain) is rotated back. Its
amplitude suffers from the two interpolations, so it serves as a "where" map: the amount removed
is that map (x ``2 * strength``) but never more than the pixel's own positive residual over an
unrotated ``width`` x ``width`` opening (the "how much"), so only bright excess is ever taken
away and nothing is darkened below its neighbourhood. Detail is protected where thin DARK lines
run along the same direction (fences, window bars, stripes: a natural line texture has both
ridges and valleys; rain has only ridges): there the removal is scaled down by ``protect`` x
the ratio of the smoothed dark-line to bright-line maps.

The rain direction comes from perception's ``rain_angle`` (degrees counter-clockwise from
horizontal, 90 = vertical) or, when not given, from the same Hessian ridge-orientation estimate
(:func:`restora.perception.measures.rain_streaks`). ``width`` and ``length`` default to sizes
that follow the image (5 and 7 px at 192 px, 7 and 9 at 320 px).

Examples:
    >>> from restora.tools import create_tool
    >>> tool = create_tool("derain_guided")
    >>> clear = tool(rainy, {"angle": 95})                     # doctest: +SKIP
    >>> clear = tool(rainy)           # direction estimated     # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, cast

import cv2
import numpy as np
from pydantic import Field

from restora.taxonomy import Task
from restora.tools._classical import odd
from restora.tools.base import Tool, ToolParams

BOOST = 2.0  # the rotated-back "where" map is scaled by this (x strength) before the amplitude cap
PROTECT_SIGMA = 5.0  # px: smoothing of the bright/dark line maps compared for protection


class DerainGuided(Tool):
    """Oriented white top-hat + line opening along the rain direction; bright excess subtracted."""

    class Params(ToolParams):
        angle: float | None = Field(
            None,
            ge=0.0,
            le=180.0,
            description="rain direction, degrees counter-clockwise from horizontal (90 = vertical); "
            "None: estimated from the image",
        )
        width: int | None = Field(
            None, ge=3, le=31, description="widest streak removed, px (None: from the image size)"
        )
        length: int | None = Field(
            None, ge=3, le=101, description="shortest streak removed, px (None: from the image size)"
        )
        strength: float = Field(1.0, ge=0.0, le=2.0, description="how much of the detected streaks to remove")
        protect: float = Field(
            0.35,
            ge=0.0,
            le=2.0,
            description="keep line textures (thin dark lines along the rain direction beside the "
            "bright ones); 0: off",
        )

    task: ClassVar[Task] = Task.DERAIN
    summary: ClassVar[str] = (
        "derain: oriented top-hat + line opening along the rain angle finds thin bright streaks; "
        "their bright excess is subtracted"
    )
    cost: ClassVar[float] = 1.0

    @classmethod
    def suggest_params(cls, severity: float, evidence: Mapping[str, float]) -> list[ToolParams]:
        """Perception's rain angle at full strength, then a gentler pass that protects texture
        more, and a stronger one.

        Examples:
            >>> [(p.angle, p.strength) for p in DerainGuided.suggest_params(0.4, {"rain_angle": 95.0})]
            [(95.0, 1.0), (95.0, 0.6), (95.0, 1.5)]
        """
        a = evidence.get("rain_angle")
        angle = float(a) % 180.0 if a is not None and np.isfinite(a) else None
        return [
            cls.Params(angle=angle),
            cls.Params(angle=angle, strength=0.6, protect=0.7),
            cls.Params(angle=angle, strength=1.5, protect=0.2),
        ]

    def run(self, image: np.ndarray, params: ToolParams) -> np.ndarray:
        p = cast(DerainGuided.Params, params)
        if p.strength <= 0:
            return image
        side = min(image.shape[:2])
        width = p.width or odd(np.clip(side / 45.0, 5, 11))
        length = p.length or odd(np.clip(side / 40.0, 7, 21))
        angle = p.angle if p.angle is not None else estimate_angle(image)
        streak = streak_layer(image, angle, width, length, BOOST * p.strength, p.protect)
        return np.clip(image - streak[..., None], 0.0, 1.0).astype(np.float32)


def estimate_angle(image: np.ndarray) -> float:
    """Dominant near-vertical bright-line direction (perception's Hessian ridge histogram)."""
    from restora.perception.measures import rain_streaks

    return float(rain_streaks(image)["rain_angle"])


def streak_layer(
    image: np.ndarray, angle: float, width: int, length: int, boost: float, protect: float
) -> np.ndarray:
    """The (H, W) brightness the rain streaks add, as described in the module docstring."""
    h, w = image.shape[:2]
    rotated, M = _rotate_upright(image, angle)
    across = np.ones((1, width), np.uint8)
    along = np.ones((length, 1), np.uint8)
    bright, dark = [], []
    for c in range(3):
        ch = np.ascontiguousarray(rotated[..., c])
        tophat = ch - cv2.morphologyEx(ch, cv2.MORPH_OPEN, across, borderType=cv2.BORDER_REFLECT)
        bright.append(cv2.morphologyEx(tophat, cv2.MORPH_OPEN, along, borderType=cv2.BORDER_REFLECT))
        if protect > 0:
            blackhat = cv2.morphologyEx(ch, cv2.MORPH_CLOSE, across, borderType=cv2.BORDER_REFLECT) - ch
            dark.append(cv2.morphologyEx(blackhat, cv2.MORPH_OPEN, along, borderType=cv2.BORDER_REFLECT))
    where = _rotate_back(np.min(bright, axis=0), M, (h, w))
    # how much: the pixel's positive residual over an unrotated width x width opening (grey part)
    square = np.ones((width, width), np.uint8)
    excess = np.min(
        [
            image[..., c] - cv2.morphologyEx(np.ascontiguousarray(image[..., c]), cv2.MORPH_OPEN, square, borderType=cv2.BORDER_REFLECT)
            for c in range(3)
        ],
        axis=0,
    )
    streak = np.minimum(np.maximum(where, 0.0) * np.float32(boost), excess)
    if protect > 0:
        lines = _rotate_back(np.max(dark, axis=0), M, (h, w))
        ratio = cv2.GaussianBlur(lines, (0, 0), PROTECT_SIGMA) / (cv2.GaussianBlur(where, (0, 0), PROTECT_SIGMA) + 1e-3)
        streak = streak * np.clip(1.0 - protect * ratio, 0.0, 1.0)
    return np.maximum(streak, 0.0).astype(np.float32)


def _rotate_upright(image: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotate so that screen direction ``angle`` becomes vertical, on a canvas holding the whole
    image (reflected borders); returns the image and the affine matrix used."""
    h, w = image.shape[:2]
    M = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), 90.0 - float(angle), 1.0)
    c, s = abs(M[0, 0]), abs(M[0, 1])
    W, H = int(np.ceil(w * c + h * s)), int(np.ceil(h * c + w * s))
    M[0, 2] += W / 2.0 - w / 2.0
    M[1, 2] += H / 2.0 - h / 2.0
    out = cv2.warpAffine(image, M, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return out, M


def _rotate_back(x: np.ndarray, M: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    return cv2.warpAffine(
        x, M, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT
    )
