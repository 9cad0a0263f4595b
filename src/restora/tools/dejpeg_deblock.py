"""JPEG artefact removal by translation-invariant DCT thresholding with JPEG's own quantisation
tables, plus a projection back onto the quantisation constraint set.

JPEG quantises each 8x8 DCT coefficient with a step from a table scaled by the quality. Blocking
and ringing are the coefficients rounding created at the block grid; they are not sparse in the
DCT of *shifted* blocks. So the decoded luma (and, at half resolution, the chroma, which 4:2:0
JPEG coded on a 16 px grid) is transformed in 8x8 blocks at every one of the 64 grid shifts,
coefficients below ``strength`` x half the quantisation step (the IJG table for the quality) are
zeroed, and the 64 reconstructions are averaged (Nosratinia's "re-application of JPEG" idea in
its DCT-thresholding form; cf. Foi et al.'s SA-DCT deblocking). Finally, on the original grid the
luma's DCT is clipped back into each coefficient's quantisation interval, so the result stays a
valid decoding of the same file (the classical POCS constraint of Zakhor / Yang et al.).

``quality`` comes from perception's ``jpeg_quality`` or is estimated from the image: the block
grid is found where 8-px boundary jumps are strongest, and the quality is the lowest one whose
table the low-frequency DCT coefficients sit on (exact on OpenCV/libjpeg files, cropped ones
included). When no table fits (the image was resized or re-encoded since), quality 50 is assumed
and the projection is skipped.

Examples:
    >>> from restora.tools import create_tool
    >>> tool = create_tool("dejpeg_deblock")
    >>> clean = tool(decoded, {"quality": 20})                # doctest: +SKIP
    >>> tool.suggest_params(0.6, {"jpeg_quality": 30})[0]     # doctest: +SKIP
    Params(quality=30, strength=0.6, project=True)
"""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np
from pydantic import Field
from scipy import fft

from restora.taxonomy import Task
from restora.tools._classical import rgb_to_ycbcr, ycbcr_to_rgb
from restora.tools.base import Tool, ToolParams

# IJG (libjpeg) base quantisation tables, luminance and chrominance (ITU-T T.81 Annex K).
_QY = np.array(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ],
    np.float64,
)
FALLBACK_QUALITY = 50  # assumed when the quality is neither given nor measurable
_QC = np.full((8, 8), 99.0)
_QC[:4, :4] = [[17, 18, 24, 47], [18, 21, 26, 66], [24, 26, 56, 99], [47, 66, 99, 99]]


class DejpegDeblock(Tool):
    """Shift-averaged DCT thresholding with the JPEG tables, then quantisation-constraint projection."""

    task = Task.DEJPEG
    summary = "dejpeg: shifted 8x8 DCT thresholding with JPEG's quantisation tables + constraint projection; mild"
    cost = 2.5

    class Params(ToolParams):
        quality: int | None = Field(
            None, ge=1, le=100, description="JPEG quality the image was saved with; None: estimate it from the image"
        )
        strength: float = Field(
            0.6, ge=0.0, le=2.0, description="threshold in units of half the quantisation step (0: only the projection)"
        )
        project: bool = Field(True, description="clip the result back into the file's quantisation intervals (needs the right quality)")

    @classmethod
    def suggest_params(cls, severity: float, evidence: Mapping[str, float]) -> list[ToolParams]:
        q = evidence.get("jpeg_quality")
        q = int(np.clip(round(q), 1, 100)) if q is not None and q > 0 else None
        return [cls.Params(quality=q), cls.Params(quality=q, strength=1.0), cls.Params(strength=0.4)]

    def run(self, image: np.ndarray, params: ToolParams) -> np.ndarray:
        p = params
        ycc = rgb_to_ycbcr(image).astype(np.float64) * 255.0
        luma = ycc[..., 0]
        oy, ox = grid_offset(luma)
        quality, on_grid = p.quality, True
        if quality is None:
            quality = estimate_quality(luma, (oy, ox))
            if quality is None:  # no IJG table fits: resized or re-encoded; smooth, do not project
                quality, on_grid = FALLBACK_QUALITY, False
        qy, qc = ijg_table(_QY, quality), ijg_table(_QC, quality)
        out = ycc.copy()
        if p.strength > 0:
            out[..., 0] = shifted_dct_threshold(luma, qy, p.strength / 2.0)
            h, w = luma.shape
            if h >= 16 and w >= 16:
                for c in (1, 2):  # 4:2:0 chroma was coded at half resolution
                    small = cv2.resize(ycc[..., c], (w // 2, h // 2), interpolation=cv2.INTER_AREA)
                    change = shifted_dct_threshold(small, qc, p.strength / 2.0) - small
                    out[..., c] = ycc[..., c] + cv2.resize(change, (w, h), interpolation=cv2.INTER_LINEAR)
        if p.project and on_grid:
            out[..., 0] = project_quantisation(luma, out[..., 0], qy, (oy, ox))
        return np.clip(ycbcr_to_rgb((out / 255.0).astype(np.float32)), 0.0, 1.0)


def ijg_table(base: np.ndarray, quality: int) -> np.ndarray:
    """libjpeg's quantisation table for ``quality`` (1-100) from a base table."""
    q = int(np.clip(quality, 1, 100))
    scale = 5000.0 / q if q < 50 else 200.0 - 2.0 * q
    return np.clip(np.floor((base * scale + 50.0) / 100.0), 1.0, 255.0)


def _blocks(x: np.ndarray) -> np.ndarray:
    h, w = x.shape
    return x.reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3).reshape(-1, 8, 8)


def _unblocks(b: np.ndarray, h: int, w: int) -> np.ndarray:
    return b.reshape(h // 8, w // 8, 8, 8).transpose(0, 2, 1, 3).reshape(h, w)


def shifted_dct_threshold(plane: np.ndarray, table: np.ndarray, fraction: float) -> np.ndarray:
    """Average over the 64 grid shifts of 8x8 orthonormal-DCT hard thresholding at
    ``fraction`` x ``table`` (0-255 units; the DC is kept)."""
    h, w = plane.shape
    hh, ww = (h + 7) // 8 * 8 + 8, (w + 7) // 8 * 8 + 8
    padded = cv2.copyMakeBorder(plane, 8, hh - h, 8, ww - w, cv2.BORDER_REFLECT)
    thr = fraction * table
    thr[0, 0] = 0.0
    acc = np.zeros((h, w))
    for dy in range(8):
        for dx in range(8):
            sub = padded[dy : dy + hh, dx : dx + ww]
            coef = fft.dctn(_blocks(sub), axes=(1, 2), norm="ortho")
            coef[np.abs(coef) < thr] = 0.0
            rec = _unblocks(fft.idctn(coef, axes=(1, 2), norm="ortho"), hh, ww)
            acc += rec[8 - dy : 8 - dy + h, 8 - dx : 8 - dx + w]
    return acc / 64.0


def project_quantisation(decoded: np.ndarray, estimate: np.ndarray, table: np.ndarray, offset: tuple[int, int]) -> np.ndarray:
    """Clip ``estimate``'s block DCT (on the grid at ``offset``) into the quantisation intervals
    of ``decoded``'s coefficients (0-255 luma planes)."""
    oy, ox = offset
    h, w = decoded.shape
    h8, w8 = (h - oy) // 8 * 8, (w - ox) // 8 * 8
    if h8 < 8 or w8 < 8:
        return estimate
    win = (slice(oy, oy + h8), slice(ox, ox + w8))
    c_dec = fft.dctn(_blocks(decoded[win] - 128.0), axes=(1, 2), norm="ortho")
    c_est = fft.dctn(_blocks(estimate[win] - 128.0), axes=(1, 2), norm="ortho")
    k = np.round(c_dec / table)
    c_est = np.clip(c_est, (k - 0.5) * table, (k + 0.5) * table)
    out = estimate.copy()
    out[win] = _unblocks(fft.idctn(c_est, axes=(1, 2), norm="ortho"), h8, w8) + 128.0
    return out


def grid_offset(luma: np.ndarray) -> tuple[int, int]:
    """(row, column) phase of the 8-px block grid: where the jumps across boundaries are largest
    relative to those inside blocks. (0, 0) for an uncropped JPEG."""
    def phase(diff: np.ndarray) -> int:
        energy = np.array([diff[..., k::8].mean() for k in range(8)])
        # a boundary between columns c-1 and c shows in diff index c-1
        return int((np.argmax(energy) + 1) % 8)

    if min(luma.shape) < 16:
        return 0, 0
    dx = np.abs(np.diff(luma, axis=1))
    dy = np.abs(np.diff(luma, axis=0)).T
    return phase(dy), phase(dx)


def estimate_quality(luma: np.ndarray, offset: tuple[int, int]) -> int | None:
    """The lowest IJG quality whose luminance steps the low-frequency DCT coefficients sit on
    (coefficients of a decoded JPEG cluster at multiples of the step; rounding to uint8 blurs
    that a little). None when nothing fits (not a JPEG, or resized / re-encoded since)."""
    oy, ox = offset
    h8, w8 = (luma.shape[0] - oy) // 8 * 8, (luma.shape[1] - ox) // 8 * 8
    if h8 < 8 or w8 < 8:
        return None
    coef = fft.dctn(_blocks(luma[oy : oy + h8, ox : ox + w8] - 128.0), axes=(1, 2), norm="ortho")
    positions = [(0, 1), (1, 0), (1, 1), (0, 2), (2, 0)]
    for q in range(5, 96):
        table = ijg_table(_QY, q)
        fits = []
        for u, v in positions:
            step = table[u, v]
            c = coef[:, u, v]
            c = c[np.abs(c) > 0.5 * step]  # zeros fit any table: use the coded non-zero ones
            if step < 3 or c.size < 20:
                continue
            fits.append(np.mean(np.cos(2.0 * np.pi * c / step)))
        if fits and np.mean(fits) > 0.8:
            return q
    return None
