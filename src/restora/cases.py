"""Cases: clean photos and crops, the AgenticIR combinations, and their seeded degradation (used by
the benchmark, the training-data factory and the trainers).

Examples:
    >>> from restora.cases import COMBOS, group_of, case_seed
    >>> len(COMBOS), group_of("rain+haze"), group_of("haze+motion_blur+low_res")
    (16, 'A', 'C')
    >>> case_seed(0, "kodim01.png", "rain+haze") == case_seed(0, "kodim01.png", "rain+haze")
    True
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from restora import degrade
from restora.data import image_files
from restora.imageio import load_image, quantize
from restora.taxonomy import TASK_FOR, Degradation, Task

GROUPS: dict[str, tuple[str, ...]] = {
    "A": (
        "rain+haze",
        "motion_blur+low_res",
        "dark+noise",
        "defocus+jpeg",
        "noise+jpeg",
        "rain+low_res",
        "motion_blur+dark",
        "defocus+haze",
    ),
    "B": ("motion_blur+jpeg", "haze+noise", "defocus+low_res", "rain+dark"),
    "C": (
        "haze+motion_blur+low_res",
        "rain+noise+low_res",
        "dark+defocus+jpeg",
        "motion_blur+defocus+noise",
    ),
}
"""AgenticIR's MiO100 groups (BENCHMARK.md): 8 + 4 + 4 combinations."""

COMBOS: tuple[str, ...] = tuple(c for g in GROUPS.values() for c in g)


def group_of(combo: str) -> str:
    """The group (A/B/C) of a benchmark combination; ``-`` for one outside the 16."""
    key = _canonical(combo)
    for g, combos in GROUPS.items():
        if key in {_canonical(c) for c in combos}:
            return g
    return "-"


def _canonical(combo: str) -> tuple[str, ...]:
    return tuple(sorted(n.strip() for n in combo.split("+") if n.strip()))


def parse_combos(value: str | None) -> list[str]:
    """``--combos`` (comma-separated, each ``a+b``) checked against the known degradations.

    Examples:
        >>> parse_combos("noise+jpeg, rain+haze")
        ['noise+jpeg', 'rain+haze']
        >>> len(parse_combos(None))
        16
    """
    if value is None:
        return list(COMBOS)
    out = []
    for c in value.split(","):
        c = c.strip()
        if not c:
            continue
        names = degrade.parse_combo(c)  # unknown names fail here, with suggestions
        for n in names:
            if n not in {d.value for d in Degradation}:
                raise ValueError(f"{n!r} in {c!r} is synthesis-only: no restoration task undoes it yet")
        out.append(c)
    if not out:
        raise ValueError("no combination given")
    return out


def case_seed(seed: int, image: str, combo: str) -> int:
    """The degradation seed of one case: a function of (benchmark seed, image name, combination)."""
    return zlib.crc32(f"{int(seed)}|{image}|{'+'.join(_canonical(combo))}".encode())


def tasks_for(combo: str) -> list[Task]:
    """The restoration tasks that undo ``combo``, in the order the degradations formed."""
    return [TASK_FOR[Degradation(n)] for n in degrade.parse_combo(combo)]


@dataclass(frozen=True)
class CleanImage:
    """One clean source: its display name (unique in the run) and file."""

    name: str
    path: Path


def clean_images(dirs: list[Path], limit: int | None = None) -> list[CleanImage]:
    """Image files of ``dirs`` (sorted by name, folders in the order given), the first ``limit``.

    Names are file names; when two folders hold the same file name, the folder is prefixed.
    """
    files: list[tuple[Path, Path]] = []
    for d in dirs:
        d = Path(d)
        if not d.is_dir():
            raise FileNotFoundError(f"clean image folder not found: {d}")
        found = sorted(image_files(d), key=lambda p: p.relative_to(d).as_posix())
        if not found:
            raise FileNotFoundError(f"no images in {d}")
        files.extend((d, f) for f in found)
    if limit is not None:
        files = files[: max(0, int(limit))]
    names = [f.relative_to(d).as_posix() for d, f in files]
    dup = {n for n in names if names.count(n) > 1}
    return [
        CleanImage(f"{d.name}/{n}" if n in dup else n, f) for (d, f), n in zip(files, names, strict=True)
    ]


def split_by_photo(names: list[str], seed: int, fraction: float, salt: str = "split") -> set[str]:
    """The validation photos: a seeded ``fraction`` of ``names`` (at least one when there are two or
    more, none with fewer), so that no photo is in both splits. ``salt`` keeps the splits of
    different datasets independent.

    Examples:
        >>> len(split_by_photo([f"p{i}.png" for i in range(20)], 0, 0.15))
        3
        >>> split_by_photo(["only.png"], 0, 0.15)
        set()
    """
    order = sorted(names, key=lambda n: zlib.crc32(f"{salt}|{seed}|{n}".encode()))
    n_val = 0 if len(names) < 2 else max(1, round(fraction * len(names)))
    return set(order[:n_val])


def crop_at(image: np.ndarray, size: int, where: list[float] | tuple[float, float]) -> np.ndarray:
    """The ``size`` x ``size`` crop whose top-left corner is at fractions ``where`` = (y, x) of the
    free range (a side shorter than ``size`` is kept whole).

    Examples:
        >>> crop_at(np.zeros((300, 200, 3), np.float32), 128, (1.0, 0.0)).shape
        (128, 128, 3)
    """
    h, w = image.shape[:2]
    ch, cw = min(size, h), min(size, w)
    y, x = int(where[0] * (h - ch)), int(where[1] * (w - cw))
    return np.ascontiguousarray(image[y : y + ch, x : x + cw])


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
    """The central ``size`` x ``size`` crop (a side shorter than ``size`` is kept whole).

    Examples:
        >>> center_crop(np.zeros((300, 200, 3), np.float32), 256).shape
        (256, 200, 3)
    """
    h, w = image.shape[:2]
    ch, cw = min(size, h), min(size, w)
    y, x = (h - ch) // 2, (w - cw) // 2
    return np.ascontiguousarray(image[y : y + ch, x : x + cw])


def load_clean(path: Path, size: int) -> np.ndarray:
    """The clean crop of one source, 8-bit RGB as float32 in [0, 1]."""
    loaded = load_image(path)
    img = loaded.pixels
    if loaded.bit_depth > 8:  # the benchmark scores 8-bit images: quantise the reference too
        img = quantize(img)
    return center_crop(img, size)


@dataclass
class Case:
    """One benchmark case: a clean crop degraded by one combination."""

    image: str
    combo: str
    seed: int
    clean: np.ndarray
    degraded: np.ndarray
    labels: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def group(self) -> str:
        return group_of(self.combo)

    @property
    def tasks(self) -> list[Task]:
        return tasks_for(self.combo)


def make_case(clean: np.ndarray, image: str, combo: str, seed: int) -> Case:
    """Degrade ``clean`` with ``combo`` (severities drawn from the case seed), 8-bit quantised."""
    s = case_seed(seed, image, combo)
    degraded, labels = degrade.compose(clean, combo, seed=s)
    return Case(image=image, combo=combo, seed=s, clean=clean, degraded=quantize(degraded), labels=labels)
