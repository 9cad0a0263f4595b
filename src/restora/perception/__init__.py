"""Perception: what is wrong with an image, how badly, and the measurements behind it.

:func:`perceive` runs classical no-reference estimators (see :mod:`.measures` for each method
and its source) and turns them into one :class:`Finding` per degradation type
(:mod:`.decide`). Thresholds were calibrated on synthetic degradations of clean photos
(``scripts/calibrate_perception.py``): clean photos read clean, and each single degradation from
:mod:`restora.degrade` at severity 0.3 or more is found.

Examples:
    >>> import numpy as np
    >>> from skimage import data
    >>> from restora import degrade
    >>> from restora.perception import perceive
    >>> photo = data.astronaut()[100:356, 150:406].astype(np.float32) / 255
    >>> perceive(photo).is_clean()
    True
    >>> report = perceive(degrade.apply(photo, "noise", 0.5, seed=1))
    >>> [f.degradation.value for f in report.present()]
    ['noise']
    >>> 24 < report.findings["noise"].evidence["noise_sigma"] < 31   # true sigma 27.5
    True
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from restora.perception import measures as _m
from restora.perception.decide import decide as _decide_findings
from restora.perception.report import DegradationReport, Finding

__all__ = ["BACKENDS", "DEFAULT_BACKEND", "SHIPPED_MODEL", "DegradationReport", "Finding", "backend", "measure_all", "perceive"]

MIN_SIDE = 32

BACKENDS: tuple[str, ...] = ("learned", "classical")
"""The named perception backends (a run folder of ``restora train perception`` also names one)."""

DEFAULT_BACKEND = "learned"
"""What reads an image when neither the run nor ``RESTORA_PERCEPTION`` says: the shipped network
(:data:`SHIPPED_MODEL`), with the classical estimators deciding the frame's tone and judging steps."""

SHIPPED_MODEL = Path(__file__).with_name("model")
"""The perception network that ships with restora (``model.safetensors``, ``model.json``, ``CARD.md``)."""

_LOADED: dict[str, Callable] = {}
_LOCK = threading.Lock()


def backend(name: str | Path | None = None) -> Callable[[np.ndarray], DegradationReport]:
    """The ``perceive`` callable ``name`` names: ``"classical"`` (:func:`perceive`), ``"learned"``
    (the shipped network, :data:`SHIPPED_MODEL`) or a run folder of ``restora train perception``;
    None: ``RESTORA_PERCEPTION``, else :data:`DEFAULT_BACKEND`. A network is loaded once per process.

    Examples:
        >>> backend("classical") is perceive
        True
        >>> backend("nowhere")
        Traceback (most recent call last):
        ...
        restora.errors.RestoraError: perception backend 'nowhere': use learned, classical or a run folder of `restora train perception`
    """
    if name is None:
        from restora.config import env

        name = env().perception or DEFAULT_BACKEND
    if str(name) == "classical":
        return perceive
    from restora.errors import RestoraError

    folder = SHIPPED_MODEL if str(name) == "learned" else Path(name)
    if str(name) == "learned" and not (folder / "model.safetensors").is_file():
        raise RestoraError(
            f"the shipped perception network is missing from this install ({folder / 'model.safetensors'}): reinstall "
            "restora, or use classical (RESTORA_PERCEPTION=classical) or a run folder of `restora train perception`"
        )
    if str(name) != "learned" and not folder.is_dir():
        raise RestoraError(f"perception backend {str(name)!r}: use learned, classical or a run folder of `restora train perception`")
    key = str(folder.resolve())
    with _LOCK:
        if key not in _LOADED:
            from restora.perception.learned import LearnedPerception

            _LOADED[key] = LearnedPerception.load(folder)
        return _LOADED[key]


def measure_all(image: np.ndarray) -> dict[str, float]:
    """Every raw measure perception uses, as a flat dict of floats.

    Examples:
        >>> m = measure_all(image)                                # doctest: +SKIP
        >>> m["noise_sigma"], m["jpeg_quality"], m["mean_luma"]   # doctest: +SKIP
        (0.8, 100.0, 0.44)
    """
    img = _check(image)
    Y = _m.luma(img)
    out: dict[str, float] = {}
    out.update(_m.noise_sigma(img))
    out.update(_m.jpeg_quality(img))
    jpeg_grid = out["jpeg_quality"] < 100 or out["blockiness"] > 1.15
    out.update(_m.blur_measures(Y, out["noise_sigma"], jpeg_grid=jpeg_grid))
    out.update(_m.resampling_periodicity(Y, jpeg_grid=jpeg_grid))
    out.update(_m.exposure_haze(img))
    out.update(_m.rain_streaks(img, out["noise_sigma"]))
    # an upscaled image hides noise and rain streaks at its own pixel scale: measure them again
    # at the scale it was upscaled from
    f = _interpolation_factor(out)
    out["lowres_scale"] = f
    if f > 1.0:
        h, w = img.shape[:2]
        small = cv2.resize(img, (max(32, round(w / f)), max(32, round(h / f))), interpolation=cv2.INTER_AREA)
        out["noise_sigma_lowres"] = _m.noise_sigma(small)["noise_sigma"]
        rain = _m.rain_streaks(small, out["noise_sigma_lowres"])
        out.update({f"{k}_lowres": v for k, v in rain.items()})
    return out


def _interpolation_factor(m: dict[str, float]) -> float:
    """The upscaling factor when the interpolation period is unmistakable, else 1."""
    if m["resample_peak"] < 5.0:
        return 1.0
    from restora.perception.decide import lowres_factor

    return float(np.clip(lowres_factor(m), 1.0, 4.0))


def perceive(image: np.ndarray) -> DegradationReport:
    """Assess ``image`` (float32 (H, W, 3) RGB in [0, 1]); one finding per degradation type.

    Examples:
        >>> report = perceive(image)                                  # doctest: +SKIP
        >>> report.is_clean(), report.summary()                       # doctest: +SKIP
        (False, 'jpeg 0.46')
        >>> report.findings["jpeg"].evidence["jpeg_quality"]          # doctest: +SKIP
        45.0
    """
    t0 = time.perf_counter()
    m = measure_all(image)
    findings = _decide_findings(m)
    h, w = image.shape[:2]
    return DegradationReport(findings=findings, width=w, height=h, seconds=round(time.perf_counter() - t0, 4))


def _check(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a float32 (H, W, 3) RGB image, got {getattr(image, 'shape', type(image))}")
    if min(image.shape[:2]) < MIN_SIDE:
        raise ValueError(f"image too small for perception: {image.shape[1]}x{image.shape[0]} (min {MIN_SIDE} px)")
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"expected a float image in [0, 1], got dtype {image.dtype}")
    return np.ascontiguousarray(np.clip(image, 0.0, 1.0), dtype=np.float32)
