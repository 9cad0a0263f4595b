"""Overlapping tiles, so a model never needs one huge forward pass.

:func:`run_tiled` cuts an image into core tiles of ``tile`` pixels that overlap by ``overlap``,
runs ``fn`` on each core plus ``context`` pixels of real image around it (so the model sees the
same neighbourhood it would see untiled), crops the context away again (``scale`` times larger
on the output side), and blends the overlaps with linear feathering weights. An image that fits
in one tile is run in one call.

Examples:
    >>> import numpy as np
    >>> up2 = lambda t: np.repeat(np.repeat(t, 2, axis=0), 2, axis=1)
    >>> img = np.random.default_rng(0).random((300, 200, 3), dtype=np.float32)
    >>> out = run_tiled(up2, img, scale=2, tile=128, overlap=16, context=8)
    >>> out.shape, bool(np.allclose(out, up2(img), atol=1e-6))
    ((600, 400, 3), True)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from restora.errors import ToolError

TileFn = Callable[[np.ndarray], np.ndarray]


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of core tiles covering ``[0, length)``; the last one ends at ``length``.

    Examples:
        >>> tile_starts(300, 128, 16)
        [0, 112, 172]
        >>> tile_starts(100, 128, 16)
        [0]
    """
    if length <= tile:
        return [0]
    step = tile - overlap
    if step <= 0:
        raise ValueError(f"overlap ({overlap}) must be smaller than the tile ({tile})")
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def _ramp(n_out: int, ramp: int, up: bool, down: bool) -> np.ndarray:
    w = np.ones(n_out, np.float32)
    if ramp > 0:
        r = (np.arange(ramp, dtype=np.float32) + 0.5) / ramp
        if up:
            w[:ramp] = np.minimum(w[:ramp], r)
        if down:
            w[n_out - ramp :] = np.minimum(w[n_out - ramp :], r[::-1])
    return w


def run_tiled(
    fn: TileFn,
    image: np.ndarray,
    scale: int = 1,
    tile: int = 256,
    overlap: int = 16,
    context: int = 16,
) -> np.ndarray:
    """Apply ``fn`` (an (h, w, C) -> (h*scale, w*scale, C) model) to ``image`` tile by tile.

    Args:
        fn: runs the model on one tile (it handles the image border's own padding).
        image: float32 (H, W, C).
        scale: the model's integer output/input size ratio.
        tile: core tile size in input pixels.
        overlap: how much neighbouring cores overlap (blended with linear ramps).
        context: extra input pixels fed around each core and cropped from its output.

    Examples:
        >>> import numpy as np
        >>> img = np.zeros((40, 50, 3), np.float32)
        >>> float(run_tiled(lambda t: t + 1, img, tile=16, overlap=4, context=2).max())
        1.0
    """
    if scale < 1 or int(scale) != scale:
        raise ValueError(f"scale must be a positive integer, got {scale}")
    if tile < 8 or overlap < 0 or context < 0:
        raise ValueError("tile must be >= 8, overlap and context >= 0")
    scale = int(scale)
    h, w = image.shape[:2]
    if h <= tile and w <= tile:
        return _checked(fn(image), image.shape, scale)

    th, tw = min(tile, h), min(tile, w)
    ys, xs = tile_starts(h, th, overlap), tile_starts(w, tw, overlap)
    out = np.zeros((h * scale, w * scale, image.shape[2]), np.float32)
    weight = np.zeros((h * scale, w * scale), np.float32)
    for y0 in ys:
        wy = _ramp(th * scale, overlap * scale, up=y0 > 0, down=y0 + th < h)
        for x0 in xs:
            wx = _ramp(tw * scale, overlap * scale, up=x0 > 0, down=x0 + tw < w)
            ey0, ex0 = max(0, y0 - context), max(0, x0 - context)
            ey1, ex1 = min(h, y0 + th + context), min(w, x0 + tw + context)
            src = np.ascontiguousarray(image[ey0:ey1, ex0:ex1])
            res = _checked(fn(src), src.shape, scale)
            oy, ox = (y0 - ey0) * scale, (x0 - ex0) * scale
            core = res[oy : oy + th * scale, ox : ox + tw * scale]
            wgt = wy[:, None] * wx[None, :]
            sy, sx = y0 * scale, x0 * scale
            out[sy : sy + th * scale, sx : sx + tw * scale] += core * wgt[..., None]
            weight[sy : sy + th * scale, sx : sx + tw * scale] += wgt
    out /= weight[..., None]
    return out


def _checked(res: np.ndarray, in_shape: tuple[int, ...], scale: int) -> np.ndarray:
    want = (in_shape[0] * scale, in_shape[1] * scale)
    if res.ndim != 3 or res.shape[:2] != want:
        raise ToolError(f"tile model returned shape {res.shape}, expected {want} x channels")
    return res.astype(np.float32, copy=False)
