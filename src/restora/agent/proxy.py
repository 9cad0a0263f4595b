"""Planning a large image at native resolution: a mosaic of a few crops stands in for it.

On a downscale, noise, JPEG blocking and fine blur vanish, so perception reads a noisy 24 MP photo
as clean and scoring cannot see what a denoiser fixed. A large image is therefore planned on a
*proxy*: four native-resolution crops (``side`` px each) tiled 2 x 2, chosen to cover the most
textured, the flattest, the darkest and the most central parts of the frame. Perception, every
tool trial, scoring and the no-harm guard run on the proxy; the steps kept there are then rendered
once on the whole image (each tool tiles large inputs itself). The trace's start record names the
crops.

Examples:
    >>> import numpy as np
    >>> img = np.random.default_rng(0).random((1200, 1600, 3), dtype=np.float32)
    >>> boxes = planning_crops(img, side=256)
    >>> len(boxes), all(b[2] == b[3] == 256 for b in boxes)
    (4, True)
    >>> mosaic(img, boxes).shape
    (512, 512, 3)
"""

from __future__ import annotations

import cv2
import numpy as np

from restora.perception.measures import luma

Box = tuple[int, int, int, int]  # (y, x, h, w) in the full image

ROLES = ("textured", "flat", "dark", "central")


def planning_crops(image: np.ndarray, side: int = 256) -> list[Box]:
    """Four ``side`` px boxes of ``image``: its most textured, flattest (not clipped), darkest and
    most central windows, as distinct as the frame allows (a window overlapping one already
    chosen by more than a quarter is skipped while others remain)."""
    h, w = image.shape[:2]
    side = min(side, h, w)
    scale = min(1.0, 256.0 / max(h, w))
    small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    lum_map = luma(small)
    grad = np.abs(cv2.Laplacian(lum_map, cv2.CV_32F))
    stride = max(1, side // 2)
    ys = sorted({*range(0, h - side + 1, stride), h - side})
    xs = sorted({*range(0, w - side + 1, stride), w - side})
    windows = []
    for y in ys:
        for x in xs:
            sy0, sx0 = int(y * scale), int(x * scale)
            sy1, sx1 = max(sy0 + 1, int((y + side) * scale)), max(sx0 + 1, int((x + side) * scale))
            lum = lum_map[sy0:sy1, sx0:sx1]
            clipped = float(((lum < 0.02) | (lum > 0.98)).mean())
            centre = ((y + side / 2 - h / 2) / h) ** 2 + ((x + side / 2 - w / 2) / w) ** 2
            windows.append(((y, x, side, side), float(grad[sy0:sy1, sx0:sx1].mean()), float(lum.mean()), clipped, centre))
    keys = {
        "textured": lambda wd: -wd[1],
        "flat": lambda wd: wd[1] + 10.0 * wd[3],
        "dark": lambda wd: wd[2] + 10.0 * max(0.0, wd[3] - 0.5),
        "central": lambda wd: wd[4],
    }
    chosen: list[Box] = []
    for role in ROLES:
        ranked = sorted(windows, key=keys[role])
        pick = next((wd[0] for wd in ranked if all(_overlap(wd[0], c) <= 0.25 for c in chosen)), None)
        if pick is None:
            pick = next((wd[0] for wd in ranked if wd[0] not in chosen), ranked[0][0])
        chosen.append(pick)
    return chosen


def _overlap(a: Box, b: Box) -> float:
    dy = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    dx = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return dy * dx / float(a[2] * a[3])


def mosaic(image: np.ndarray, boxes: list[Box]) -> np.ndarray:
    """The boxes' native pixels tiled two per row (float32, contiguous)."""
    tiles = [image[y : y + h, x : x + w] for y, x, h, w in boxes]
    rows = [np.concatenate(tiles[i : i + 2], axis=1) for i in range(0, len(tiles), 2)]
    if len(rows) > 1 and rows[-1].shape[1] != rows[0].shape[1]:
        rows[-1] = np.concatenate([rows[-1], np.zeros_like(tiles[0])], axis=1)
    return np.ascontiguousarray(np.concatenate(rows, axis=0), dtype=np.float32)
