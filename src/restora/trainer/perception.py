"""``restora train perception``: a compact network that says what is wrong with an image, trained
on degradations restora synthesizes from clean photos.

Every training sample is a pure function of ``(seed, index)``: a clean photo of the training
split (split by source photo, seeded), a crop at native resolution (never resized: a downscale
hides noise and blocking), and either nothing (a clean sample, ``clean_share`` of them) or one to
``max_degradations`` degradations from :mod:`restora.degrade` at uniform severities, each with a
seeded model choice (Gaussian, Poisson-Gaussian, film-like granular or camera-pipeline noise;
plain or web JPEG; straight-line or hand-held shake motion blur). A share of the pictures are hard negatives (:mod:`restora.synth.negatives`:
text, barcodes, fences, stripes, film grain, bokeh, night lights, starry skies, overcast skies, tiles), which are clean
unless a degradation is added to them like to any other picture. So a run is reproducible, and resuming from a checkpoint continues the same
sample stream exactly.

The network is a torchvision architecture with random initial weights (no pretrained weights
exist offline), with one output vector: per degradation a presence logit and a severity, and the
measures tools need (noise sigma, JPEG quality, motion-blur length, defocus radius, low-res
factor), each learned only where its degradation is present.

Validation uses the photos of the validation split only: per-degradation ROC AUC, F1 at 0.5 and
the threshold that maximises F1 there (the calibration a shipped model uses; never fitted on
benchmark photos), severity and measure errors.

Writes, in ``out``::

    checkpoint/model.safetensors, checkpoint/state.pt   the last checkpoint (resume from here)
    model.safetensors, model.json                       the final weights and how to use them
    metrics.json, history.jsonl                         validation figures; the loss as it went
    report.md, curves.png, validation.png               what a person looks at

Examples:
    >>> from restora.trainer.perception import PerceptionTrainConfig, train_perception
    >>> cfg = PerceptionTrainConfig(out=Path("out/perception"), steps=4000)   # doctest: +SKIP
    >>> metrics = train_perception(cfg)                                     # doctest: +SKIP
    >>> metrics["val"]["mean_auc"]                                           # doctest: +SKIP
    0.93
"""

from __future__ import annotations

import json
import math
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from restora.cases import CleanImage, clean_images, crop_at, split_by_photo
from restora.config import help_field
from restora.imageio import quantize, write_text_atomic
from restora.perception.learned import (
    DEGRADATIONS,
    MEASURES,
    build_model,
    normalize_input,
    split_outputs,
)
from restora.model_zoo import sha256_file
from restora.trainer.common import MILD_SEVERITY, check_all, config_json, default_clean_pool

NOISE_MODELS: tuple[tuple[str, float], ...] = (("gaussian", 0.35), ("poisson_gaussian", 0.2), ("granular", 0.2), ("camera", 0.25))
JPEG_MODELS: tuple[tuple[str, float], ...] = (("plain", 0.65), ("web", 0.35))
MOTION_MODELS: tuple[tuple[str, float], ...] = (("linear", 0.5), ("shake", 0.5))


@dataclass
class PerceptionTrainConfig:
    """Everything that decides a perception training run (``restora train perception`` flags).

    Examples:
        >>> PerceptionTrainConfig(out=Path("run"), steps=10, batch_size=4).steps
        10
        >>> PerceptionTrainConfig(out=Path("run"), clean_share=1.5)
        Traceback (most recent call last):
        ...
        ValueError: clean_share is a fraction of samples in [0, 1), got 1.5
    """

    out: Path = help_field("run folder: checkpoints, the final model, metrics and report")
    clean: list[Path] = help_field(
        "folders of clean photos (the training pool; default the shared data's clean/cbsd68 and clean/live1, "
        "never the benchmark's kodak24 / set5_hr)",
        default_factory=default_clean_pool,
    )
    arch: str = help_field("a torchvision classification architecture, random init (e.g. mobilenet_v3_small, resnet18)", default="mobilenet_v3_small")
    crop: int = help_field("training crop side, px (native resolution: crops are never resized)", default=128)
    batch_size: int = help_field("samples per step", default=32)
    steps: int = help_field("optimizer steps in all (a resumed run continues to this number)", default=4000)
    lr: float = help_field("peak learning rate (AdamW), reached after warmup, then cosine decay to 5% of it", default=2e-3)
    weight_decay: float = help_field("AdamW weight decay", default=1e-4)
    warmup: int = help_field("linear warmup steps", default=100)
    clean_share: float = help_field("share of samples left clean (the negatives)", default=0.3)
    hard_share: float = help_field(
        "share of samples whose picture is a hard negative (text, barcodes, fences, stripes, film grain, bokeh, night "
        "lights, starry and overcast skies, tiles: restora.synth.negatives), clean or degraded like any other",
        default=0.15,
    )
    max_degradations: int = help_field("most degradations combined in one sample", default=3)
    camera_share: float = help_field(
        "share of samples given a camera's own look first, clean or degraded alike: the softness of a native-resolution "
        "photo (a Gaussian lens/demosaic blur of sigma 0.4-1.3 px) and half the time in-camera sharpening. The pool is "
        "downscaled photos, much crisper per pixel than a phone's or camera's own pixels; without this every real photo "
        "reads as blurred",
        default=0.6,
    )
    camera_luma_nr_share: float = help_field(
        "share of the camera-noise samples given the camera's luminance noise reduction (restora.degrade's camera "
        "model with luma_nr: soft mottle instead of grain, as high-ISO camera JPEGs show; drawn from its own stream). "
        "The shipped network was trained without it (0) and reads real camera noise of cc_nam/polyu as clean: "
        "scripts/camera_noise_gap.py",
        default=0.0,
    )
    camera_mild_share: float = help_field(
        "share of the camera-noise samples whose severity is drawn from the mild end (uniform in 0..restora.trainer.common.MILD_SEVERITY, "
        "about 2-5 in 0-255, what a camera's own JPEG at high ISO shows) instead of 0..1 (drawn from its own stream). "
        "At uniform severities only about one camera-noise sample in seven is that mild; 0 keeps every draw as it was",
        default=0.0,
    )
    camera_dim_share: float = help_field(
        "share of the camera-noise samples made at low exposure: the sample's dark degradation (added at a uniform "
        "severity from its own stream where not drawn) dims the scene without its own white noise and the camera's "
        "noise comes after it, as a dim high-ISO camera JPEG shows it (blocky, faint in absolute terms); such a sample "
        "may hold one degradation more than max_degradations. 0 keeps every draw as it was",
        default=0.0,
    )
    dark_noise_label: bool = help_field(
        "label the dark degradation's own dim-light noise (shot and read noise, about 2.5 in 0-255) as noise too, with its "
        "measured std as the sigma, where nothing after it (blur, resampling, JPEG) smooths it away: "
        ":func:`dark_noise_label`. Without it (False) a dim noisy picture is taught as dark and not noisy, and the "
        "network reads dim high-ISO camera photos as noise-free",
        default=False,
    )
    max_false_alarm: float = help_field(
        "calibration: each degradation's threshold maximises F1 on the validation split among those that flag at most "
        "this share of the validation samples without it (a false alarm sends the agent to a tool; the F1 optimum alone "
        "flagged 22% of pictures without low resolution). Changing it on a finished run only recalibrates",
        default=0.05,
    )
    val_fraction: float = help_field("share of photos held out for validation (split by photo, seeded)", default=0.15)
    val_samples: int = help_field("synthesized validation samples (fixed by the seed)", default=512)
    eval_every: int = help_field("steps between validations (and the final one)", default=250)
    checkpoint_every: int = help_field("steps between checkpoints", default=250)
    workers: int = help_field("data-synthesis processes beside the training process (0: in the training process)", default=1)
    threads: int | None = help_field("torch threads for training (None: torch's default)", default=None)
    seed: int = help_field("seed of the split, the samples and the initial weights", default=0)
    init: Path | None = help_field(
        "start from these weights instead of random ones (a fine-tune): a perception model folder (a finished run's, "
        "or the shipped restora/perception/model) or its model.safetensors; same arch. The run's identity holds the "
        "weights' sha256, not the path",
        default=None,
    )

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.clean = [Path(p) for p in self.clean]
        if self.init is not None:
            self.init = Path(self.init)
            if self.init.is_dir():
                self.init = self.init / "model.safetensors"
            if not self.init.is_file():
                raise ValueError(f"init: no weights at {self.init} (a model folder or its model.safetensors)")
        checks = [
            (self.crop >= 32, f"crop must be at least 32 px, got {self.crop}"),
            (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (self.steps >= 1, f"steps must be >= 1, got {self.steps}"),
            (self.lr > 0, f"lr must be > 0, got {self.lr}"),
            (0.0 <= self.clean_share < 1.0, f"clean_share is a fraction of samples in [0, 1), got {self.clean_share}"),
            (0.0 <= self.hard_share <= 1.0, f"hard_share is a fraction of samples in [0, 1], got {self.hard_share}"),
            (0.0 <= self.camera_share <= 1.0, f"camera_share is a fraction of samples in [0, 1], got {self.camera_share}"),
            (0.0 <= self.camera_luma_nr_share <= 1.0, f"camera_luma_nr_share is a fraction in [0, 1], got {self.camera_luma_nr_share}"),
            (0.0 <= self.camera_mild_share <= 1.0, f"camera_mild_share is a fraction in [0, 1], got {self.camera_mild_share}"),
            (0.0 <= self.camera_dim_share <= 1.0, f"camera_dim_share is a fraction in [0, 1], got {self.camera_dim_share}"),
            (0.0 < self.max_false_alarm <= 1.0, f"max_false_alarm is a fraction of samples in (0, 1], got {self.max_false_alarm}"),
            (1 <= self.max_degradations <= len(DEGRADATIONS), f"max_degradations must be in 1..{len(DEGRADATIONS)}, got {self.max_degradations}"),
            (0.0 < self.val_fraction < 1.0, f"val_fraction must be in (0, 1), got {self.val_fraction}"),
            (self.val_samples >= 8, f"val_samples must be >= 8, got {self.val_samples}"),
            (self.eval_every >= 1 and self.checkpoint_every >= 1, "eval_every and checkpoint_every must be >= 1"),
            (self.workers >= 0, f"workers must be >= 0, got {self.workers}"),
        ]
        check_all(checks)

    def to_json(self) -> dict[str, Any]:
        return config_json(self)

    def identity(self) -> dict[str, Any]:
        """What must not change when a run is resumed (the sample stream and the network)."""
        d = self.to_json()
        for k in ("out", "steps", "eval_every", "checkpoint_every", "workers", "threads", "max_false_alarm"):
            d.pop(k)
        for k in ("camera_luma_nr_share", "camera_mild_share", "camera_dim_share", "dark_noise_label"):
            if not d[k]:  # added later: a run without it keeps the identity it had
                d.pop(k)
        if d["init"] is None:
            d.pop("init")
        else:
            d["init"] = "sha256:" + sha256_file(Path(d["init"]))
        return d


# -- the samples ------------------------------------------------------------------------------
def split_photos(photos: list[CleanImage], seed: int, val_fraction: float) -> tuple[list[CleanImage], list[CleanImage]]:
    """(train, val) photos: a seeded ``val_fraction`` of them held out (:func:`restora.cases.split_by_photo`)."""
    if len(photos) < 2:
        raise ValueError(f"perception training needs at least 2 photos (one held out for validation), got {len(photos)}")
    val = split_by_photo([p.name for p in photos], seed, val_fraction, salt="perception-split")
    return [p for p in photos if p.name not in val], [p for p in photos if p.name in val]


def _pick(rng: np.random.Generator, weighted: tuple[tuple[str, float], ...]) -> str:
    names = [n for n, _ in weighted]
    w = np.array([p for _, p in weighted], np.float64)
    return names[int(rng.choice(len(names), p=w / w.sum()))]


def sample_spec(seed: int, split: str, index: int, n_photos: int, cfg: PerceptionTrainConfig) -> dict[str, Any]:
    """What sample ``index`` of ``split`` is: photo, crop position, degradations and their draws."""
    rng = np.random.default_rng([int(seed), zlib.crc32(split.encode()), int(index)])
    spec: dict[str, Any] = {
        "photo": int(rng.integers(n_photos)),
        "where": [float(rng.random()), float(rng.random())],
        "degrade_seed": int(rng.integers(2**31)),
        "severities": {},
        "options": {},
        "hard": None,
    }
    if rng.random() < cfg.hard_share:
        from restora.synth.negatives import KINDS

        spec["hard"] = {"kind": KINDS[int(rng.integers(len(KINDS)))], "seed": int(rng.integers(2**31))}
    if rng.random() >= cfg.clean_share:
        k = int(rng.integers(1, cfg.max_degradations + 1))
        names = [DEGRADATIONS[i] for i in sorted(rng.choice(len(DEGRADATIONS), k, replace=False))]
        spec["severities"] = {n: float(rng.uniform(0.0, 1.0)) for n in names}
        noise_model, jpeg_model = _pick(rng, NOISE_MODELS), _pick(rng, JPEG_MODELS)
        if "noise" in names and noise_model != "gaussian":
            spec["options"]["noise"] = {"model": noise_model}
        if "jpeg" in names and jpeg_model != "plain":
            spec["options"]["jpeg"] = {"model": jpeg_model}
        motion_model = _pick(rng, MOTION_MODELS)  # drawn last: the earlier draws of a sample stay as they were
        if "motion_blur" in names and motion_model != "linear":
            spec["options"]["motion_blur"] = {"model": motion_model}
    def stream(k: int) -> np.random.Generator:  # a draw of its own: an option at 0 leaves every other draw as it was
        return np.random.default_rng([int(seed), zlib.crc32(split.encode()), int(index), k])

    noise_options = spec["options"].get("noise")
    camera_noise = noise_options is not None and noise_options.get("model") == "camera"
    # the camera's luminance noise reduction, its mild severities and its low exposure, each from its own stream
    if camera_noise and cfg.camera_luma_nr_share > 0 and stream(3).random() < cfg.camera_luma_nr_share:
        noise_options["luma_nr"] = True
    if camera_noise and cfg.camera_mild_share > 0:
        mild = stream(4)
        if mild.random() < cfg.camera_mild_share:
            spec["severities"]["noise"] = float(mild.uniform(0.0, MILD_SEVERITY))
    if camera_noise and cfg.camera_dim_share > 0:
        dim = stream(5)
        if dim.random() < cfg.camera_dim_share:
            spec["severities"].setdefault("dark", float(dim.uniform(0.0, 1.0)))
            spec["options"]["dark"] = {"noise": False}
    # the camera look (with camera_share 0 every other draw is as before)
    look = stream(2)
    spec["look"] = None
    if look.random() < cfg.camera_share:
        spec["look"] = draw_camera_look(look)
    return spec


def draw_camera_look(rng: np.random.Generator) -> dict[str, float]:
    """A camera's own look for :func:`camera_look`: Gaussian softness of sigma in
    :data:`CAMERA_PSF_SIGMA`, half the time in-camera sharpening (the guard trainer draws it too)."""
    sharpen = rng.random() < 0.5
    return {
        "psf_sigma": float(rng.uniform(*CAMERA_PSF_SIGMA)),
        "sharpen": float(rng.uniform(0.3, 1.0)) if sharpen else 0.0,
        "sharpen_sigma": float(rng.uniform(0.8, 1.5)),
    }


CAMERA_PSF_SIGMA: tuple[float, float] = (0.4, 1.3)
"""Gaussian sigma (px) of a camera's own softness at native resolution (lens, anti-aliasing
filter, demosaicking). Measured as the ratio of fine (sigma < 1) to medium (1..3) detail energy,
native-resolution crops of real camera photos (the shared data's polyu and cc_nam ground truths)
read 0.3-0.5 where the training pool's downscaled photos read about 0.95; a Gaussian of sigma
0.8-1.3 moves the pool there. The range's ends are round numbers, not fitted to those photos."""


def camera_look(image: np.ndarray, look: dict[str, float]) -> np.ndarray:
    """A camera's own rendering of a crisp picture: Gaussian softness, then optional unsharp masking."""
    import cv2

    out = cv2.GaussianBlur(image, (0, 0), look["psf_sigma"], borderType=cv2.BORDER_REFLECT_101)
    if look["sharpen"] > 0:
        low = cv2.GaussianBlur(out, (0, 0), look["sharpen_sigma"], borderType=cv2.BORDER_REFLECT_101)
        out = np.clip(out + look["sharpen"] * (out - low), 0.0, 1.0)
    return out


class SynthDataset:
    """Samples of one split, made on the fly (a map-style dataset: ``ds[i]`` is a pure function of
    ``(seed, split, i)``); photos are loaded once per process."""

    def __init__(self, photos: list[CleanImage], cfg: PerceptionTrainConfig, split: str) -> None:
        self.photos = list(photos)
        self.cfg = cfg
        self.split = split
        self._cache: dict[int, np.ndarray] = {}

    def photo(self, i: int) -> np.ndarray:
        if i not in self._cache:
            from restora.cases import load_clean

            self._cache[i] = load_clean(self.photos[i].path, 10**6)
        return self._cache[i]

    def image_and_labels(self, index: int) -> tuple[np.ndarray, dict[str, Any]]:
        from restora import degrade

        spec = sample_spec(self.cfg.seed, self.split, index, len(self.photos), self.cfg)
        photo = self.photo(spec["photo"])
        crop = _crop(photo, self.cfg.crop, spec["where"])
        if spec["hard"] is not None:  # a clean picture that naive perception mistakes for a degraded one
            from restora.synth.negatives import render

            crop = render(spec["hard"]["kind"], self.cfg.crop, spec["hard"]["seed"], photo=crop)
        if spec.get("look"):  # optics and the camera's processing come before what degrades the picture
            crop = camera_look(crop, spec["look"])
        labels: dict[str, Any] = {}
        if spec["severities"]:
            crop, labels = degrade.compose(
                crop, list(spec["severities"]), seed=spec["degrade_seed"], severities=spec["severities"], options=spec["options"] or None
            )
        if self.cfg.dark_noise_label:
            labels = dark_noise_label(labels)
        return quantize(crop), labels

    def __len__(self) -> int:  # effectively unbounded; samplers give the indices
        return 2**31 - 1

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        import torch

        image, labels = self.image_and_labels(int(index))
        presence, severity, measures, mask = targets(labels)
        x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        return x, torch.from_numpy(presence), torch.from_numpy(severity), torch.from_numpy(measures), torch.from_numpy(mask)


DARK_NOISE_SMOOTHED_BY: tuple[str, ...] = ("motion_blur", "defocus", "low_res", "jpeg")
"""Degradations formed after ``dark`` that blur, resample or quantise its faint noise away."""


def dark_noise_label(labels: dict[str, Any]) -> dict[str, Any]:
    """``labels`` with the dark degradation's own dim-light noise labelled as noise too (sigma: the
    std it added, 0-255; severity on the Gaussian model's scale, sigma = 5 + 45 x severity, so 0
    below 5), unless noise is labelled already or a degradation after it smooths it away
    (:data:`DARK_NOISE_SMOOTHED_BY`). A denoiser is what removes that noise, before or after a
    brightening.

    Examples:
        >>> dark = {"severity": 0.5, "gain": 0.35, "noise_sigma": 2.6}
        >>> dark_noise_label({"dark": dark})["noise"]
        {'severity': 0.0, 'model': 'dark', 'sigma': 2.6}
        >>> "noise" in dark_noise_label({"dark": dark, "jpeg": {"severity": 0.5, "quality": 35}})
        False
        >>> "noise" in dark_noise_label({"dark": {**dark, "noise": False, "noise_sigma": 0.0}})
        False
        >>> dark_noise_label({"haze": {"severity": 0.3}})
        {'haze': {'severity': 0.3}}
    """
    dark = labels.get("dark")
    if dark is None or "noise" in labels or any(d in labels for d in DARK_NOISE_SMOOTHED_BY) or not dark.get("noise_sigma"):
        return labels  # (a dark without its own noise, ``noise=False``, has none to label)
    sigma = float(dark["noise_sigma"])
    return {**labels, "noise": {"severity": round(max(0.0, (sigma - 5.0) / 45.0), 4), "model": "dark", "sigma": sigma}}


def _crop(image: np.ndarray, size: int, where: list[float]) -> np.ndarray:
    """:func:`restora.cases.crop_at`, a photo smaller than ``size`` padded by reflection first (rare)."""
    h, w = image.shape[:2]
    if h < size or w < size:
        import cv2

        image = cv2.copyMakeBorder(image, 0, max(0, size - h), 0, max(0, size - w), cv2.BORDER_REFLECT)
    return crop_at(image, size, where)


def targets(labels: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(presence, severity, normalised measures, measure mask) from :func:`restora.degrade.compose` labels."""
    presence = np.array([1.0 if d in labels else 0.0 for d in DEGRADATIONS], np.float32)
    severity = np.array([float(labels[d]["severity"]) if d in labels else 0.0 for d in DEGRADATIONS], np.float32)
    measures = np.zeros(len(MEASURES), np.float32)
    mask = np.zeros(len(MEASURES), np.float32)
    for i, (deg, key, lo, hi) in enumerate(MEASURES.values()):
        if deg in labels and key in labels[deg]:
            measures[i] = np.clip((float(labels[deg][key]) - lo) / (hi - lo), 0.0, 1.0)
            mask[i] = 1.0
    return presence, severity, measures, mask


def loss_fn(out, presence, severity, measures, mask) -> tuple[Any, dict[str, float]]:
    """BCE on presence + L1 on severity where present + L1 on measures where known."""
    import torch
    import torch.nn.functional as F

    logits, sev, meas = split_outputs(out)
    bce = F.binary_cross_entropy_with_logits(logits, presence)
    sev_l1 = (torch.abs(sev - severity) * presence).sum() / presence.sum().clamp(min=1.0)
    meas_l1 = (torch.abs(meas - measures) * mask).sum() / mask.sum().clamp(min=1.0)
    total = bce + sev_l1 + meas_l1
    parts = {"loss": total, "bce": bce, "severity_l1": sev_l1, "measures_l1": meas_l1}
    return total, {k: float(v.detach()) for k, v in parts.items()}


# -- validation ---------------------------------------------------------------------------------
def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney, ties counted half); None without both classes.

    Examples:
        >>> roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
        0.75
    """
    from scipy.stats import rankdata

    pos, neg = int(labels.sum()), int(len(labels) - labels.sum())
    if pos == 0 or neg == 0:
        return None
    ranks = rankdata(scores)
    return float((ranks[labels == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def f1_at(scores: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    pred = scores >= threshold
    tp = float((pred & (labels == 1)).sum())
    fp = float((pred & (labels == 0)).sum())
    fn = float((~pred & (labels == 1)).sum())
    return 2 * tp / (2 * tp + fp + fn) if tp > 0 else 0.0


def false_alarm_at(scores: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    """Share of the negatives (label 0) flagged at ``threshold``."""
    neg = labels == 0
    return float((scores[neg] >= threshold).mean()) if neg.any() else 0.0


def best_threshold(scores: np.ndarray, labels: np.ndarray, max_false_alarm: float = 1.0) -> tuple[float, float]:
    """(threshold, F1) maximising F1 over the candidate thresholds 0.05 .. 0.95 that flag at most
    ``max_false_alarm`` of the negatives (the highest candidate when none does).

    Examples:
        >>> s, y = np.array([0.1, 0.3, 0.35, 0.6, 0.7, 0.9]), np.array([0, 0, 1, 0, 1, 1])
        >>> best_threshold(s, y)
        (0.31, 0.8571428571428571)
        >>> best_threshold(s, y, max_false_alarm=0.0)
        (0.61, 0.8)
    """
    candidates = [round(float(t), 2) for t in np.arange(0.05, 0.951, 0.01)]
    allowed = [t for t in candidates if false_alarm_at(scores, labels, t) <= max_false_alarm + 1e-9] or [candidates[-1]]
    best = (allowed[0], f1_at(scores, labels, allowed[0]))
    for t in allowed[1:]:
        f = f1_at(scores, labels, t)
        if f > best[1] + 1e-9:
            best = (t, f)
    return best


def evaluate(model, batches: list[tuple[Any, ...]], max_false_alarm: float = 1.0) -> dict[str, Any]:
    """Validation figures of ``model`` on precomputed batches; thresholds as :func:`best_threshold`."""
    import torch

    model.eval()
    probs, sevs, meas, P, S, M, K = [], [], [], [], [], [], []
    with torch.inference_mode():
        for x, presence, severity, measures, mask in batches:
            logits, sev, me = split_outputs(model(normalize_input(x)))
            probs.append(torch.sigmoid(logits).numpy())
            sevs.append(sev.numpy())
            meas.append(me.numpy())
            P.append(presence.numpy())
            S.append(severity.numpy())
            M.append(measures.numpy())
            K.append(mask.numpy())
    model.train()
    prob, sev, me = np.concatenate(probs), np.concatenate(sevs), np.concatenate(meas)
    pres, sev_t, me_t, mask = np.concatenate(P), np.concatenate(S), np.concatenate(M), np.concatenate(K)
    per: dict[str, Any] = {}
    for j, d in enumerate(DEGRADATIONS):
        lab = pres[:, j].astype(np.int64)
        t, f1_best = best_threshold(prob[:, j], lab, max_false_alarm)
        present = lab == 1
        per[d] = {
            "auc": _round(roc_auc(prob[:, j], lab)),
            "f1": round(f1_at(prob[:, j], lab, 0.5), 4),
            "threshold": t,
            "f1_at_threshold": round(f1_best, 4),
            "false_alarm_at_threshold": round(false_alarm_at(prob[:, j], lab, t), 4),
            "severity_mae": _round(float(np.abs(sev[present, j] - sev_t[present, j]).mean()) if present.any() else None),
            "positives": int(present.sum()),
        }
    measures: dict[str, Any] = {}
    for i, (name, (_, _, lo, hi)) in enumerate(MEASURES.items()):
        known = mask[:, i] > 0
        err = np.abs(me[known, i] - me_t[known, i]) * (hi - lo)
        measures[name] = {"mae": _round(float(err.mean()) if known.any() else None), "n": int(known.sum())}
    clean = pres.sum(axis=1) == 0
    thresholds = np.array([per[d]["threshold"] for d in DEGRADATIONS])
    aucs = [v["auc"] for v in per.values() if v["auc"] is not None]
    return {
        "mean_auc": _round(float(np.mean(aucs)) if aucs else None),
        "mean_f1": round(float(np.mean([v["f1_at_threshold"] for v in per.values()])), 4),
        "max_false_alarm": max_false_alarm,
        "clean_read_clean": _round(float((prob[clean] < thresholds).all(axis=1).mean()) if clean.any() else None),
        "samples": int(len(pres)),
        "degradations": per,
        "measures": measures,
    }


def _round(v: float | None, digits: int = 4) -> float | None:
    return None if v is None or not math.isfinite(v) else round(float(v), digits)


# -- training ------------------------------------------------------------------------------------
def train_perception(
    cfg: PerceptionTrainConfig,
    *,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
    on_eval: Callable[[int, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train (or resume) a perception network as ``cfg`` says; return the final metrics.

    A run folder holding a checkpoint of the same configuration (``cfg.identity()``) is resumed
    from it; one holding another configuration is an error (use another ``out``).
    """
    import torch
    from safetensors.torch import load_file, save_file
    from torch.utils.data import DataLoader

    if cfg.threads is not None:
        torch.set_num_threads(int(cfg.threads))
    photos = clean_images(cfg.clean)
    train_photos, val_photos = split_photos(photos, cfg.seed, cfg.val_fraction)
    if not train_photos:
        raise ValueError(f"no training photos left after holding out validation ({len(photos)} photos in all)")
    out = cfg.out
    ckpt = out / "checkpoint"
    out.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(cfg.seed)
    model = build_model(cfg.arch)
    if cfg.init is not None:
        try:
            model.load_state_dict(load_file(str(cfg.init)))
        except RuntimeError as e:
            raise ValueError(f"init: {cfg.init} does not hold {cfg.arch} perception weights ({str(e).splitlines()[0]})") from e
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    def lr_at(step: int) -> float:
        if step < cfg.warmup:
            return (step + 1) / cfg.warmup
        t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    start = 0
    history: list[dict[str, Any]] = []
    if (ckpt / "state.pt").is_file():
        saved = json.loads((ckpt / "config.json").read_text())
        if saved != cfg.identity():
            diff = sorted(k for k in set(saved) | set(cfg.identity()) if saved.get(k) != cfg.identity().get(k))
            raise ValueError(f"{out} holds a run with other settings ({', '.join(diff)}); use another --out or the same settings")
        model.load_state_dict(load_file(str(ckpt / "model.safetensors")))
        state = torch.load(ckpt / "state.pt", weights_only=True)
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        start = int(state["step"])
        history = _read_history(out / "history.jsonl", upto=start)
    if start >= cfg.steps and (out / "metrics.json").is_file():
        done = json.loads((out / "metrics.json").read_text())
        if done["val"].get("max_false_alarm", 1.0) == cfg.max_false_alarm:
            return done
        # a finished run asked for another calibration: no step is taken, the final weights are
        # validated again and the thresholds, model.json, metrics and report rewritten

    val = SynthDataset(val_photos, cfg, "val")
    # the loaders draw their seeds from their own generators, not from torch's global one, which
    # drives dropout: so a resumed run's random stream is exactly the uninterrupted run's
    val_batches = list(DataLoader(_Indexed(val, range(cfg.val_samples)), batch_size=64, num_workers=0, generator=torch.Generator().manual_seed(cfg.seed)))
    train = SynthDataset(train_photos, cfg, "train")
    indices = range(start * cfg.batch_size, cfg.steps * cfg.batch_size)
    loader = DataLoader(
        _Indexed(train, indices),
        batch_size=cfg.batch_size,
        num_workers=cfg.workers,
        worker_init_fn=_worker_init if cfg.workers else None,
        persistent_workers=False,
        prefetch_factor=4 if cfg.workers else None,
        generator=torch.Generator().manual_seed(cfg.seed),
    )
    if start:
        torch.set_rng_state(state["torch_rng"])
    model.train()
    evals: list[dict[str, Any]] = []
    metrics: dict[str, Any] = {}
    t0 = time.perf_counter()
    step = start
    for x, presence, severity, measures, mask in loader:
        out_t = model(normalize_input(x))
        loss, parts = loss_fn(out_t, presence, severity, measures, mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        step += 1
        row = {"step": step, "lr": round(sched.get_last_lr()[0], 8), **{k: round(v, 5) for k, v in parts.items()}}
        history.append(row)
        _append(out / "history.jsonl", row)
        if on_step is not None:
            on_step(step, row)
        last = step == cfg.steps
        if step % cfg.eval_every == 0 or last:
            metrics = evaluate(model, val_batches, cfg.max_false_alarm)
            evals.append({"step": step, "mean_auc": metrics["mean_auc"], "mean_f1": metrics["mean_f1"]})
            if on_eval is not None:
                on_eval(step, metrics)
        if step % cfg.checkpoint_every == 0 or last:
            _checkpoint(ckpt, model, opt, sched, step, cfg, save_file)
    seconds = time.perf_counter() - t0
    if not metrics:
        metrics = evaluate(model, val_batches, cfg.max_false_alarm)
    result = {
        "config": cfg.to_json(),
        "steps": cfg.steps,
        "resumed_from": start,
        "seconds_this_run": round(seconds, 1),
        "photos": {"train": [p.name for p in train_photos], "val": [p.name for p in val_photos]},
        "val": metrics,
        "evals": _merge_evals(out / "metrics.json", evals),
    }
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / "model.safetensors"))
    write_text_atomic(out / "model.json", json.dumps(model_card(cfg, metrics), indent=1) + "\n")
    write_text_atomic(out / "metrics.json", json.dumps(result, indent=1) + "\n")
    from restora.trainer.report import perception_report

    perception_report(out, result, history, examples(model, val, metrics))
    return result


def examples(model, val: SynthDataset, metrics: dict[str, Any], n: int = 16) -> list[tuple[np.ndarray, list[str]]]:
    """The first ``n`` validation samples with what they hold and what the model says."""
    import torch

    thresholds = np.array([metrics["degradations"][d]["threshold"] for d in DEGRADATIONS])
    out = []
    model.eval()
    with torch.inference_mode():
        for i in range(n):
            image, labels = val.image_and_labels(i)
            x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]
            logits, sev, _ = split_outputs(model(normalize_input(x)))
            prob = torch.sigmoid(logits)[0].numpy()
            truth = ", ".join(f"{d} {labels[d]['severity']:.1f}" for d in DEGRADATIONS if d in labels) or "clean"
            found = [j for j in range(len(DEGRADATIONS)) if prob[j] >= thresholds[j]]
            pred = ", ".join(f"{DEGRADATIONS[j]} {float(sev[0, j]):.1f}" for j in found) or "clean"
            out.append((image, [f"true: {truth}", f"said: {pred}"]))
    model.train()
    return out


class _Indexed:
    """A dataset over given indices of another (so a sampler-free DataLoader walks them in order)."""

    def __init__(self, ds: SynthDataset, indices: range) -> None:
        self.ds, self.indices = ds, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        return self.ds[self.indices[i]]


def _worker_init(_: int) -> None:
    from restora.batch.workers import worker_init

    worker_init()  # one thread per library, as every restora worker process


def _checkpoint(ckpt: Path, model, opt, sched, step: int, cfg: PerceptionTrainConfig, save_file) -> None:
    """Write the checkpoint through a temporary folder and a rename: never half a checkpoint."""
    import shutil
    import tempfile

    import torch

    ckpt.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".checkpoint-", dir=ckpt.parent))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp / "model.safetensors"))
    torch.save(
        {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "torch_rng": torch.get_rng_state(), "step": step},
        tmp / "state.pt",
    )
    (tmp / "config.json").write_text(json.dumps(cfg.identity(), indent=1) + "\n")
    old = ckpt.with_name(ckpt.name + ".old")
    if ckpt.exists():
        ckpt.rename(old)
    tmp.rename(ckpt)
    shutil.rmtree(old, ignore_errors=True)


def _append(path: Path, row: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")


def _read_history(path: Path, upto: int) -> list[dict[str, Any]]:
    """The logged rows up to step ``upto`` (rows after the checkpoint, from a killed run, are dropped)."""
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r["step"] <= upto]
    write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in rows))
    return rows


def _merge_evals(path: Path, new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    old = json.loads(path.read_text()).get("evals", []) if path.is_file() else []
    steps = {e["step"] for e in new}
    return sorted([e for e in old if e["step"] not in steps] + new, key=lambda e: e["step"])


def model_card(cfg: PerceptionTrainConfig, metrics: dict[str, Any]) -> dict[str, Any]:
    """How to use the weights: architecture, outputs, input normalisation, calibrated thresholds."""
    return {
        "kind": "restora-perception",
        "version": 1,
        "arch": cfg.arch,
        "crop": cfg.crop,
        "input": "float32 RGB in [0, 1], minus 0.5, NCHW, at native resolution",
        "outputs": {
            "presence_logits": list(DEGRADATIONS),
            "severity_sigmoid": list(DEGRADATIONS),
            "measures_sigmoid": {k: {"low": v[2], "high": v[3]} for k, v in MEASURES.items()},
        },
        "thresholds": {d: metrics["degradations"][d]["threshold"] for d in DEGRADATIONS},
        "calibration": (
            f"each threshold maximises F1 on the synthesized validation split (photos never trained on) among those "
            f"that flag at most {cfg.max_false_alarm:g} of its samples without that degradation"
        ),
        "val": {"mean_auc": metrics["mean_auc"], "mean_f1": metrics["mean_f1"], "clean_read_clean": metrics["clean_read_clean"]},
        "config": cfg.identity(),
    }
