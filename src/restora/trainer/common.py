"""What every trainer's config shares: the default training pool, the checks, the JSON form.

Examples:
    >>> check_all([(True, "fine")])
    >>> check_all([(False, "steps must be >= 1, got 0")])
    Traceback (most recent call last):
    ...
    ValueError: steps must be >= 1, got 0
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

MILD_SEVERITY = 0.15
"""Upper end of the mild severities the trainers can draw (``restora train perception
--camera-mild-share``, ``restora train guard --mild-share``): restora.degrade's camera model gives
a noise rms of about 3.2 (0-255) at 0.05 and 4.3 at 0.1 on the shared data's camera ground truths
(scripts/camera_noise_gap.py); the end is a round number above the range a camera's own JPEG
shows."""


def default_clean_pool() -> list[Path]:
    """The training pool: the shared data's ``clean/cbsd68`` and ``clean/live1`` (never the
    benchmark's ``kodak24`` / ``set5_hr``)."""
    from restora.data import data_dir

    root = data_dir() / "clean"
    return [root / "cbsd68", root / "live1"]


def check_all(checks: list[tuple[bool, str]]) -> None:
    """Raise ``ValueError`` with the message of the first check that fails."""
    for ok, message in checks:
        if not ok:
            raise ValueError(message)


def config_json(cfg: Any) -> dict[str, Any]:
    """A trainer config dataclass as JSON: its paths (``out``, ``clean`` and any other) as strings."""
    d = dataclasses.asdict(cfg)
    d["clean"] = [str(p) for p in cfg.clean]
    return {k: str(v) if isinstance(v, Path) else v for k, v in d.items()}
