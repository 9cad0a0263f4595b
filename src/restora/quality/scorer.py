"""The scorer: one image -> :class:`QualityScores` (raw and normalised metrics, the NR mean, the
perception term and ``overall``), and :func:`compare` of two scores.

Examples:
    >>> from restora.quality.scorer import QualityScorer
    >>> QualityScorer(["piqe"]).metrics
    ['piqe']
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from restora.model_zoo.loaded import resolve_device
from restora.quality.metrics import (
    DEFAULT_METRICS,
    MetricUnavailableError,
    QualityError,
    get_metric,
    load_metric,
)

if TYPE_CHECKING:  # perception is optional at import time
    from restora.perception import DegradationReport

NR_WEIGHT = 0.5
"""Weight of the mean normalised NR quality in ``overall`` when a perception report is given."""
DEGRADATION_WEIGHT = 0.5
"""Weight of the perception term in ``overall`` when a report is given."""
DEFAULT_MAX_SIDE = 512



# -- scores ------------------------------------------------------------------------------------
class QualityScores(BaseModel):
    """The scores of one image. Every derived value is in [0, 1] with 1 = best.

    Examples:
        >>> s = QualityScorer().score(image)            # doctest: +SKIP
        >>> s.raw["niqe"], s.normalized["niqe"], s.nr, s.overall      # doctest: +SKIP
        (6.1, 0.85, 0.78, 0.78)
        >>> QualityScores.model_validate_json(s.model_dump_json()) == s  # doctest: +SKIP
        True
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    raw: dict[str, float | None] = Field(description="raw metric values (None: could not run)")
    normalized: dict[str, float | None] = Field(description="per-metric quality in [0, 1], 1 = best")
    nr: float | None = Field(description="mean normalised NR quality over the metrics that ran")
    degradation: float | None = Field(
        default=None, description="1 - saturating combination of present severities (no report: None)"
    )
    overall: float = Field(description="NR_WEIGHT * nr + DEGRADATION_WEIGHT * degradation, or nr alone")
    image_shape: tuple[int, int] = Field(description="(height, width) of the image given")
    scored_shape: tuple[int, int] = Field(description="(height, width) the metrics saw")
    downscaled: bool = Field(description="True when scored on an area-downscaled copy")
    seconds: dict[str, float] = Field(default_factory=dict, description="wall time per metric")
    notes: list[str] = Field(default_factory=list, description="what a reader should know")


def _blend(nr: float | None, degradation: float | None) -> float | None:
    if nr is None:
        return degradation
    if degradation is None:
        return nr
    return NR_WEIGHT * nr + DEGRADATION_WEIGHT * degradation


def degradation_quality(report: DegradationReport | Mapping[str, float]) -> float:
    """Quality in [0, 1] implied by perception's findings: 1 = nothing found.

    ``report`` is a :class:`restora.perception.DegradationReport` (its ``findings`` with
    ``.present`` and ``.severity``) or a mapping degradation -> severity of what is present.
    Returns ``1 - (0.5 * max(s) + 0.5 * (1 - prod(1 - s)))``.

    Examples:
        >>> degradation_quality({})
        1.0
        >>> degradation_quality({"noise": 0.4})
        0.6
        >>> round(degradation_quality({"noise": 0.4, "jpeg": 0.4}), 3)
        0.48
    """
    severities: list[float] = []
    findings = getattr(report, "findings", None)
    if findings is not None:
        for name, f in dict(findings).items():
            if getattr(f, "present", False):
                severities.append(_severity(name, getattr(f, "severity", None)))
    elif isinstance(report, Mapping):
        severities = [_severity(n, s) for n, s in report.items()]
    else:
        raise QualityError(
            f"report must be a DegradationReport or a mapping of severities, got {type(report).__name__}"
        )
    severities = [s for s in severities if s > 0.0]
    if not severities:
        return 1.0
    worst = max(severities)
    noisy_or = 1.0 - math.prod(1.0 - s for s in severities)
    return float(1.0 - (0.5 * worst + 0.5 * noisy_or))


def _severity(name: str, value: Any) -> float:
    try:
        s = float(value)
    except (TypeError, ValueError) as e:
        raise QualityError(f"finding {name!r}: severity {value!r} is not a number") from e
    if not math.isfinite(s):
        raise QualityError(f"finding {name!r}: severity {value!r} is not finite")
    return min(1.0, max(0.0, s))


def compare(before: QualityScores, after: QualityScores) -> float:
    """``after.overall - before.overall``: > 0 means the step made the image better.

    When the two were not scored on the same footing (a metric ran on one but not the other, or
    only one had a perception report) both sides are recomputed from what they share, so the
    delta never mixes different sets of metrics.

    Examples:
        >>> delta = compare(scorer.score(noisy), scorer.score(denoised))   # doctest: +SKIP
        >>> accept = delta > 0                                              # doctest: +SKIP
    """
    ran_b = {m for m, v in before.normalized.items() if v is not None}
    ran_a = {m for m, v in after.normalized.items() if v is not None}
    same_deg = (before.degradation is None) == (after.degradation is None)
    if ran_b == ran_a and same_deg:
        return float(after.overall - before.overall)
    common = sorted(ran_b & ran_a)
    use_deg = before.degradation is not None and after.degradation is not None
    if not common and not use_deg:
        raise QualityError(
            "cannot compare: the two scores share no metric and not both have a perception report"
        )

    def side(s: QualityScores) -> float:
        nr = float(np.mean([s.normalized[m] for m in common])) if common else None
        value = _blend(nr, s.degradation if use_deg else None)
        return float(value)  # not None: common or use_deg holds

    return side(after) - side(before)


# -- the scorer --------------------------------------------------------------------------------
class QualityScorer:
    """Scores images with a fixed set of NR metrics (created once per process, on first use).

    Args:
        metrics: metric names (default ``["niqe", "brisque", "piqe"]``); unknown names fail with
            suggestions, unavailable ones with the reason.
        max_side: larger images are scored on an area-downscaled copy with this longest side.
        torch_threads: torch intra-op threads while scoring (restored after; None leaves torch
            alone). The metrics are many small ops: on a busy 2-core machine one thread scored
            NIQE at 256 px in ~0.04 s where two took ~3.7 s (thread contention).
        device: where the learned metrics run: None (the default) the CPU; ``"auto"``, ``"cuda"``,
            ... as :func:`restora.model_zoo.loaded.resolve_device`. The classical metrics (niqe,
            brisque, piqe) always run on the CPU, so their values do not depend on it.

    Examples:
        >>> scorer = QualityScorer(["brisque", "piqe"])
        >>> QualityScorer(["musiq"], device="auto")       # doctest: +SKIP
        >>> s = scorer.score(image, report=report)      # doctest: +SKIP
        >>> s.overall, s.nr, s.degradation              # doctest: +SKIP
        (0.71, 0.62, 0.8)
    """

    def __init__(
        self,
        metrics: Iterable[str] | None = None,
        max_side: int = DEFAULT_MAX_SIDE,
        torch_threads: int | None = 1,
        device: str | None = None,
    ) -> None:
        names = list(DEFAULT_METRICS if metrics is None else metrics)
        if not names:
            raise ValueError("QualityScorer needs at least one metric")
        if len(set(names)) != len(names):
            raise ValueError(f"metric names repeat: {names}")
        for name in names:
            reason = get_metric(name).unavailable_reason()
            if reason is not None:
                raise MetricUnavailableError(f"metric {name!r} is not available here: {reason}")
        if int(max_side) < 32:
            raise ValueError(f"max_side must be at least 32, got {max_side}")
        if torch_threads is not None and int(torch_threads) < 1:
            raise ValueError(f"torch_threads must be >= 1 or None, got {torch_threads}")
        self.device = None if device is None else resolve_device(device)
        self.metrics = names
        self.max_side = int(max_side)
        self.torch_threads = None if torch_threads is None else int(torch_threads)

    def load(self) -> None:
        """Create every metric now (otherwise the first :meth:`score` does).

        Examples:
            >>> QualityScorer(["piqe"]).load()
        """
        for name in self.metrics:
            load_metric(name, device=self.device)

    def score(
        self, image: np.ndarray, report: DegradationReport | Mapping[str, float] | None = None
    ) -> QualityScores:
        """Score ``image`` (float32 (H, W, 3) in [0, 1]); ``report`` adds the perception term.

        A metric that cannot run on this image (too small, or degenerate input such as a flat
        image) gives None with a note; it raises :class:`QualityError` only when nothing could
        score the image.

        Examples:
            >>> QualityScorer().score(image).overall        # doctest: +SKIP
            0.74
        """
        _check(image)
        h, w = image.shape[:2]
        work, notes = _working_copy(image, self.max_side)
        side = min(work.shape[:2])
        raw: dict[str, float | None] = {}
        normalized: dict[str, float | None] = {}
        seconds: dict[str, float] = {}
        for name in self.metrics:
            spec = get_metric(name)
            raw[name] = normalized[name] = None
            if side < spec.min_side:
                notes.append(f"{name} skipped: image side {side} px < {spec.min_side} px it needs")
                continue
            fn = load_metric(name, device=self.device)
            t0 = time.perf_counter()
            try:
                with _torch_threads(self.torch_threads):
                    value = fn(work)
            except (RuntimeError, ValueError, ArithmeticError) as e:  # degenerate statistics
                notes.append(f"{name} failed on this image: {type(e).__name__}: {str(e)[:120]}")
                continue
            finally:
                seconds[name] = round(time.perf_counter() - t0, 4)
            if not math.isfinite(value):
                notes.append(f"{name} gave a non-finite value on this image (flat or degenerate)")
                continue
            raw[name] = value
            normalized[name] = spec.normalize(value)
        ran = [v for v in normalized.values() if v is not None]
        nr = float(np.mean(ran)) if ran else None
        degradation = None if report is None else degradation_quality(report)
        overall = _blend(nr, degradation)
        if overall is None:
            raise QualityError(f"no metric could score this {w}x{h} image: {'; '.join(notes)}")
        return QualityScores(
            raw=raw,
            normalized=normalized,
            nr=nr,
            degradation=degradation,
            overall=overall,
            image_shape=(h, w),
            scored_shape=(int(work.shape[0]), int(work.shape[1])),
            downscaled=work.shape[:2] != image.shape[:2],
            seconds=seconds,
            notes=notes,
        )

    compare = staticmethod(compare)


@contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    torch = sys.modules.get("torch")
    if n is None or torch is None:
        yield
        return
    before = torch.get_num_threads()
    if before == n:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _check(image: Any) -> None:
    from restora.imageio import check_image

    check_image(image, "image to score", error=QualityError)


def _working_copy(image: np.ndarray, max_side: int) -> tuple[np.ndarray, list[str]]:
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image, []
    import cv2

    scale = max_side / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    small = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
    small = np.clip(small, 0.0, 1.0).astype(np.float32, copy=False)
    return small, [f"scored on a {nw}x{nh} area-downscaled copy of the {w}x{h} image (max side {max_side})"]
