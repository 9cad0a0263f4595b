"""Where the shared test/benchmark images live: ``RESTORA_DATA`` or ``../shared/data``.

The folder is never copied into the package; code takes it as a parameter or from the env var.
"""

from __future__ import annotations

import os
from pathlib import Path

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def data_dir() -> Path:
    """The shared data folder (may not exist on machines without it)."""
    from restora.config import env

    data = env().data
    if data is not None:
        return data
    return Path.cwd().parent / "shared" / "data"


def image_files(folder: str | os.PathLike) -> list[Path]:
    """Image files in ``folder`` and its subfolders, sorted by path."""
    root = Path(folder)
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
