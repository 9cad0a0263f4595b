"""The no-harm guard: does what a step removed look like the degradation it targets?

The accept rule's quality gain is measured by no-reference metrics, which a step can fool: a
derainer that erases a barcode's bars, or a denoiser that wipes a tile wall's grout lines, leaves
a smoother image that NR metrics (and perception, which chose the tool) may like better. The
guard looks at the *residual* of a step instead (``before - after`` in luma, at native
resolution) and at what the step did to the picture's strongest edges, in a dozen measures
(:func:`residual_features`): how much more was removed than the noise level, how much of the
removed energy is large-amplitude structure, how much of the strongest edges vanished, whether the
residual follows the image's own edges, its spatial correlation, sign, sparsity and orientation;
for deblurring, overshoot beyond the local range of the input (ringing, halos) and amplified
high frequencies in flat areas.

Per task family a logistic model turns them into a probability that the step harmed the photo.
The models are fitted by ``restora train guard`` on steps restora synthesizes from the clean
training pool (each tool run on degraded crops, on clean crops and on hard negatives such as
text, barcodes, fences and tiles), labelled by the PSNR change against the known clean picture;
the threshold is chosen on the validation split's photos (never on benchmark photos) and ships in
``guard.json`` beside this module with the command that made it.

Where a family's model proved reliable on its validation split, it also *vouches* for a step it is
sure of (harm probability at most the family's ``vouch``): the agent then keeps the step even when
the NR metrics read it as worse. They over-reward texture: after a de-blocking, the denoise that
takes out the noise left underneath reads as worse to BRISQUE and PIQE while it gains 3-4 dB.

Examples:
    >>> import numpy as np
    >>> from restora.quality.guard import NoHarmGuard
    >>> guard = NoHarmGuard.default()
    >>> before = np.random.default_rng(0).random((64, 64, 3), dtype=np.float32)
    >>> guard.check(before, before, "low_light").checked      # not a guarded task (a tone change)
    False
    >>> sorted(guard.families)
    ['deblur', 'dejpeg', 'denoise', 'denoise@dim', 'derain', 'super_resolution']
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from restora.perception.measures import luma, to_view, view_gain

GUARD_FILE = Path(__file__).with_name("guard.json")

FAMILY_OF: dict[str, str] = {
    "denoise": "denoise",
    "derain": "derain",
    "dejpeg": "dejpeg",
    "motion_deblur": "deblur",
    "defocus_deblur": "deblur",
    "super_resolution": "super_resolution",
}
"""Task -> guard family. Tasks not here (dehaze, low light) are not guarded: their residual is a
tone change, not something removed. Super-resolution in restore mode (same size out) is: on a
photo that was not enlarged, shrinking and re-enlarging it loses real detail."""

FEATURES: tuple[str, ...] = (
    "removed_over_noise",
    "big_share",
    "strong_edge_loss",
    "residual_on_edges",
    "residual_correlation",
    "residual_sign",
    "residual_sparsity",
    "residual_coherence",
    "overshoot",
    "flat_detail_gain",
    "edge_gain",
    "clipped_change",
    "pieces",
    "piece_size",
    "piece_linearity",
    "largest_piece",
    "removed_share",
    "removed_peak",
    "removed_plateau",
)

PIECE_FEATURES: tuple[str, ...] = FEATURES[-7:]
"""The measures of the pieces of what a step removed (:func:`_pieces`); all 0 when it has none."""

EXPLAIN: dict[str, str] = {
    "removed_over_noise": "it removed far more than the image's noise level",
    "big_share": "most of what it removed is large-amplitude structure, not a faint degradation",
    "strong_edge_loss": "it erased some of the picture's strongest edges",
    "residual_on_edges": "what it removed follows the picture's own edges",
    "residual_correlation": "what it removed is smooth, coherent structure",
    "residual_sign": "what it removed is one-signed",
    "residual_sparsity": "what it removed is sparse",
    "residual_coherence": "what it removed runs in one direction",
    "overshoot": "it overshoots the input's local range (ringing or halos)",
    "flat_detail_gain": "it added detail in flat areas (amplified noise or ringing)",
    "edge_gain": "it changed the strength of the strongest edges",
    "clipped_change": "it pushed pixels into clipping",
    "pieces": "what it removed is a few separate pieces, not many small ones",
    "piece_size": "what it removed comes in large pieces",
    "piece_linearity": "what it removed is made of long lines",
    "largest_piece": "most of what it removed is one connected shape (a pattern, a grid, a sign)",
    "removed_share": "it changed a large share of the pixels",
    "removed_peak": "what it removed has the full contrast of printed or drawn content (rain and noise are fainter)",
    "removed_plateau": "what it removed has flat tops and crisp sides, like drawn shapes, not soft streaks or grain",
}
"""What a measure's *high* value means, in words for the trace and the page."""

EXPLAIN_LOW: dict[str, str] = {
    "removed_over_noise": "it removed less than the image's noise level",
    "big_share": "none of what it removed is large-amplitude",
    "strong_edge_loss": "it left the strongest edges as they were",
    "residual_on_edges": "what it removed stays off the picture's edges",
    "residual_correlation": "what it removed is fine, uncorrelated grain",
    "residual_sign": "it brightened the picture overall",
    "residual_sparsity": "what it removed is spread evenly",
    "residual_coherence": "what it removed has no direction",
    "overshoot": "it stays well inside the input's local range",
    "flat_detail_gain": "it took detail out of flat areas",
    "edge_gain": "it weakened the strongest edges",
    "clipped_change": "it pulled pixels out of clipping",
    "pieces": "what it removed has few pieces above the piece level",
    "piece_size": "what it removed comes in tiny pieces",
    "piece_linearity": "its pieces are compact, not lines",
    "largest_piece": "no single piece dominates what it removed",
    "removed_share": "it changed few pixels by much",
    "removed_peak": "what it removed is faint",
    "removed_plateau": "what it removed peaks sharply, with no flat tops",
}
"""What a measure's *low* value means: a contribution to the harm probability can come from either
end (a negative weight on a value below the mean), and the reason must say which."""

NO_PIECES = "nothing it removed rises above the piece level (a faint step, which the piece measures cannot describe)"
"""The reason when piece measures push the verdict but the step has no piece at all (they are 0)."""

MAX_PIXELS = 1_100_000
"""Above this the measures run on native-resolution crops (never on a downscale, which hides
what a denoiser or deblocker changed)."""


def noise_sigma(luma: np.ndarray, blurred_grad: np.ndarray | None = None) -> float:
    """Immerkaer's fast noise estimate (std, [0, 1] units) from the 3x3 Laplacian difference mask,
    taken over the flattest half of the image so texture counts less. ``blurred_grad`` is the
    gradient magnitude of the luma blurred with sigma 1 px when the caller has it already.

    Examples:
        >>> import numpy as np
        >>> flat = np.full((128, 128), 0.5, np.float32)
        >>> noisy = flat + np.random.default_rng(0).normal(0, 0.05, flat.shape).astype(np.float32)
        >>> 0.04 < noise_sigma(noisy) < 0.06
        True
    """
    k = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    m = np.abs(cv2.filter2D(luma, -1, k, borderType=cv2.BORDER_REFLECT))[1:-1, 1:-1]
    if blurred_grad is None:
        blurred_grad = _grad(cv2.GaussianBlur(luma, (0, 0), 1.0))
    grad = blurred_grad[1:-1, 1:-1]
    flat = m[grad <= np.median(grad)]
    if flat.size == 0:
        return 0.0
    return float(math.sqrt(math.pi / 2.0) / 6.0 * flat.mean())


def _grad(luma: np.ndarray) -> np.ndarray:
    gx = cv2.Sobel(luma, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    gy = cv2.Sobel(luma, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    return np.sqrt(gx * gx + gy * gy)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a = a.ravel().astype(np.float64)
    b = b.ravel().astype(np.float64)
    a -= a.mean()
    b -= b.mean()
    den = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum() / den) if den > 1e-12 else 0.0


def residual_features(before: np.ndarray, after: np.ndarray, gain: float = 1.0) -> dict[str, float]:
    """The guard's measures of one step (``before`` -> ``after``, same-size float images in [0, 1]).

    Every value is a plain float, comparable across image sizes (shares, ratios, correlations,
    logs of ratios). See the module docstring for what each one looks at. ``gain`` > 1 measures
    both as a person views a dim picture, brightened by :func:`~restora.perception.measures.to_view`
    (a family fitted that way, ``view`` in its model, passes the picture's
    :func:`~restora.perception.measures.view_gain`).

    Examples:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> clean = np.full((96, 96, 3), 0.5, np.float32)
        >>> noisy = np.clip(clean + rng.normal(0, 0.05, clean.shape), 0, 1).astype(np.float32)
        >>> f = residual_features(noisy, clean)
        >>> abs(f["removed_over_noise"]) < 0.3 and f["big_share"] < 0.05   # it removed the noise
        True
    """
    b = to_view(luma(before), gain)
    a = to_view(luma(after), gain)
    r = b - a
    eps = 1.0 / 255.0
    gb = _grad(cv2.GaussianBlur(b, (0, 0), 1.0))
    sigma = noise_sigma(b, gb)
    rms = float(np.sqrt(np.mean(r * r)))
    f: dict[str, float] = {}
    f["removed_over_noise"] = math.log((rms + eps) / (sigma + eps))
    energy = float((r * r).sum())
    big = np.abs(r) > 0.12
    f["big_share"] = float((r[big] ** 2).sum() / energy) if energy > 1e-12 else 0.0

    ga = _grad(cv2.GaussianBlur(a, (0, 0), 1.0))
    cut = max(float(np.percentile(gb, 98.0)), 0.02)
    strong = gb >= cut
    if strong.any():
        ratio = ga[strong] / (gb[strong] + 1e-6)
        f["strong_edge_loss"] = float(np.clip(1.0 - ratio, 0.0, 1.0).mean())
        f["edge_gain"] = math.log(float(ga[strong].mean() + 1e-4) / float(gb[strong].mean() + 1e-4))
    else:
        f["strong_edge_loss"] = 0.0
        f["edge_gain"] = 0.0
    ra = cv2.GaussianBlur(np.abs(r), (0, 0), 2.0)
    f["residual_on_edges"] = _corr(ra, gb)

    if rms > 1e-6:
        rc = r - r.mean()
        var = float((rc * rc).mean()) + 1e-12
        ch = float((rc[:, 1:] * rc[:, :-1]).mean()) / var
        cv = float((rc[1:, :] * rc[:-1, :]).mean()) / var
        f["residual_correlation"] = 0.5 * (ch + cv)
        f["residual_sign"] = float(r.mean() / (np.abs(r).mean() + 1e-12))
        kurt = float((rc**4).mean()) / var**2
        f["residual_sparsity"] = math.log(max(kurt, 1e-3))
        rx = cv2.Sobel(r, cv2.CV_32F, 1, 0, ksize=3)
        ry = cv2.Sobel(r, cv2.CV_32F, 0, 1, ksize=3)
        jxx, jyy, jxy = float((rx * rx).sum()), float((ry * ry).sum()), float((rx * ry).sum())
        tr = jxx + jyy
        f["residual_coherence"] = math.sqrt((jxx - jyy) ** 2 + 4 * jxy * jxy) / tr if tr > 1e-12 else 0.0
    else:
        f["residual_correlation"] = f["residual_sign"] = f["residual_sparsity"] = f["residual_coherence"] = 0.0

    kernel = np.ones((5, 5), np.uint8)
    hi = cv2.dilate(b, kernel)
    lo = cv2.erode(b, kernel)
    over = np.maximum(a - hi, 0.0) + np.maximum(lo - a, 0.0)
    f["overshoot"] = math.log((float(over.mean()) + 1e-4) / (float(gb.mean()) + 1e-3))

    lap_b = np.abs(cv2.Laplacian(b, cv2.CV_32F))
    lap_a = np.abs(cv2.Laplacian(a, cv2.CV_32F))
    flat = gb <= np.percentile(gb, 30.0)
    f["flat_detail_gain"] = math.log((float(lap_a[flat].mean()) + 1e-3) / (float(lap_b[flat].mean()) + 1e-3)) if flat.any() else 0.0

    clip_b = float(((b <= 0.005) | (b >= 0.995)).mean())
    clip_a = float(((a <= 0.005) | (a >= 0.995)).mean())
    f["clipped_change"] = clip_a - clip_b
    f.update(_pieces(r))
    return {k: float(f[k]) for k in FEATURES}


def _pieces(r: np.ndarray, level: float = 0.05) -> dict[str, float]:
    """Geometry and profile of the connected pieces of what a step removed (``|r| > level``): how
    many per 10,000 px (log), their median area (log px), how line-like they are (median of
    longest bounding-box side squared over area, log), the largest piece's share of the removed
    area, the share of pixels removed, the 95th percentile of the removed amplitude and its median
    over that (flat-topped plateaus near 1, soft streaks and grain well below). Rain and noise are
    many small, faint, soft pieces; a barcode, text, a grid of grout lines or a sign is few, large,
    connected, full-contrast, crisp ones."""
    mag = np.abs(r)
    mask = (mag > level).astype(np.uint8)
    total = int(mask.sum())
    h, w = r.shape
    if total < 4:
        return {k: 0.0 for k in PIECE_FEATURES}
    inside = mag[mask.astype(bool)]
    peak = float(np.percentile(inside, 95.0))
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    stats = stats[1:]
    area = stats[:, cv2.CC_STAT_AREA].astype(np.float64)
    side = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]).astype(np.float64)
    big = area >= 3
    return {
        "pieces": math.log1p((n - 1) * 1e4 / (h * w)),
        "piece_size": math.log(float(np.median(area))),
        "piece_linearity": math.log(float(np.median(side[big] ** 2 / area[big]))) if big.any() else 0.0,
        "largest_piece": float(area.max() / total),
        "removed_share": total / float(h * w),
        "removed_peak": peak,
        "removed_plateau": float(np.median(inside)) / peak,
    }


def guard_crops(shape: tuple[int, int], max_pixels: int = MAX_PIXELS, side: int = 512) -> list[tuple[int, int, int, int]]:
    """Boxes ``(y, x, h, w)`` the measures run on: the whole image when small enough, else up to
    four native-resolution crops of ``side`` px spread over the frame.

    Examples:
        >>> guard_crops((300, 400))
        [(0, 0, 300, 400)]
        >>> len(guard_crops((4000, 6000)))
        4
    """
    h, w = shape
    if h * w <= max_pixels:
        return [(0, 0, h, w)]
    ch, cw = min(side, h), min(side, w)
    boxes = []
    for fy, fx in ((0.25, 0.25), (0.25, 0.75), (0.75, 0.25), (0.75, 0.75)):
        y = int(round(fy * h - ch / 2))
        x = int(round(fx * w - cw / 2))
        boxes.append((min(max(y, 0), h - ch), min(max(x, 0), w - cw), ch, cw))
    return boxes


@dataclass(frozen=True)
class GuardVerdict:
    """The guard's answer on one step.

    ``checked`` is False for tasks the guard does not judge (then ``ok`` is True).
    """

    task: str
    checked: bool
    ok: bool
    p_harm: float | None = None
    threshold: float | None = None
    reason: str = ""
    features: dict[str, float] = field(default_factory=dict)
    vouched: bool = False
    """The family's model is sure this step helped (``p_harm <= vouch``): the accept rule then
    does not also need the NR score to rise."""
    faint: bool = False
    """Nothing the step removed rises above the piece level (every piece measure 0, in the crop
    that decided): a step too faint for the measures that tell a degradation from content. A fit
    with the shipped settings drew 12 such steps among its 2880 denoise steps, so a rejection of
    one says little; the planner tries the same tool stronger (``restora.planners.heuristic``)."""
    view_gain: float = 1.0
    """How much the picture was brightened to be measured (1: as it is; see ``FamilyModel.view``)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "checked": self.checked,
            "ok": self.ok,
            "p_harm": None if self.p_harm is None else round(self.p_harm, 4),
            "threshold": self.threshold,
            "reason": self.reason,
            "features": {k: round(v, 4) for k, v in self.features.items()},
            "vouched": self.vouched,
            "faint": self.faint,
            "view_gain": round(self.view_gain, 3),
        }


@dataclass(frozen=True)
class FamilyModel:
    """A standardised logistic model: ``p = sigmoid(b + w . (x - mean) / scale)``; a step is harm
    above ``threshold``, and vouched for at or below ``vouch`` (None: the family never vouches)."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    threshold: float
    vouch: float | None = None
    view: bool = False
    """Measure a dim picture's steps as a person views it, brightened by its
    :func:`~restora.perception.measures.view_gain` (the family was fitted that way)."""

    def p_harm(self, x: np.ndarray) -> float:
        z = (np.asarray(x, np.float64) - np.asarray(self.mean)) / np.asarray(self.scale)
        logit = float(self.bias + np.dot(np.asarray(self.weights), z))
        return float(1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, logit)))))

    def contributions(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, np.float64) - np.asarray(self.mean)) / np.asarray(self.scale)
        return np.asarray(self.weights) * z


def is_faint(feats: dict[str, float]) -> bool:
    """Whether nothing a step removed rises above the piece level (every piece measure is 0).

    Examples:
        >>> is_faint({k: 0.0 for k in FEATURES}), is_faint({**{k: 0.0 for k in FEATURES}, "removed_peak": 0.08})
        (True, False)
    """
    return all(feats.get(k, 0.0) == 0.0 for k in PIECE_FEATURES)


def explain_harm(model: FamilyModel, vec: np.ndarray, feats: dict[str, float], top: int = 2) -> str:
    """The measures that pushed the harm probability up most, in words: each from the end it
    came from (:data:`EXPLAIN` for a value above the family's mean, :data:`EXPLAIN_LOW` below);
    the piece measures of a step with no piece at all (every one 0) as one phrase, :data:`NO_PIECES`.

    Examples:
        >>> m = FamilyModel(mean=(0.0,) * len(FEATURES), scale=(1.0,) * len(FEATURES),
        ...                 weights=tuple(-1.0 if k == "removed_peak" else 0.0 for k in FEATURES), bias=0.0, threshold=0.5)
        >>> f = {k: 0.0 for k in FEATURES}
        >>> f["removed_peak"] = -2.0                   # below the mean, under a negative weight
        >>> explain_harm(m, np.array([f[k] for k in FEATURES]), f)
        'what it removed is faint'
    """
    contrib = model.contributions(vec)
    z = np.asarray(vec, np.float64) - np.asarray(model.mean)
    no_pieces = is_faint(feats)
    words: list[str] = []
    for i in np.argsort(-contrib):
        if contrib[i] <= 0 or len(words) >= top:
            break
        name = FEATURES[i]
        if no_pieces and name in PIECE_FEATURES:
            text = NO_PIECES
        else:
            text = EXPLAIN[name] if z[i] >= 0 else EXPLAIN_LOW[name]
        if text not in words:
            words.append(text)
    return "; ".join(words) or "its residual looks like the picture's own content"


DIM_SUFFIX = "@dim"
"""A family named ``<family>@dim`` in ``guard.json`` judges the family's steps on dim pictures (a
:func:`~restora.perception.measures.view_gain` above 1), measured viewed brightened; the family
itself judges the rest (``restora train guard --view-dim-only``)."""

_LOADED: dict[Path, NoHarmGuard] = {}


class GuardError(ValueError):
    """A guard file that cannot be used."""


class NoHarmGuard:
    """Judges steps by their residual; ``check`` -> :class:`GuardVerdict`.

    Args:
        families: family name -> :class:`FamilyModel` (from ``guard.json``).
        info: the file's provenance (command, seed, data, validation figures).
    """

    def __init__(self, families: dict[str, FamilyModel], info: dict[str, Any] | None = None) -> None:
        self.families = dict(families)
        self.info = dict(info or {})

    @classmethod
    def load(cls, path: str | Path) -> NoHarmGuard:
        """A guard from a ``guard.json`` written by ``restora train guard``."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise GuardError(f"cannot read the guard file {path}: {e}") from e
        if tuple(data.get("features", ())) != FEATURES:
            raise GuardError(f"{path}: its features {data.get('features')} are not this restora's {list(FEATURES)}")
        families = {}
        for name, m in data.get("families", {}).items():
            try:
                families[name] = FamilyModel(
                    mean=tuple(m["mean"]), scale=tuple(m["scale"]), weights=tuple(m["weights"]),
                    bias=float(m["bias"]), threshold=float(m["threshold"]),
                    vouch=None if m.get("vouch") is None else float(m["vouch"]),
                    view=bool(m.get("view", False)),
                )
            except (KeyError, TypeError, ValueError) as e:
                raise GuardError(f"{path}: family {name!r} is malformed: {e}") from e
        return cls(families, {k: v for k, v in data.items() if k not in ("families", "features")})

    @classmethod
    def default(cls) -> NoHarmGuard:
        """The guard that ships with restora (``guard.json`` beside this module; read once)."""
        if GUARD_FILE not in _LOADED:
            _LOADED[GUARD_FILE] = cls.load(GUARD_FILE)
        return _LOADED[GUARD_FILE]

    def check(self, before: np.ndarray, after: np.ndarray, task: str | None) -> GuardVerdict:
        """Whether the step ``before`` -> ``after`` for ``task`` is safe to keep.

        A different output size (super-resolution) or an unguarded task is not checked. On a
        large image the measures run on native-resolution crops and the worst crop decides.
        """
        task = str(task or "")
        family = FAMILY_OF.get(task)
        model = self.families.get(family or "")
        if model is None or np.shape(before) != np.shape(after):
            return GuardVerdict(task=task, checked=False, ok=True, reason="not a step the guard judges")
        dim = self.families.get(f"{family}{DIM_SUFFIX}")
        gain = view_gain(np.asarray(before)[::4, ::4]) if (model.view or dim is not None) else 1.0  # the whole picture's, for every crop
        if dim is not None and gain > 1.0:
            model = dim  # a dim picture: the family's model for dim pictures, measured viewed
        elif not model.view:
            gain = 1.0
        worst: tuple[float, np.ndarray, dict[str, float]] | None = None
        for y, x, h, w in guard_crops(np.shape(before)[:2]):
            feats = residual_features(before[y : y + h, x : x + w], after[y : y + h, x : x + w], gain)
            vec = np.array([feats[k] for k in FEATURES])
            p = model.p_harm(vec)
            if worst is None or p > worst[0]:
                worst = (p, vec, feats)
        assert worst is not None
        p, vec, feats = worst
        ok = p <= model.threshold
        vouched = model.vouch is not None and p <= model.vouch
        if vouched:
            reason = f"sure that what it removed is the {task.replace('_', ' ')} it targets: harm {p:.2f} <= {model.vouch:.2f}"
        elif ok:
            reason = f"what it removed looks like the {task.replace('_', ' ')} it targets (harm {p:.2f} <= {model.threshold:.2f})"
        else:
            why = explain_harm(model, vec, feats)
            reason = f"likely harm ({p:.2f} > {model.threshold:.2f}): {why}"
        if gain > 1.0:
            reason += f"; measured as viewed brightened x{gain:.1f} (a dim picture)"
        return GuardVerdict(
            task=task, checked=True, ok=ok, p_harm=p, threshold=model.threshold, reason=reason, features=feats, vouched=vouched,
            faint=is_faint(feats), view_gain=gain,
        )
