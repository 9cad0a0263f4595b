"""A content-addressed store of images, so that agent state holds short references, not pixels.

Examples:
    >>> store = ImageStore()
    >>> ref = store.put(image)          # doctest: +SKIP
    >>> ref                             # doctest: +SKIP
    'img:3f9a0c1e2b7d4a55'
    >>> store.get(ref) is image         # doctest: +SKIP
    False
"""

from __future__ import annotations

import hashlib

import numpy as np

from restora.errors import RestoraError


def image_hash(image: np.ndarray) -> str:
    """sha256 over shape, dtype and pixel bytes; the full hex digest."""
    a = np.ascontiguousarray(image)
    h = hashlib.sha256()
    h.update(repr((a.shape, str(a.dtype))).encode())
    h.update(a.tobytes())
    return h.hexdigest()


class ImageStore:
    """In-memory content-addressed image store. Stored arrays are read-only copies."""

    def __init__(self) -> None:
        self._images: dict[str, np.ndarray] = {}

    def put(self, image: np.ndarray) -> str:
        ref = "img:" + image_hash(image)[:16]
        if ref not in self._images:
            frozen = np.array(image, dtype=np.float32, copy=True)
            frozen.setflags(write=False)
            self._images[ref] = frozen
        return ref

    def get(self, ref: str) -> np.ndarray:
        try:
            return self._images[ref]
        except KeyError:
            raise RestoraError(f"image {ref!r} is not in the store") from None

    def __contains__(self, ref: object) -> bool:
        return ref in self._images

    def __len__(self) -> int:
        return len(self._images)
