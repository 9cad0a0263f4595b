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
import os
import tempfile
from pathlib import Path

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


class DiskImageStore(ImageStore):
    """A content-addressed store kept in ``folder`` (one ``<hash>.npy`` per image), so that a
    state of references outlives the process: a chat session resumed in another process finds
    every image its undo stack refers to. Writes are atomic (a temporary name, then a rename);
    images are read on first use and cached.

    Examples:
        >>> store = DiskImageStore("sessions/abc/images")     # doctest: +SKIP
        >>> ref = store.put(image)                            # doctest: +SKIP
        >>> DiskImageStore("sessions/abc/images").get(ref).shape == image.shape   # doctest: +SKIP
        True
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        super().__init__()
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def _path(self, ref: str) -> Path:
        if not ref.startswith("img:") or not ref[4:].isalnum():
            raise RestoraError(f"not an image reference: {ref!r}")
        return self.folder / f"{ref[4:]}.npy"

    def put(self, image: np.ndarray) -> str:
        ref = super().put(image)
        path = self._path(ref)
        if not path.exists():
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".", suffix=".part")
            try:
                with os.fdopen(fd, "wb") as f:
                    np.save(f, self._images[ref], allow_pickle=False)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return ref

    def get(self, ref: str) -> np.ndarray:
        if ref not in self._images:
            path = self._path(ref)
            if not path.exists():
                raise RestoraError(f"image {ref!r} is not in the store at {self.folder}")
            image = np.load(path, allow_pickle=False)
            image.setflags(write=False)
            self._images[ref] = image
        return self._images[ref]

    def __contains__(self, ref: object) -> bool:
        return isinstance(ref, str) and (ref in self._images or self._path(ref).exists())

    def __len__(self) -> int:
        return len(list(self.folder.glob("*.npy")))
