"""``restora train guard``: fit the no-harm guard (:mod:`restora.quality.guard`) on steps restora
synthesizes and runs itself.

Each sample is a pure function of ``(seed, split, family, index)``: a native-resolution crop of a
clean photo from the split (split by source photo, seeded), sometimes turned into a hard negative
(:mod:`restora.synth.negatives`: text, barcodes, fences, tiles, stripes, ...), sometimes
(``context_share``) given another degradation that forms before the family's own (a dark or
hazy scene under the JPEG, blur under the noise: what the agent meets in the middle of a
pipeline; a picture left without the family's own may get any other one), then either degraded with the family's own degradation at a uniform severity (derain and denoise: sometimes followed by one that forms later, ``FAMILIES``' later_share; noise:
Gaussian, Poisson-Gaussian or camera-pipeline; JPEG: plain or web; blur: straight motion,
camera shake or defocus; rain; low resolution) or left as it is, as perception's false alarms
leave it. The agent's perception (``--perception``, the shipped network by default) reads it; every available tool of the family runs with the
parameters the heuristic planner would give it (for deblurring both kinds on either blur:
perception mistakes one for the other); the row keeps the guard's measures and the PSNR change
against the reference: the clean picture, with the context degradation when there is one (a
step is judged on removing its own degradation, not everything). A step that lowered PSNR
by more than ``margin`` dB is harm; one that raised it by more than ``margin`` is help; the rest
is neither and is left out.

Per family a logistic model (standardised measures, L2, weighted by how much the step changed
PSNR, capped) is fitted on the training photos' rows. The threshold is set on the validation
photos' rows, by one of two rules: ``utility`` (the default) keeps the threshold under which the
kept validation steps change PSNR most on average (each step's change clipped to
+-``utility_clip`` dB: a step that ruins a picture counts as ruining it, however many dB that is;
ties go to the higher threshold, which rejects fewer steps); ``false_reject`` takes the highest
harm probability that still keeps ``1 - max_false_reject`` of the helpful steps. Never fitted or
set on benchmark photos.

Synthesizing is the slow part (about 50 minutes for the shipped fit); ``rows.jsonl`` is stamped
per family with the settings that decide its rows (``rows.config.json``); a rerun into the same
folder synthesizes only the families whose settings changed and refits all of them.

Writes, in ``out``: ``rows.jsonl`` (every step), ``guard.json`` (the models, the command, the
figures; what ships as ``restora/quality/guard.json``), ``metrics.json``, ``report.md`` and
``rejected.png`` (validation steps the guard would reject, before and after).

Examples:
    >>> from restora.trainer.guard import GuardTrainConfig, train_guard
    >>> result = train_guard(GuardTrainConfig(out=Path("out/guard")))     # doctest: +SKIP
    >>> result["families"]["derain"]["val_auc"]                            # doctest: +SKIP
    0.97
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
from restora.imageio import write_text_atomic
from restora.perception import BACKENDS
from restora.quality.guard import DIM_SUFFIX, FEATURES, residual_features
from restora.taxonomy import FORMATION_ORDER
from restora.trainer.common import MILD_SEVERITY, check_all, config_json, default_clean_pool

LOOK_SHARES: tuple[str, ...] = ("camera_share", "mild_share", "luma_nr_share")
"""The config's shares of pictures given a camera's look, a mild severity, the luminance noise
reduction: each in [0, 1], and left out of the rows' stamp at 0 (the rows are then the plain ones)."""

FAMILIES: dict[str, dict[str, Any]] = {
    "denoise": {"tasks": ["denoise"], "degradations": [("noise", {"model": "gaussian"}), ("noise", {"model": "poisson_gaussian"}), ("noise", {"model": "camera"})], "later_share": 0.4, "sample_scale": 3},
    "derain": {"tasks": ["derain"], "degradations": [("rain", {})], "later_share": 0.4, "sample_scale": 5},
    "dejpeg": {"tasks": ["dejpeg"], "degradations": [("jpeg", {}), ("jpeg", {"model": "web"})]},
    "deblur": {
        "tasks": ["motion_deblur", "defocus_deblur"],
        "degradations": [("motion_blur", {}), ("motion_blur", {"model": "shake"}), ("defocus", {})],
        "suggestions": 3,
    },
    "super_resolution": {"tasks": ["super_resolution"], "degradations": [("low_res", {})]},
}
"""Guard family -> its tasks, the degradations its tools are meant to undo, and options:

* ``suggestions``: how many of each tool's suggested parameter sets run on a sample (default 1;
  the deblurs are cheap and the agent retries them with their other suggestions after a rollback).
* ``later_share``: the share of degraded pictures whose own degradation is followed by one that
  forms after it, on the reference too (default 0). The agent often derains while a downscale,
  noise or JPEG it could not undo is still there, and denoises a picture whose noise was then
  downscaled or JPEG-compressed (the noise is no longer white).
* ``sample_scale``: how many times ``samples`` pictures the family gets (default 1). Derain's one
  classical tool is cheap and its fit from 320 plain pictures was noisy. On 1600-picture
  validation rows, the fit from 1600 pictures with later_share 0.4 gains +2.18 dB per step on
  average on plain rain (the 320 one: +2.04), and +1.07 on rain under a later degradation (+0.67).
  Denoise: on the validation rows of 960 pictures with later_share 0.4, the fit from them (its
  threshold set on them too) gains +3.46 dB per step (the plain 320-picture fit: +3.28), +2.29 on
  noise under a later downscale or JPEG (+1.54) and +3.89 on the rest (+3.93; the worst step it
  keeps there -1.3 dB, against -13.1).

Motion blur comes as straight lines and as hand-held camera shake."""

FORMATION = [str(d) for d in FORMATION_ORDER]
"""Degradations in the order they form: a picture's context is one that forms before its family's own."""


@dataclass
class GuardTrainConfig:
    """Everything that decides a guard fit (``restora train guard`` flags).

    Examples:
        >>> GuardTrainConfig(out=Path("g"), samples=40).samples
        40
        >>> GuardTrainConfig(out=Path("g"), families=["dehaze"])
        Traceback (most recent call last):
        ...
        ValueError: unknown guard families ['dehaze'] (known: deblur, dejpeg, denoise, derain, super_resolution)
    """

    out: Path = help_field("run folder: rows.jsonl, guard.json, metrics.json, report.md, rejected.png")
    clean: list[Path] = help_field(
        "folders of clean photos (default the shared data's clean/cbsd68 and clean/live1, never the benchmark's photos)",
        default_factory=default_clean_pool,
    )
    families: list[str] = help_field("guard families to fit", default_factory=lambda: list(FAMILIES))
    keep_from: Path | None = help_field(
        "a guard.json whose families this run does not fit are copied into the run's guard.json as they are "
        "(with their validation figures and the command that fitted them); None: only the fitted families",
        default=None,
    )
    samples: int = help_field("synthesized pictures per family (each runs every tool of the family; a family's sample_scale in FAMILIES multiplies it)", default=240)
    crop: int = help_field("crop side, px (native resolution)", default=192)
    perception: str = help_field(
        "perception that reads each picture, as the agent would (learned, classical or a run folder of `restora train perception`)",
        default="learned",
    )
    degraded_share: float = help_field("share of pictures given the family's degradation (the rest: perception's false alarms)", default=0.6)
    hard_share: float = help_field("share of pictures that are hard negatives (text, barcodes, fences, tiles, ...)", default=0.35)
    context_share: float = help_field(
        "share of pictures that also carry another degradation formed before the family's own (dark, haze, blur, ...); "
        "the reference then carries it too",
        default=0.5,
    )
    val_fraction: float = help_field("share of photos held out to set the thresholds (split by photo, seeded)", default=0.25)
    margin: float = help_field("dB: a PSNR change beyond +-margin is help or harm; within, neither (left out)", default=0.1)
    threshold_rule: str = help_field(
        "how each family's threshold is set on the validation steps: utility (most PSNR gained on average) or false_reject",
        default="utility",
    )
    utility_clip: float = help_field("dB: each step's PSNR change is clipped to +-this in the utility rule", default=10.0)
    max_false_reject: float = help_field("share of helpful validation steps the threshold may reject (false_reject rule)", default=0.05)
    vouch_p: float = help_field(
        "harm probability at or under which a reliable family vouches for a step (the agent keeps it though the NR score fell)",
        default=0.1,
    )
    vouch_max_harm: float = help_field(
        "a family vouches only if at most this share of its validation steps under vouch_p were harmful ...", default=0.05
    )
    vouch_min_steps: int = help_field("... and at least this many validation steps fall under vouch_p", default=30)
    vouch_scan: bool = help_field(
        "calibrate each family's vouch level on its validation steps: the largest level from vouch_p up to the family's "
        "threshold (in steps of VOUCH_SCAN_STEP) under which the steps still meet vouch_max_harm and vouch_min_steps "
        "(off: vouch_p itself, or never)",
        default=False,
    )
    camera_share: float = help_field(
        "share of pictures given a camera's own look first, on the reference too (the perception trainer's: Gaussian "
        "softness of sigma 0.4-1.3 px, half the time in-camera sharpening). The pool is downscaled photos, crisper per "
        "pixel than a camera's own: on them a denoiser that takes out faint noise takes out as much detail (SRMD at the "
        "noise's sigma loses 0.5 dB on average on mild camera noise over 10 cbsd68 crops, and gains 1.5 dB on the same "
        "crops given the camera's softness). 0: the shipped fit",
        default=0.0,
    )
    mild_share: float = help_field(
        "share of degraded pictures whose severity is drawn from 0..MILD_SEVERITY (0.15) instead of 0.05..1: the faint "
        "degradation (a camera's own high-ISO noise) the guard must tell from faint detail. 0: the shipped fit",
        default=0.0,
    )
    luma_nr_share: float = help_field(
        "share of camera-noise pictures given the camera's luminance noise reduction (soft mottle, as high-ISO camera "
        "JPEGs show: restora.degrade's luma_nr). 0: the shipped fit",
        default=0.0,
    )
    view_families: list[str] = help_field(
        "families whose steps are measured as a person views a dim picture, brightened by its view_gain "
        "(restora.perception.measures); the model records it (view) and the guard measures that way. "
        "Empty: the shipped fit",
        default_factory=list,
    )
    dim_dark_context: bool = help_field(
        "give the denoise family's dark context the dimming alone (degrade's dark with noise=False): the dim "
        "exposure's own noise is the family's to remove, not part of the reference. Off: the shipped fit",
        default=False,
    )
    view_dim_only: bool = help_field(
        "write each view family as '<family>@dim': it judges only dim pictures (view_gain above 1), the family "
        "kept from --keep-from judges the rest; the figures add its validation steps on dim pictures, beside the "
        "kept family's verdicts on them measured as they are. Needs --keep-from and --view-families",
        default=False,
    )
    l2: float = help_field("L2 penalty of the logistic fit (on standardised measures)", default=1.0)
    workers: int = help_field("processes synthesizing and running tools", default=2)
    seed: int = help_field("seed of the split and the samples", default=0)

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.clean = [Path(p) for p in self.clean]
        self.keep_from = None if self.keep_from is None else Path(self.keep_from)
        unknown = sorted((set(self.families) | set(self.view_families)) - set(FAMILIES))
        if unknown:
            raise ValueError(f"unknown guard families {unknown} (known: {', '.join(sorted(FAMILIES))})")
        checks = [
            (self.samples >= 8, f"samples must be >= 8, got {self.samples}"),
            (self.crop >= 64, f"crop must be at least 64 px, got {self.crop}"),
            (0.0 <= self.degraded_share <= 1.0, f"degraded_share must be in [0, 1], got {self.degraded_share}"),
            (0.0 <= self.hard_share <= 1.0, f"hard_share must be in [0, 1], got {self.hard_share}"),
            (0.0 <= self.context_share <= 1.0, f"context_share must be in [0, 1], got {self.context_share}"),
            *[(0.0 <= getattr(self, k) <= 1.0, f"{k} must be in [0, 1], got {getattr(self, k)}") for k in LOOK_SHARES],
            (0.0 < self.val_fraction < 1.0, f"val_fraction must be in (0, 1), got {self.val_fraction}"),
            (self.margin >= 0.0, f"margin must be >= 0, got {self.margin}"),
            (0.0 < self.max_false_reject < 1.0, f"max_false_reject must be in (0, 1), got {self.max_false_reject}"),
            (self.threshold_rule in THRESHOLD_RULES, f"threshold_rule must be one of {', '.join(THRESHOLD_RULES)}, got {self.threshold_rule!r}"),
            (self.utility_clip > 0.0, f"utility_clip must be > 0, got {self.utility_clip}"),
            (0.0 < self.vouch_p < 1.0, f"vouch_p must be in (0, 1), got {self.vouch_p}"),
            (0.0 <= self.vouch_max_harm < 1.0, f"vouch_max_harm must be in [0, 1), got {self.vouch_max_harm}"),
            (self.vouch_min_steps >= 1, f"vouch_min_steps must be >= 1, got {self.vouch_min_steps}"),
            (self.workers >= 1, f"workers must be >= 1, got {self.workers}"),
            (self.keep_from is None or self.keep_from.is_file(), f"keep_from: no guard file at {self.keep_from}"),
            (
                not self.view_dim_only or (self.keep_from is not None and bool(self.view_families)),
                "view_dim_only needs keep_from (the family for the pictures that are not dim) and view_families",
            ),
            (
                self.perception in BACKENDS or Path(self.perception).is_dir(),
                f"perception must be learned, classical or a run folder of `restora train perception`, got {self.perception!r}",
            ),
        ]
        check_all(checks)
        if self.keep_from is not None:  # before any picture is synthesized, not after
            read_guard_file(self.keep_from)

    def to_json(self) -> dict[str, Any]:
        return config_json(self)

    def rows_stamp(self) -> dict[str, dict[str, Any]]:
        """Per family, the settings that decide its rows in ``rows.jsonl``: the sampling settings
        (not the fit's: rule, L2, margin; not where or how fast) and the family's degradations."""
        fit_only = (
            "out", "workers", "threshold_rule", "utility_clip", "max_false_reject", "l2", "margin", "families",
            "vouch_p", "vouch_max_harm", "vouch_min_steps", "vouch_scan", "keep_from", "view_dim_only",
        )
        common = {k: v for k, v in self.to_json().items() if k not in fit_only}
        for k in (*LOOK_SHARES, "view_families", "dim_dark_context"):  # added later: off, the rows are the plain ones
            if not common[k]:
                common.pop(k)
        stamps = {}
        for f in self.families:
            stamp = {**common, **json.loads(json.dumps(FAMILIES[f]))}
            stamp.pop("view_families", None)
            if f in self.view_families:
                stamp["view"] = True
            if f != "denoise":
                stamp.pop("dim_dark_context", None)
            stamps[f] = stamp
        return stamps


THRESHOLD_RULES = ("utility", "false_reject")


# -- synthesizing steps ------------------------------------------------------------------------
PSNR_CAP = 50.0
"""dB: PSNR is capped here, so a step on a clean picture (infinite PSNR before) counts the damage
it did down from 50 dB (changes above it are invisible)."""


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return PSNR_CAP if mse <= 10 ** (-PSNR_CAP / 10) else 10.0 * math.log10(1.0 / mse)


def sample_steps(
    photo_path: str, photo_name: str, split: str, family: str, index: int, cfg: dict[str, Any]
) -> dict[str, Any]:
    """One synthesized picture of ``family`` and every tool of the family run on it (a worker job).

    Returns ``{"rows": [...], "example": (before, after) of the worst step}``; pure function of its
    arguments.
    """
    from restora import degrade
    from restora.batch.workers import process_tools
    from restora.imageio import load_image
    from restora.perception import backend
    from restora.perception.measures import view_gain
    from restora.synth import negatives
    from restora.taxonomy import DEGRADATION_FOR, Task

    box, _ = process_tools()
    code = zlib.crc32(f"{photo_name}|{split}|{family}".encode())
    rng = np.random.default_rng([int(cfg["seed"]) & 0xFFFFFFFF, code, index])
    photo = load_image(photo_path).pixels
    clean = crop_at(photo, int(cfg["crop"]), rng.random(2).tolist())
    scene = "photo"
    if rng.random() < cfg["hard_share"]:
        scene, clean = negatives.render_random(clean.shape[0], seed=int(rng.integers(2**31)), photo=clean)
    spec = FAMILIES[family]
    degraded = rng.random() < cfg["degraded_share"]
    name, kwargs = spec["degradations"][int(rng.integers(len(spec["degradations"])))] if degraded else (None, {})
    # the camera's own look, the mild severities and the luminance noise reduction from their own stream:
    # shares 0 give the plain rows
    vrng = np.random.default_rng([int(cfg["seed"]) & 0xFFFFFFFF, code, index, 3])
    look_sigma = None
    if vrng.random() < float(cfg.get("camera_share", 0.0)):
        from restora.trainer.perception import camera_look, draw_camera_look

        look = draw_camera_look(vrng)
        clean = camera_look(clean, look)
        look_sigma = round(look["psf_sigma"], 3)
    mild = vrng.random() < float(cfg.get("mild_share", 0.0))
    if name == "noise" and kwargs.get("model") == "camera" and vrng.random() < float(cfg.get("luma_nr_share", 0.0)):
        kwargs = {**kwargs, "luma_nr": True}
    # context: another degradation that formed earlier (a dark or hazy scene under the JPEG, blur
    # under the noise; on a picture left without the family's own, any other one), drawn from its own stream so that context_share 0 gives the plain rows.
    # It is part of the reference: a step is judged on removing its own degradation, not the rest.
    crng = np.random.default_rng([int(cfg["seed"]) & 0xFFFFFFFF, code, index, 1])
    own = {d for d, _ in spec["degradations"]}
    stop = FORMATION.index(name) if name is not None else len(FORMATION)
    options = [d for d in FORMATION[:stop] if d not in own]
    context = ""
    if options and crng.random() < float(cfg["context_share"]):
        ctx_name = options[int(crng.integers(len(options)))]
        ctx_sev = float(crng.uniform(0.1, 0.9))
        ctx_kwargs = {"noise": False} if ctx_name == "dark" and family == "denoise" and cfg.get("dim_dark_context") else {}
        clean = degrade.apply(clean, ctx_name, ctx_sev, seed=int(crng.integers(2**31)), **ctx_kwargs)
        context = f"{ctx_name}@{ctx_sev:.2f} + "
    if degraded:
        severity = float(rng.uniform(0.05, 1.0))
        if mild:
            severity = float(vrng.uniform(0.0, MILD_SEVERITY))
        before = degrade.apply(clean, name, severity, seed=int(rng.integers(2**31)), **kwargs)
        condition = f"{context}{name}{'/' + kwargs['model'] if 'model' in kwargs else ''}{'+luma_nr' if kwargs.get('luma_nr') else ''}@{severity:.2f}"
        # later: one that forms after the family's own (rain under a downscale or noise), on the
        # picture and the reference alike (same seed), from its own stream: later_share 0 gives the plain rows
        lrng = np.random.default_rng([int(cfg["seed"]) & 0xFFFFFFFF, code, index, 2])
        later = [d for d in FORMATION[FORMATION.index(name) + 1 :] if d not in own]
        if later and lrng.random() < float(spec.get("later_share", 0.0)):
            l_name, l_sev, l_seed = later[int(lrng.integers(len(later)))], float(lrng.uniform(0.1, 0.9)), int(lrng.integers(2**31))
            clean = degrade.apply(clean, l_name, l_sev, seed=l_seed)
            before = degrade.apply(before, l_name, l_sev, seed=l_seed)
            condition += f" + {l_name}@{l_sev:.2f}"
    else:
        before, condition = clean, f"{context}clean"
    # the perception the agent plans with picks the parameters, so the guard learns the steps it will judge
    report = backend(cfg["perception"])(before)
    tasks = spec["tasks"]  # every task of the family: a defocus deblur on motion blur is a real mistake too
    rows, worst = [], None
    base = _psnr(before, clean)
    gain = view_gain(before) if family in cfg.get("view_families", ()) else 1.0
    for task in tasks:
        finding = report.findings.get(DEGRADATION_FOR[Task(task)].value)
        sev = float(finding.severity) if finding is not None and finding.present else 0.5
        evidence = dict(finding.evidence) if finding is not None else {}
        for tool_name, cls in sorted(box.catalogue().items()):
            if cls.multi_task() or str(cls.task) != task:
                continue
            # the first suggestion is the agent's first try; after a rollback it tries the others
            suggestions = cls.suggest_params_for(task, sev, evidence)[: int(spec.get("suggestions", 1))]
            for params in (p.model_dump(mode="json") for p in suggestions):
                try:
                    after = box.run(tool_name, before, params)
                except Exception as e:  # a crashing tool is the agent's business, not the guard's
                    rows.append({"tool": tool_name, "error": f"{type(e).__name__}: {e}"})
                    continue
                if after.shape != before.shape:
                    continue
                dpsnr = _psnr(after, clean) - base
                feats = residual_features(before, after, gain)
                # a dim picture measured viewed also keeps its measures as it is (what a family
                # fitted that way judges; see view_dim_only)
                as_is = residual_features(before, after) if gain > 1.0 else None
                rows.append({
                    "family": family, "task": task, "tool": tool_name, "params": params, "split": split, "photo": photo_name,
                    "index": index, "scene": scene, "condition": condition, "dpsnr": round(dpsnr, 4),
                    **({"camera_look": look_sigma} if look_sigma is not None else {}),
                    "features": {k: round(v, 6) for k, v in feats.items()},
                    **({"view_gain": round(gain, 4), "features_as_is": {k: round(v, 6) for k, v in as_is.items()}} if as_is is not None else {}),
                })
                if worst is None or dpsnr < worst[0]:
                    caption = [f"{family} {index}: {scene}, {condition}", f"{tool_name}: {dpsnr:+.2f} dB"]
                    worst = (dpsnr, np.concatenate([before, after], axis=1), caption)
    return {"rows": rows, "example": None if worst is None else (worst[1], worst[2])}


# -- fitting -----------------------------------------------------------------------------------
def fit_logistic(x: np.ndarray, y: np.ndarray, w: np.ndarray, l2: float, iters: int = 50) -> tuple[np.ndarray, float]:
    """Weighted L2-regularised logistic regression by Newton's method (bias unpenalised).

    Examples:
        >>> x = np.array([[-2.0], [-1.0], [1.0], [2.0]]); y = np.array([0, 0, 1, 1.0])
        >>> coef, bias = fit_logistic(x, y, np.ones(4), l2=0.1)
        >>> bool(coef[0] > 0)
        True
    """
    n, d = x.shape
    xb = np.concatenate([x, np.ones((n, 1))], axis=1)
    theta = np.zeros(d + 1)
    pen = np.full(d + 1, float(l2))
    pen[-1] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(xb @ theta, -60, 60)))
        grad = xb.T @ (w * (p - y)) + pen * theta
        hess = (xb * (w * p * (1 - p))[:, None]).T @ xb + np.diag(pen + 1e-9)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return theta[:-1], float(theta[-1])


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """Area under the ROC curve (ties count half); None without both classes.

    Examples:
        >>> roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
        0.75
    """
    pos, neg = scores[labels == 1], scores[labels == 0]
    if len(pos) == 0 or len(neg) == 0:
        return None
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return round(float(greater) / (len(pos) * len(neg)), 4)


def fit_family(rows: list[dict[str, Any]], cfg: GuardTrainConfig) -> dict[str, Any]:
    """Fit one family's model on its training rows and set its threshold on the validation rows."""
    def arrays(split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        use = [r for r in rows if r["split"] == split and abs(r["dpsnr"]) > cfg.margin]
        x = np.array([[r["features"][k] for k in FEATURES] for r in use], np.float64).reshape(-1, len(FEATURES))
        d = np.array([r["dpsnr"] for r in use], np.float64)
        return x, (d < 0).astype(np.float64), d, use

    xt, yt, dt, _ = arrays("train")
    xv, yv, dv, val_rows = arrays("val")
    if len(xt) < 10 or yt.min() == yt.max():
        raise ValueError(f"too few usable training steps to fit ({len(xt)}, harm share {yt.mean() if len(yt) else 0:.2f}); raise --samples")
    mean = xt.mean(axis=0)
    scale = xt.std(axis=0)
    scale[scale < 1e-6] = 1.0
    weight = np.minimum(np.abs(dt), 3.0) + 0.25
    weight = weight * np.where(yt == 1, 0.5 / max(yt.mean(), 1e-6), 0.5 / max(1 - yt.mean(), 1e-6))
    coef, bias = fit_logistic((xt - mean) / scale, yt, weight, cfg.l2)

    def probs(x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-np.clip(bias + ((x - mean) / scale) @ coef, -60, 60)))

    pv = probs(xv)
    if cfg.threshold_rule == "utility":
        threshold = utility_threshold(pv, dv, cfg.utility_clip)
    else:
        helpful = pv[yv == 0]
        threshold = float(np.quantile(helpful, 1.0 - cfg.max_false_reject, method="higher")) if len(helpful) else 0.5
    threshold = round(min(max(threshold, 0.05), 0.99), 4)
    reject = pv > threshold
    harm = yv == 1
    if cfg.vouch_scan:
        vouch = scan_vouch(pv, yv, cfg.vouch_p, threshold, cfg.vouch_max_harm, cfg.vouch_min_steps)
    else:
        vouch = vouch_threshold(pv, yv, min(cfg.vouch_p, threshold), cfg.vouch_max_harm, cfg.vouch_min_steps)
    sure = pv <= (vouch if vouch is not None else cfg.vouch_p)
    return {
        "model": {
            "mean": mean.round(6).tolist(), "scale": scale.round(6).tolist(), "weights": coef.round(6).tolist(),
            "bias": round(bias, 6), "threshold": threshold, "vouch": vouch,
            **({"view": True} if rows[0]["family"] in cfg.view_families else {}),
        },
        "train_steps": int(len(xt)),
        "train_harm_share": round(float(yt.mean()), 4),
        "val_steps": int(len(xv)),
        "val_harm_share": round(float(yv.mean()), 4) if len(yv) else None,
        "val_auc": roc_auc(pv, yv.astype(int)),
        "train_auc": roc_auc(probs(xt), yt.astype(int)),
        "val_harm_rejected": round(float(reject[harm].mean()), 4) if harm.any() else None,
        "val_help_rejected": round(float(reject[~harm].mean()), 4) if (~harm).any() else None,
        "val_harm_db_rejected": round(float(-dv[harm & reject].sum()), 2),
        "val_harm_db_total": round(float(-dv[harm].sum()), 2),
        "val_mean_db_kept_before": round(float(dv.mean()), 4) if len(dv) else None,
        "val_mean_db_kept_after": round(float(np.where(reject, 0.0, dv).mean()), 4) if len(dv) else None,
        "vouch": vouch,
        # the steps under vouch_p, whether or not the family vouches (why it does or does not)
        "val_sure_steps": int(sure.sum()),
        "val_sure_harm_share": round(float(yv[sure].mean()), 4) if sure.any() else None,
        "val_sure_worst_db": round(float(dv[sure].min()), 2) if sure.any() else None,
        "_val_rejected": [r for r, rej in zip(val_rows, reject, strict=True) if rej],
    }


def dim_figures(
    rows: list[dict[str, Any]], model: dict[str, Any], kept: dict[str, Any] | None, margin: float
) -> dict[str, Any]:
    """Validation figures on the dim pictures' steps (rows with a ``view_gain``): the fitted
    ``model``'s (measured viewed) and the ``kept`` family's (measured as they are), each as
    AUC, the shares of harmful and helpful steps rejected, of helpful ones vouched for, and the
    mean PSNR change of the steps kept (0 for a rejected one). What ``view_dim_only`` changes.

    Examples:
        >>> m = {"mean": [0.0] * len(FEATURES), "scale": [1.0] * len(FEATURES), "bias": 0.0, "threshold": 0.5, "vouch": 0.2,
        ...      "weights": [1.0 if k == "removed_peak" else 0.0 for k in FEATURES]}
        >>> row = lambda d, x: {"split": "val", "dpsnr": d, "view_gain": 2.0, "features": {k: x for k in FEATURES},
        ...                     "features_as_is": {k: 0.0 for k in FEATURES}}
        >>> f = dim_figures([row(2.0, -3.0), row(-1.0, 3.0), {"split": "val", "dpsnr": 1.0}], m, m, 0.1)
        >>> f["steps"], f["fitted"]["help_rejected"], f["fitted"]["harm_rejected"], f["kept"]["help_rejected"]
        (2, 0.0, 1.0, 0.0)
        >>> f["fitted"]["mean_db_kept"], f["kept"]["mean_db_kept"], f["mean_db_before"]
        (1.0, 0.5, 0.5)
    """
    from restora.quality.guard import FamilyModel

    use = [r for r in rows if r.get("split") == "val" and "view_gain" in r and abs(r["dpsnr"]) > margin]
    if not use:
        return {"steps": 0}
    d = np.array([r["dpsnr"] for r in use], np.float64)
    harm = d < 0

    def figures(m: dict[str, Any], key: str) -> dict[str, Any]:
        fm = FamilyModel(mean=tuple(m["mean"]), scale=tuple(m["scale"]), weights=tuple(m["weights"]), bias=float(m["bias"]),
                         threshold=float(m["threshold"]), vouch=m.get("vouch"))
        p = np.array([fm.p_harm(np.array([r[key][k] for k in FEATURES])) for r in use])
        reject = p > fm.threshold
        vouched = p <= (fm.vouch if fm.vouch is not None else -1.0)
        return {
            "auc": roc_auc(p, harm.astype(int)),
            "harm_rejected": round(float(reject[harm].mean()), 4) if harm.any() else None,
            "help_rejected": round(float(reject[~harm].mean()), 4) if (~harm).any() else None,
            "help_vouched": round(float(vouched[~harm].mean()), 4) if (~harm).any() else None,
            "mean_db_kept": round(float(np.where(reject, 0.0, d).mean()), 4),
        }

    out = {"steps": len(use), "harm_share": round(float(harm.mean()), 4), "mean_db_before": round(float(d.mean()), 4),
           "fitted": figures(model, "features")}
    if kept is not None:
        out["kept"] = figures(kept, "features_as_is")
    return out


def vouch_threshold(p: np.ndarray, harm: np.ndarray, vouch_p: float, max_harm: float, min_steps: int) -> float | None:
    """``vouch_p`` if the validation steps the model is that sure of (``p <= vouch_p``) are at
    least ``min_steps`` and at most ``max_harm`` of them harmful; else None (the family does not vouch).

    Examples:
        >>> vouch_threshold(np.array([0.01, 0.02, 0.03, 0.9]), np.array([0, 0, 0, 1]), 0.1, 0.05, 3)
        0.1
        >>> vouch_threshold(np.array([0.01, 0.02, 0.03, 0.9]), np.array([0, 1, 0, 1]), 0.1, 0.05, 3) is None
        True
        >>> vouch_threshold(np.array([0.01, 0.9]), np.array([0, 1]), 0.1, 0.05, 3) is None
        True
    """
    sure = np.asarray(p) <= vouch_p
    if int(sure.sum()) < min_steps or float(np.mean(np.asarray(harm)[sure])) > max_harm:
        return None
    return round(float(vouch_p), 4)


VOUCH_SCAN_STEP = 0.05


def scan_vouch(p: np.ndarray, harm: np.ndarray, vouch_p: float, threshold: float, max_harm: float, min_steps: int) -> float | None:
    """The largest vouch level from ``vouch_p`` (or the threshold, if lower) up to ``threshold`` (every
    :data:`VOUCH_SCAN_STEP`, and the threshold itself) at which :func:`vouch_threshold` holds; None
    where none does.

    A family whose validation steps stay safe further up the harm probability than ``vouch_p``
    vouches there too: a fixed 0.1 left real camera noise denoised with a harm of 0.11-0.22 to the
    NR score, which reads the grain it took out as lost detail.

    Examples:
        >>> p = np.array([0.02, 0.05, 0.12, 0.18, 0.25, 0.33, 0.9])
        >>> scan_vouch(p, np.array([0, 0, 0, 0, 0, 1, 1]), 0.1, 0.4, 0.1, 2)   # one harmful step in 6 under 0.35
        0.3
        >>> scan_vouch(p, np.array([0, 0, 0, 0, 0, 0, 1]), 0.1, 0.4, 0.05, 2)  # up to the threshold
        0.4
        >>> scan_vouch(p, np.array([1, 0, 0, 0, 0, 0, 1]), 0.1, 0.4, 0.05, 2) is None
        True
    """
    top = min(float(threshold), 1.0)
    start = min(float(vouch_p), top)
    levels = [start + i * VOUCH_SCAN_STEP for i in range(int((top - start) / VOUCH_SCAN_STEP + 1e-9) + 1)] + [top]
    held = [v for v in (vouch_threshold(p, harm, level, max_harm, min_steps) for level in levels) if v is not None]
    return max(held, default=None)


def utility_threshold(p: np.ndarray, dpsnr: np.ndarray, clip: float) -> float:
    """The harm-probability threshold under which the kept steps (``p <= t``) gain most PSNR on average.

    Each step's change is clipped to ``+-clip`` dB; candidates are the midpoints between the
    sorted probabilities (and both ends); on a tie the higher threshold wins.

    Examples:
        >>> utility_threshold(np.array([0.1, 0.2, 0.8, 0.9]), np.array([1.0, 2.0, -5.0, 0.5]), 10.0)
        0.5
        >>> utility_threshold(np.array([0.1, 0.9]), np.array([1.0, 2.0]), 10.0)
        0.99
    """
    if len(p) == 0:
        return 0.5
    order = np.argsort(p, kind="stable")
    ps = p[order]
    gains = np.concatenate([[0.0], np.cumsum(np.clip(dpsnr[order], -clip, clip))])  # kept = the first i steps
    cands = np.concatenate([[min(0.05, ps[0] / 2)], (ps[:-1] + ps[1:]) / 2, [0.99]])
    # a candidate between equal probabilities keeps all of them or none: use each distinct step once
    valid = np.concatenate([[True], ps[:-1] < ps[1:], [True]])
    best = max((gains[i], i) for i in range(len(cands)) if valid[i])
    return float(cands[best[1]]) if best[1] < len(ps) else 0.99


# -- the run -----------------------------------------------------------------------------------
def train_guard(
    cfg: GuardTrainConfig, on_sample: Callable[[int, int], None] | None = None, command: str | None = None
) -> dict[str, Any]:
    """Synthesize the steps, fit every family, write the run folder; returns the metrics."""
    from restora.batch.pool import run_jobs

    t0 = time.perf_counter()
    cfg.out.mkdir(parents=True, exist_ok=True)
    photos: list[CleanImage] = clean_images(cfg.clean)
    val = split_by_photo([p.name for p in photos], cfg.seed, cfg.val_fraction, salt="guard")
    pools = {split: [p for p in photos if (p.name in val) == (split == "val")] for split in ("train", "val")}
    jobs = []
    for family in cfg.families:
        for i in range(cfg.samples * int(FAMILIES[family].get("sample_scale", 1))):
            split = "val" if i % round(1 / cfg.val_fraction) == 0 else "train"
            pool = pools[split]
            rng = np.random.default_rng([cfg.seed, zlib.crc32(family.encode()), i])
            photo = pool[int(rng.integers(len(pool)))]
            jobs.append((str(photo.path), photo.name, split, family, i, cfg.to_json()))
    counter = {"n": 0}

    def done(_: Any) -> None:
        counter["n"] += 1
        if on_sample is not None:
            on_sample(counter["n"], len(jobs))

    # rows of a family whose sampling settings are unchanged since the last run here are reused
    stamp_path, rows_path = cfg.out / "rows.config.json", cfg.out / "rows.jsonl"
    stamp = cfg.rows_stamp()
    old_stamp = json.loads(stamp_path.read_text()) if stamp_path.exists() and rows_path.exists() else {}
    reused = sorted(f for f in cfg.families if old_stamp.get(f) == stamp[f])
    rows = [r for r in _read_rows(rows_path) if r.get("family") in reused] if reused else []
    jobs = [j for j in jobs if j[3] not in reused]
    failed: list[str] = []
    examples: dict[tuple[str, int], Any] = {}
    if jobs:
        results = run_jobs(sample_steps, jobs, workers=cfg.workers, on_done=done)
        failed = [r.error for r in results if not r.ok]
        if len(failed) > len(results) // 10:
            raise RuntimeError(f"{len(failed)} of {len(results)} samples failed, first: {failed[0]}")
        rows += [row for r in results if r.ok for row in r.value["rows"]]
        examples = {(r.job[3], r.job[4]): r.value["example"] for r in results if r.ok and r.value["example"] is not None}
        write_text_atomic(rows_path, "".join(json.dumps(r) + "\n" for r in rows))
        write_text_atomic(stamp_path, json.dumps(stamp, indent=1) + "\n")

    families: dict[str, Any] = {}
    rejected: list[tuple[np.ndarray, list[str]]] = []
    kept = read_guard_file(cfg.keep_from)["families"] if cfg.view_dim_only and cfg.keep_from is not None else {}
    for family in cfg.families:
        fam_rows = [r for r in rows if r.get("family") == family and "features" in r]
        fitted = fit_family(fam_rows, cfg)
        for r in fitted.pop("_val_rejected")[:6]:
            ex = examples.get((family, r["index"]))
            if ex is not None:
                rejected.append((ex[0], [*ex[1], f"rejected {r['tool']} ({r['dpsnr']:+.2f} dB)"]))
        if cfg.view_dim_only and family in cfg.view_families:
            fitted["val_dim"] = dim_figures(fam_rows, fitted["model"], kept.get(family), cfg.margin)
            family = f"{family}{DIM_SUFFIX}"
        families[family] = fitted
    command = command or "restora train guard " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in cfg.to_json().items() if k not in ("out", "clean", "families")
    )
    guard = {
        "about": "restora's no-harm guard: logistic models of residual measures, per task family (restora.quality.guard)",
        "command": command,
        "data": [str(p) for p in cfg.clean],
        "data_terms": "the shared data's clean training pool (CBSD68, LIVE1: research use, see ../shared/data/README)",
        "seed": cfg.seed,
        "features": list(FEATURES),
        "families": {f: m["model"] for f, m in families.items()},
        "validation": {f: {k: v for k, v in m.items() if k != "model"} for f, m in families.items()},
    }
    if cfg.keep_from is not None:
        guard = keep_families(guard, cfg.keep_from)
    write_text_atomic(cfg.out / "guard.json", json.dumps(guard, indent=1) + "\n")
    result = {
        "config": cfg.to_json(),
        "steps": len(rows),
        "rows_reused": reused,
        "failed_samples": len(failed),
        "families": guard["validation"],
        "seconds": round(time.perf_counter() - t0, 1),
    }
    write_text_atomic(cfg.out / "metrics.json", json.dumps(result, indent=1) + "\n")
    _report(cfg.out, result, rows, rejected)
    return result


def read_guard_file(path: Path) -> dict[str, Any]:
    """The guard file at ``path`` to keep families from; an error when it cannot be read or was made
    for other measures than this restora's :data:`~restora.quality.guard.FEATURES`."""
    try:
        old = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot read the guard file to keep families from, {path}: {e}") from e
    if tuple(old.get("features", ())) != FEATURES:
        raise ValueError(f"{path}: made for other measures than this restora's; refit every family instead")
    return old


def keep_families(guard: dict[str, Any], path: Path) -> dict[str, Any]:
    """``guard`` with the families it lacks copied from the guard file at ``path`` (models and
    validation figures as they are); ``commands`` then records, per family, the command that fitted
    it. A file made for other measures is an error.

    Examples:
        >>> old = {"command": "restora train guard --samples 320", "features": list(FEATURES),
        ...        "families": {"derain": {"w": 1}, "denoise": {"w": 2}}, "validation": {"derain": {}, "denoise": {}}}
        >>> import tempfile, os; d = tempfile.mkdtemp(); f = os.path.join(d, "g.json")
        >>> _ = open(f, "w").write(json.dumps(old))
        >>> new = {"command": "restora train guard --families denoise", "features": list(FEATURES),
        ...        "families": {"denoise": {"w": 3}}, "validation": {"denoise": {}}}
        >>> g = keep_families(new, Path(f))
        >>> g["families"], g["commands"]["derain"]
        ({'denoise': {'w': 3}, 'derain': {'w': 1}}, 'restora train guard --samples 320')
    """
    old = read_guard_file(path)
    old_commands = old.get("commands") or {f: old.get("command") for f in old.get("families", {})}
    out = {**guard, "families": dict(guard["families"]), "validation": dict(guard["validation"])}
    commands = {f: guard["command"] for f in guard["families"]}
    for family, model in old.get("families", {}).items():
        if family not in out["families"]:
            out["families"][family] = model
            out["validation"][family] = (old.get("validation") or {}).get(family, {})
            commands[family] = old_commands.get(family)
    out["commands"] = commands
    return out


def _read_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def _report(out: Path, result: dict[str, Any], rows: list[dict[str, Any]], rejected: list[tuple[np.ndarray, list[str]]]) -> None:
    from restora.imageio import save_image
    from restora.trainer.report import labelled_grid

    if rejected:
        save_image(out / "rejected.png", labelled_grid(rejected, columns=3))
    else:  # reused rows carry no pictures: do not leave the last fit's examples beside this fit
        (out / "rejected.png").unlink(missing_ok=True)
    lines = [
        "# restora no-harm guard fit",
        "",
        f"{result['steps']} synthesized steps ({result['failed_samples']} failed samples), {result['seconds']:.0f} s. "
        "Harm = PSNR against the clean picture fell by more than the margin; help = rose by more than it.",
        "",
        "| family | train steps | val steps | val harm share | val AUC | harm rejected | help rejected | harm dB rejected / total | mean dB per step before -> after |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    vouch_lines = [
        "",
        "Vouching (the agent keeps a step the family is this sure of, though the NR score fell): a family vouches at "
        + (
            f"the largest harm level from {result['config']['vouch_p']} up to its threshold (every {VOUCH_SCAN_STEP}) "
            if result["config"].get("vouch_scan")
            else f"harm <= {result['config']['vouch_p']} "
        )
        + f"when at least {result['config']['vouch_min_steps']} validation steps fall there "
        f"and at most {result['config']['vouch_max_harm']} of them were harmful.",
        "",
        "| family | vouches at | val steps that sure | harmful share | worst dB |",
        "|---|---|---|---|---|",
    ]
    for f, m in result["families"].items():
        lines.append(
            f"| {f} | {m['train_steps']} | {m['val_steps']} | {m['val_harm_share']} | {m['val_auc']} | {m['val_harm_rejected']} | "
            f"{m['val_help_rejected']} | {m['val_harm_db_rejected']} / {m['val_harm_db_total']} | {m['val_mean_db_kept_before']} -> {m['val_mean_db_kept_after']} |"
        )
        vouch = m.get("vouch")
        vouch_lines.append(
            f"| {f} | {'never' if vouch is None else vouch} | {m['val_sure_steps']} | {m['val_sure_harm_share']} | {m['val_sure_worst_db']} |"
        )
    lines += vouch_lines
    dims = {f: m["val_dim"] for f, m in result["families"].items() if m.get("val_dim", {}).get("steps")}
    if dims:
        lines += [
            "",
            "Dim pictures (view_dim_only): the validation steps on dim pictures, judged by the family fitted on them "
            "viewed brightened and by the family kept for the rest, measured as they are:",
            "",
            "| family | steps | harm share | mean dB before | model | AUC | harm rejected | help rejected | help vouched | mean dB kept |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for f, d in dims.items():
            for which in ("fitted", "kept"):
                if which in d:
                    m = d[which]
                    lines.append(
                        f"| {f} | {d['steps']} | {d['harm_share']} | {d['mean_db_before']} | {which} | {m['auc']} | "
                        f"{m['harm_rejected']} | {m['help_rejected']} | {m['help_vouched']} | {m['mean_db_kept']} |"
                    )
    by_scene: dict[str, list[float]] = {}
    for r in rows:
        if "dpsnr" in r:
            by_scene.setdefault(f"{r['family']} / {r['scene']}", []).append(r["dpsnr"])
    lines += ["", "Mean PSNR change of the tools (all splits) by family and picture:", "", "| family / picture | steps | mean dB | harmful share |", "|---|---|---|---|"]
    for k in sorted(by_scene):
        v = np.array(by_scene[k])
        lines.append(f"| {k} | {len(v)} | {v.mean():+.2f} | {(v < -result['config']['margin']).mean():.2f} |")
    if rejected:
        lines += ["", "![validation steps the guard rejects (before | after)](rejected.png)", ""]
    else:
        lines += ["", "(Rows reused from an earlier synthesis: example pictures are drawn only when the rows are synthesized.)", ""]
    write_text_atomic(out / "report.md", "\n".join(lines))
