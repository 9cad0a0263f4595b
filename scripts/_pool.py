"""What the training-pool calibration scripts share: the pool's photos, a seeded draw of them, a
parallel run over the drawn photos with a progress line, and the rows written as JSON; and a
perception network's own validation split (:func:`validation_split`).

The pool is :func:`restora.trainer.common.default_clean_pool` (``clean/cbsd68`` and
``clean/live1``), under ``data`` instead of the default data folder when one is given. Imported by
``scripts/calibrate_*.py``, ``readings.py`` and ``noise_threshold.py`` (run as
``python scripts/NAME.py``, which puts this folder on the path).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from restora.data import image_files
from restora.trainer.common import default_clean_pool


def pool_photos(data: Path | None = None) -> list[Path]:
    """Every photo of the training pool, folder by folder."""
    folders = default_clean_pool() if data is None else [data / "clean" / f.name for f in default_clean_pool()]
    return [p for d in folders for p in image_files(d)]


def draw(pool: list[Path], n: int, seed: int) -> list[Path]:
    """``n`` photos of ``pool`` drawn with ``seed``, in pool order."""
    return [pool[i] for i in sorted(np.random.default_rng(seed).permutation(len(pool))[:n])]


def run_photos(job: Callable[[tuple], list[dict]], jobs: list[tuple], workers: int, unit: str = "photos") -> list[dict]:
    """The rows of ``job`` over ``jobs`` (one per photo, or per ``unit``) on ``workers`` processes, in order."""
    rows: list[dict] = []
    t0 = time.time()
    with ProcessPoolExecutor(workers) as ex:
        for k, r in enumerate(ex.map(job, jobs), 1):
            rows += r
            print(f"\r{k}/{len(jobs)} {unit} ({time.time() - t0:.0f} s)", end="", file=sys.stderr)
    print(file=sys.stderr)
    return rows


def save_rows(rows: list[dict[str, Any]], path: Path | None) -> None:
    """Write ``rows`` to ``path`` as JSON (nothing when None)."""
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rows))


def validation_split(model: Path | None = None) -> tuple[Path, dict[str, Any], Any, list]:
    """``(folder, card, config, validation photos)`` of a ``restora train perception`` run folder
    (None: the shipped network): its config rebuilt from ``model.json`` and the photos its seed held
    out of the clean pool, from which :class:`restora.trainer.perception.SynthDataset` makes its
    validation samples (never the benchmark photos)."""
    from restora.trainer import perception as tp

    folder = model or Path(tp.__file__).parents[1] / "perception" / "model"
    card = json.loads((folder / "model.json").read_text())
    fields = tp.PerceptionTrainConfig.__dataclass_fields__
    # a fine-tune's card names its starting weights by checksum, not a path: the split does not depend on them
    cfg = tp.PerceptionTrainConfig(**{k: v for k, v in {**card["config"], "out": "unused"}.items() if k in fields and k != "init"})
    _, val = tp.split_photos(tp.clean_images(cfg.clean), cfg.seed, cfg.val_fraction)
    return folder, card, cfg, val


def soft_crop(photos: list, size: int, rng: np.random.Generator) -> np.ndarray:
    """A ``size``-px native-resolution crop of one of ``photos`` (validation photos of
    :func:`validation_split`), drawn with ``rng``, given a camera's own softness (as real photos
    at native resolution have; no in-camera sharpening)."""
    from restora.cases import crop_at, load_clean
    from restora.trainer.perception import CAMERA_PSF_SIGMA, camera_look

    photo = load_clean(photos[int(rng.integers(len(photos)))].path, 10**6)
    clean = crop_at(photo, size, rng.random(2).tolist())
    return camera_look(clean, {"psf_sigma": float(rng.uniform(*CAMERA_PSF_SIGMA)), "sharpen": 0.0, "sharpen_sigma": 1.0})

