"""Classical JPEG artefact removal: shift-averaged DCT shrinkage with JPEG's own quantisation table.

JPEG rounds each 8x8 block's DCT coefficients to multiples of a table ``Q`` (uniform error of
std ~0.29 Q per coefficient); the blocks then no longer meet smoothly (blocking) and edges ring.
Following Nosratinia ("Enhancement of JPEG-compressed images by re-application of JPEG", 2001)
the image is re-transformed on many shifted 8x8 grids; in each, every AC coefficient ``c`` is
shrunk by the Wiener-like gain ``c^2 / (c^2 + (beta Q)^2)`` (``beta`` = 0.25 x ``strength``) and
the inverse transforms are averaged. Block edges of the original grid sit inside the shifted
blocks, where they are high-frequency detail of the size of a quantisation step and get shrunk,
while real structure (large coefficients) is kept.

Luma (JPEG's full-range YCbCr) uses the IJG luminance table for the given quality; chroma,
which JPEG subsamples 2x2 and quantises with the coarser chrominance table, is treated the same
way at half resolution and only the change is upsampled back. The quality comes from
perception's ``jpeg_quality`` or, when not given, from the same estimator run on the image
(quantisation comb of the block DCT, see :mod:`restora.perception.measures`); on an image that
shows no quantisation at all the tool changes nothing.

Examples:
    >>> from restora.tools import create_tool
    >>> tool = create_tool("dejpeg_deblock")
    >>> out = tool(decoded_jpeg, {"quality": 30})              # doctest: +SKIP
    >>> out = tool(decoded_jpeg)      # quality estimated from the image    # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, cast

import cv2
import numpy as np
from pydantic import Field

from restora.taxonomy import Task
from restora.tools._classical import rgb_to_ycbcr, ycbcr_to_rgb
from restora.tools.base import Tool, ToolParams

BETA = 0.25  # shrinkage noise level, in quantisation steps, at strength 1 (uniform error std 0.29)
SHIFT_STEP = 2  # grid shifts used: every SHIFT_STEP px in x and y (16 grids)
NO_JPEG_QUALITY = 98.0  # at or above this estimated quality the image is left unchanged
BLOCKY = 1.15  # 8x8 blockiness (perception's measure) above which a comb-less image counts as JPEG

# Standard IJG (libjpeg / OpenCV) tables at quality 50 (ITU-T T.81 Annex K).
IJG_LUMA = np.array(
    [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
     14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
     18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
     49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99],
    np.float32,
).reshape(8, 8)  # fmt: skip
IJG_CHROMA = np.array(
    [17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
     24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99]
    + [99] * 32,
    np.float32,
).reshape(8, 8)  # fmt: skip
# Orthonormal 8-point DCT-II matrix: coefficients = D @ block @ D.T (JPEG's FDCT, unscaled).
_D8 = np.array(
    [[np.sqrt((1 if k == 0 else 2) / 8.0) * np.cos(np.pi * (2 * n + 1) * k / 16.0) for n in range(8)] for k in range(8)],
    np.float32,
)
_RAMP = np.array([7, 5, 3, 1], np.float32) / 16.0  # a step d becomes a linear ramp over 8 px


class DejpegDeblock(Tool):
    """Shift-averaged 8x8 DCT shrinkage scaled by the JPEG quantisation table (luma and chroma)."""

    class Params(ToolParams):
        quality: float | None = Field(
            None,
            ge=1.0,
            le=100.0,
            description="JPEG quality (IJG scale 1-100) the image was saved at; None: estimate it "
            "from the image's block-DCT quantisation (no change when none is found)",
        )
        strength: float = Field(
            1.0, ge=0.0, le=3.0, description="shrinkage strength (1: matched to the quantisation error; 0: off)"
        )
        chroma: bool = Field(True, description="also clean the (subsampled) colour channels")

    task: ClassVar[Task] = Task.DEJPEG
    summary: ClassVar[str] = (
        "JPEG deblocking: DCT shrinkage averaged over shifted 8x8 grids, scaled by the quality's quantisation table"
    )
    cost: ClassVar[float] = 1.0

    @classmethod
    def suggest_params(cls, severity: float, evidence: Mapping[str, float]) -> list[ToolParams]:
        """The estimated quality at matched strength, then gentler and stronger settings (lower
        quality means larger quantisation steps, so stronger smoothing by itself).

        Examples:
            >>> [(p.quality, p.strength) for p in DejpegDeblock.suggest_params(0.5, {"jpeg_quality": 35})]
            [(35.0, 1.0), (35.0, 0.6), (35.0, 1.6)]
        """
        q = evidence.get("jpeg_quality")
        if q is None or not np.isfinite(q) or q >= 100:
            q = float(np.clip(62.0 - 52.0 * float(severity), 5.0, 75.0)) if severity > 0 else None
        quality = None if q is None else float(np.clip(round(float(q)), 1, 100))
        return [cls.Params(quality=quality, strength=s) for s in (1.0, 0.6, 1.6)]

    def run(self, image: np.ndarray, params: ToolParams) -> np.ndarray:
        p = cast(DejpegDeblock.Params, params)
        quality = p.quality if p.quality is not None else estimate_quality(image)
        if p.strength <= 0 or quality >= NO_JPEG_QUALITY:
            return image
        beta = BETA * p.strength
        ycc = rgb_to_ycbcr(image) * np.float32(255.0)
        out = ycc.copy()
        q_luma = ijg_table(quality, IJG_LUMA)
        out[..., 0] = smooth_block_steps(shifted_dct_shrink(ycc[..., 0], q_luma, beta), q_luma[0, 0] / 8.0 * p.strength)
        if p.chroma and min(image.shape[:2]) >= 16:
            qc = ijg_table(quality, IJG_CHROMA)
            h, w = image.shape[:2]
            half = (max(1, w // 2), max(1, h // 2))
            for c in (1, 2):
                small = cv2.resize(ycc[..., c], half, interpolation=cv2.INTER_AREA)
                change = shifted_dct_shrink(small, qc, beta) - small
                out[..., c] += cv2.resize(change, (w, h), interpolation=cv2.INTER_LINEAR)
        return np.clip(ycbcr_to_rgb(out / np.float32(255.0)), 0.0, 1.0).astype(np.float32)


def smooth_block_steps(channel: np.ndarray, step: float) -> np.ndarray:
    """Spread what is left of a block-boundary step over the 4 pixels either side, where both
    sides are flat: at each boundary of the 8x8 grid (its offset found from where the mean
    absolute neighbour difference peaks) a step ``d`` between two sides whose own largest
    neighbour difference is ``a`` becomes a linear ramp, with weight ``1 - a / step`` (and none
    for ``|d| >= 2 step``: a real edge). ``step`` is the largest DC rounding error in pixel units
    (``Q[0, 0] / 8``); ``channel`` in 0-255 units."""
    if step <= 0:
        return channel
    out = channel.astype(np.float32, copy=True)
    for axis in (1, 0):
        a = out if axis == 1 else np.ascontiguousarray(out.T)
        n = a.shape[1]
        if n < 16:
            continue
        diff = np.abs(np.diff(a, axis=1)).mean(0)
        off = int(np.argmax(diff[: (len(diff) // 8) * 8].reshape(-1, 8).mean(0)))
        idx = np.arange(off, n, 8)
        idx = idx[(idx >= 3) & (idx + 4 < n)]
        P = np.stack([a[:, idx - i] for i in range(4)], -1)  # p0 (at the boundary) .. p3
        R = np.stack([a[:, idx + 1 + i] for i in range(4)], -1)  # q0 .. q3
        d = R[..., 0] - P[..., 0]
        activity = np.maximum(np.abs(np.diff(P, axis=-1)).max(-1), np.abs(np.diff(R, axis=-1)).max(-1))
        weight = np.clip(1.0 - activity / step, 0.0, 1.0) * (np.abs(d) < 2.0 * step)
        corr = (d * weight)[..., None] * _RAMP
        for i in range(4):
            a[:, idx - i] = P[..., i] + corr[..., i]
            a[:, idx + 1 + i] = R[..., i] - corr[..., i]
        out = a if axis == 1 else np.ascontiguousarray(a.T)
    return out


def ijg_table(quality: float, base: np.ndarray) -> np.ndarray:
    """The IJG quantisation table for ``quality`` (libjpeg's scaling of the quality-50 table)."""
    q = float(np.clip(quality, 1.0, 100.0))
    scale = 5000.0 / q if q < 50 else 200.0 - 2.0 * q
    return np.clip(np.floor((base * scale + 50.0) / 100.0), 1.0, 255.0).astype(np.float32)


def estimate_quality(image: np.ndarray) -> float:
    """JPEG quality estimated from the image with perception's estimator (quantisation comb of
    the block DCT). Without a comb (a resized or re-saved JPEG) a clearly 8x8-blocky image gets
    perception's rough quality from blockiness; otherwise 100 (no JPEG seen)."""
    from restora.perception.measures import jpeg_quality

    m = jpeg_quality(image)
    if m["jpeg_quality"] < 100:
        return float(m["jpeg_quality"])
    if m["blockiness"] >= BLOCKY:
        return float(np.clip(75.0 - 40.0 * (m["blockiness"] - 1.2), 5.0, 75.0))
    return 100.0


def shifted_dct_shrink(channel: np.ndarray, Q: np.ndarray, beta: float, step: int = SHIFT_STEP) -> np.ndarray:
    """Average over grid shifts (every ``step`` px) of 8x8 block-DCT Wiener shrinkage
    ``c^2 / (c^2 + (beta Q)^2)`` of the AC coefficients; ``channel`` in 0-255 units."""
    h, w = channel.shape
    pad = 8
    x = cv2.copyMakeBorder(channel.astype(np.float32), pad, pad + 8, pad, pad + 8, cv2.BORDER_REFLECT)
    acc = np.zeros_like(x)
    cnt = np.zeros_like(x)
    noise = (np.float32(beta) * Q) ** 2
    for dy in range(0, 8, step):
        for dx in range(0, 8, step):
            sub = x[dy:, dx:]
            H, W = (sub.shape[0] // 8) * 8, (sub.shape[1] // 8) * 8
            blocks = sub[:H, :W].reshape(H // 8, 8, W // 8, 8).transpose(0, 2, 1, 3)
            C = _D8 @ blocks @ _D8.T
            gain = C * C / (C * C + noise + 1e-12)
            gain[..., 0, 0] = 1.0
            R = _D8.T @ (C * gain) @ _D8
            acc[dy : dy + H, dx : dx + W] += R.transpose(0, 2, 1, 3).reshape(H, W)
            cnt[dy : dy + H, dx : dx + W] += 1.0
    return (acc / np.maximum(cnt, 1.0))[pad : pad + h, pad : pad + w]
