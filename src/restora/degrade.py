"""Synthetic degradations: seeded, deterministic, one function per degradation type.

Every degradation maps a clean float32 (H, W, 3) RGB image in [0, 1] and a severity in [0, 1] to
a degraded image of the SAME size, plus the concrete parameters it used. Severity is monotone:
with the same seed, a higher severity degrades more (same noise field scaled up, same blur angle
with a longer kernel, same rain drops with more of them, ...). Randomness comes only from a numpy
``Generator`` built from ``seed`` (and the degradation's name), so the same call gives the same
bytes.

Types and what severity 0 .. 1 means:

===========  ======================================================================================
noise        Gaussian, sigma 5 .. 50 (0-255 units), i.i.d. per channel. ``model="poisson_gaussian"``
             gives signal-dependent shot noise plus read noise with the same std at mid-grey.
             ``model="granular"``: web-image grain, spatially correlated: luminance grain (white
             noise low-passed by a Gaussian of FWHM ``grain`` 1.5 .. 3 px) plus per-channel colour
             grain twice as coarse, ``chroma`` 0.2 .. 0.4 of the luminance grain's std; per-channel
             std sigma 3.5 .. 35 (0.7 x the Gaussian's: grain reads stronger than i.i.d. noise).
             ``model="camera"``: camera-pipeline noise (Brooks et al. 2019's unprocessing, CBDNet):
             sRGB to linear, inverse of a mild random CCM (diagonal 1.2 .. 1.6) and white balance
             (red 1.5 .. 2.2, blue 1.3 .. 1.9, gain 1 .. 1.25), RGGB mosaic, shot + read noise of
             variance a x + b (sqrt(a) linear in severity, a = 4e-4 .. 4e-2 x exp(+-0.4); log b =
             2.18 log a + 1.2 + N(0, 0.26) as in the paper), bilinear demosaic of the noise (the
             signal stays exact), white balance, CCM and gamma again, the camera's chroma noise
             reduction (colour residual blurred by 1.2 .. 2.4 px: blotches), and half the time its
             JPEG at quality 75 .. 95 (``jpeg=True/False`` forces it). Signal-dependent, spatially
             correlated, chroma-blotchy, strongest in the shadows. ``sigma`` (std at mid-grey, JPEG
             aside) ~1.7 .. 3 at severity 0, ~24 .. 40 at 1; ``sigma_image``: std over this image.
             ``luma_nr=True`` (or a sigma in px) adds the camera's luminance noise reduction: the
             luminance residual smoothed by a Gaussian of sigma 1 .. 2 px (drawn from its own
             stream), which leaves soft mottle rather than grain, as high-ISO camera JPEGs show
             (``scripts/camera_noise_gap.py``). Off by default.
motion_blur  linear motion kernel, length 5 .. 25 px, random angle (uniform over 0..180 degrees).
defocus      anti-aliased disc kernel, radius 1.5 .. 6 px.
haze         atmospheric scattering I = J t + A (1 - t), t = exp(-beta d), beta 0.5 .. 3.0; the
             depth proxy d (no depth network here) is 0.6 x a vertical ramp (top far) + 0.4 x the
             heavily smoothed min-channel (bright, colourless regions such as sky read far),
             rescaled to [0.2, 1]; airlight A slightly bluish white, A_blue ~ 0.82 .. 0.95.
rain         two layers of thin bright streaks (angle within ~30 degrees of vertical, length
             10 .. 35 px at 400 px, density 0.2 .. 1.2 % of pixels seed a drop), slightly blurred,
             screen-blended with a grey-white colour. ``splashes=True`` adds splashes
             (:func:`rain_splashes`: bright elliptic drops 2 .. 4.4 px wide at 400 px, elongated
             along the rain, and spatter clusters of tiny droplets; 0.04 .. 0.2 % of pixels centre
             one) from their own generator, so the streaks are the same bytes as without them.
dark         brightness gain 0.55 .. 0.15 and gamma 1.3 .. 2.5 (``gain * I ** gamma``), then the
             shot and read noise a dim exposure brings (``noise_sigma``: its std, 0-255; about 2.5).
             ``noise=False``: the dimming alone, for another noise model after it (a camera's).
jpeg         OpenCV JPEG encode/decode (4:2:0), quality 60 .. 10. ``model="web"``: as a web
             platform serves it: area downscale by ``factor`` 0.5 .. 0.9, JPEG at that quality,
             half the time a re-upload's second JPEG at a quality 3 .. 10 off, bicubic back up.
low_res      area downscale by factor 1.5 .. 4, then bicubic upscale back to the same size.
===========  ======================================================================================

Draws a model or option makes (grain size, resize factor, splashes) never depend on the severity,
so monotonicity holds for them too. :func:`compose` applies several in the physically plausible
order (:data:`restora.taxonomy.FORMATION_ORDER`: scene, then imaging, then compression), each with
its default model unless its ``options`` say otherwise. New types plug in with :func:`register`
(a name, a function, and where it goes in that order).

Examples:
    >>> import numpy as np
    >>> from restora import degrade
    >>> img = np.full((64, 64, 3), 0.5, np.float32)
    >>> noisy = degrade.apply(img, "noise", 0.5, seed=1)
    >>> noisy.shape, noisy.dtype
    ((64, 64, 3), dtype('float32'))
    >>> out, labels = degrade.compose(img, "rain+haze", seed=3)
    >>> list(labels)                     # formation order, not the order given
    ['haze', 'rain']
    >>> sorted(labels["haze"])[:3]
    ['airlight', 'beta', 'depth']
"""

from __future__ import annotations

import difflib
import inspect
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from restora.taxonomy import FORMATION_ORDER, Degradation

Params = dict[str, Any]
DegradeFn = Callable[..., tuple[np.ndarray, Params]]
"""``fn(image, severity, rng, **kwargs) -> (degraded image, concrete parameters)``."""

COMPOSE_SEVERITY_RANGE: tuple[float, float] = (0.3, 0.9)
"""Severities :func:`compose` draws (uniformly) when none are given."""

LUMA = np.array([0.299, 0.587, 0.114], np.float32)


@dataclass(frozen=True)
class DegradationSpec:
    name: str
    fn: DegradeFn
    summary: str


DEGRADATIONS: dict[str, DegradationSpec] = {}
"""Registered degradation types by name."""
ORDER: list[str] = [str(d) for d in FORMATION_ORDER]
"""Formation order used by :func:`compose`; :func:`register` inserts new names into it."""


def register(name: str, summary: str = "", before: str | None = None) -> Callable[[DegradeFn], DegradeFn]:
    """Decorator registering ``fn(image, severity, rng, **kw) -> (image, params)`` under ``name``.

    ``before`` places a new type in the formation order (default: at the end, after compression).

    Examples:
        >>> @register("vignette", "darkened corners", before="jpeg")   # doctest: +SKIP
        ... def _vignette(image, severity, rng):
        ...     ...
    """

    def deco(fn: DegradeFn) -> DegradeFn:
        DEGRADATIONS[name] = DegradationSpec(name, fn, summary or (fn.__doc__ or "").strip().split("\n")[0])
        if name not in ORDER:
            if before is None:
                ORDER.append(name)
            else:
                ORDER.insert(ORDER.index(before), name)
        return fn

    return deco


# -- public API ----------------------------------------------------------------------------------
def apply(
    image: np.ndarray,
    degradation: str | Degradation,
    severity: float,
    seed: int = 0,
    **kwargs: Any,
) -> np.ndarray:
    """Degrade ``image`` with one degradation at ``severity`` in [0, 1]; same size, float32 [0, 1].

    Extra keyword arguments go to the degradation (e.g. ``model="poisson_gaussian"`` or
    ``model="camera"`` for noise, ``angle=30.0`` for motion_blur).

    Examples:
        >>> import numpy as np
        >>> img = np.random.default_rng(0).random((32, 48, 3), dtype=np.float32)
        >>> apply(img, "low_res", 0.5).shape
        (32, 48, 3)
        >>> bool((apply(img, "jpeg", 0.9, seed=2) == apply(img, "jpeg", 0.9, seed=2)).all())
        True
    """
    return apply_labeled(image, degradation, severity, seed, **kwargs)[0]


def apply_labeled(
    image: np.ndarray,
    degradation: str | Degradation,
    severity: float,
    seed: int = 0,
    **kwargs: Any,
) -> tuple[np.ndarray, Params]:
    """Like :func:`apply`, also returning the concrete parameters (``severity`` included).

    Examples:
        >>> import numpy as np
        >>> img = np.full((32, 32, 3), 0.5, np.float32)
        >>> _, p = apply_labeled(img, "noise", 0.0)
        >>> p["sigma"]
        5.0
    """
    name = _check_name(degradation)
    sev = _check_severity(severity)
    img = _check_image(image)
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, _code(name)])
    fn = DEGRADATIONS[name].fn
    accepted = list(inspect.signature(fn).parameters)[3:]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        known = ", ".join(accepted) or "none"
        raise ValueError(f"degradation {name!r} has no option {', '.join(map(repr, unknown))} (its options: {known})")
    out, params = fn(img, sev, rng, **kwargs)
    out = np.ascontiguousarray(np.clip(out, 0.0, 1.0), dtype=np.float32)
    if out.shape != img.shape:  # a bug in a degradation function, not a user error
        raise RuntimeError(f"degradation {name!r} changed the size {img.shape} -> {out.shape}")
    return out, {"severity": sev, **params}


def parse_combo(combo: str | list[str] | tuple[str, ...]) -> list[str]:
    """Degradation names of ``combo`` ("rain+haze" or a list), in formation order.

    Examples:
        >>> parse_combo("noise+haze+jpeg")
        ['haze', 'noise', 'jpeg']
    """
    names = [n.strip() for n in combo.split("+")] if isinstance(combo, str) else [str(n) for n in combo]
    names = [n for n in names if n]
    if not names:
        raise ValueError("empty degradation combination")
    checked = [_check_name(n) for n in names]
    if len(set(checked)) != len(checked):
        raise ValueError(f"degradation repeated in combination {combo!r}")
    return sorted(checked, key=ORDER.index)


def compose(
    image: np.ndarray,
    combo: str | list[str] | tuple[str, ...],
    seed: int = 0,
    severities: Mapping[str, float] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[np.ndarray, dict[str, Params]]:
    """Apply several degradations in formation order; return the image and per-type labels.

    Severities missing from ``severities`` are drawn uniformly from
    :data:`COMPOSE_SEVERITY_RANGE` by a generator seeded with ``seed``. Each degradation uses the
    same stream as ``apply(..., seed=seed)``, with its default model unless ``options`` gives it
    keyword arguments (``{"noise": {"model": "granular"}, "rain": {"splashes": True}}``). ``labels``
    maps each degradation name (in the order applied) to its parameters: ``severity`` plus the
    concrete ones (``sigma``, ``quality``, ``length``/``angle``, ``radius``, ``factor``,
    ``beta``/``airlight``, ...).

    Examples:
        >>> import numpy as np
        >>> img = np.full((48, 48, 3), 0.5, np.float32)
        >>> out, labels = compose(img, "noise+jpeg", seed=0, severities={"noise": 0.5})
        >>> labels["noise"]["severity"], labels["noise"]["sigma"]
        (0.5, 27.5)
        >>> 10 <= labels["jpeg"]["quality"] <= 60
        True
        >>> _, labels = compose(img, "noise+jpeg", options={"jpeg": {"model": "web"}})
        >>> labels["noise"]["model"], labels["jpeg"]["model"]
        ('gaussian', 'web')
    """
    names = parse_combo(combo)
    given = dict(severities or {})
    unknown = set(given) - set(names)
    if unknown:
        raise ValueError(f"severities given for degradations not in the combination: {sorted(unknown)}")
    opts = {str(k): dict(v) for k, v in (options or {}).items()}
    unknown = set(opts) - set(names)
    if unknown:
        raise ValueError(f"options given for degradations not in the combination: {sorted(unknown)}")
    sev_rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, _code("compose-severity")])
    drawn = {n: float(sev_rng.uniform(*COMPOSE_SEVERITY_RANGE)) for n in names}  # always draw: stable
    out = _check_image(image)
    labels: dict[str, Params] = {}
    for n in names:
        sev = float(given[n]) if n in given else round(drawn[n], 4)
        out, labels[n] = apply_labeled(out, n, sev, seed, **opts.get(n, {}))
    return out, labels


def list_degradations() -> list[str]:
    """Registered degradation names in formation order.

    Examples:
        >>> list_degradations()[:4]
        ['haze', 'rain', 'reflection', 'dark']
    """
    return [n for n in ORDER if n in DEGRADATIONS]


# -- kernels (shared with perception and tools) -----------------------------------------------
def motion_kernel(length: float, angle: float, peak_one: bool = False) -> np.ndarray:
    """Anti-aliased linear motion kernel; ``angle`` in degrees counter-clockwise from horizontal
    as seen on screen (image y points down). Sums to 1 (or has max 1 with ``peak_one``).

    Examples:
        >>> k = motion_kernel(9, 0)
        >>> k.shape, round(float(k.sum()), 6)
        ((13, 13), 1.0)
    """
    length = max(float(length), 1.0)
    half = int(np.ceil(length / 2.0)) + 1
    size = 2 * half + 1
    k = np.zeros((size, size), np.float64)
    n = max(int(np.ceil(length * 8)), 2)
    t = np.linspace(-(length - 1) / 2.0, (length - 1) / 2.0, n)
    a = np.deg2rad(angle)
    xs = half + t * np.cos(a)
    ys = half - t * np.sin(a)
    x0 = np.floor(xs).astype(int)
    y0 = np.floor(ys).astype(int)
    fx = xs - x0
    fy = ys - y0
    for dy, dx, w in ((0, 0, (1 - fx) * (1 - fy)), (0, 1, fx * (1 - fy)), (1, 0, (1 - fx) * fy), (1, 1, fx * fy)):
        np.add.at(k, (y0 + dy, x0 + dx), w)
    if peak_one:
        return (k / k.max()).astype(np.float32)
    return (k / k.sum()).astype(np.float32)


def shake_kernel(length: float, rng: np.random.Generator, points: int = 64) -> np.ndarray:
    """A camera-shake kernel: the path of a hand-held camera during the exposure, as a random walk
    with inertia (velocity kept with momentum, random acceleration, a few sudden jerks; after
    Boracchi and Foi 2012 and DeblurGAN's trajectories), scaled to a path ``length`` px and
    splatted bilinearly. Curved, uneven in speed, sums to 1.

    Examples:
        >>> k = shake_kernel(15, np.random.default_rng(0))
        >>> round(float(k.sum()), 6), k.ndim
        (1.0, 2)
    """
    length = max(float(length), 1.0)
    pos = np.zeros((points, 2))
    vel = np.array([np.cos(a := rng.uniform(0, 2 * np.pi)), np.sin(a)])
    momentum = rng.uniform(0.6, 0.95)
    for i in range(1, points):
        acc = rng.normal(0.0, 0.5, 2)
        if rng.random() < 0.05:  # a jerk: the hand changes direction
            acc += rng.normal(0.0, 2.0, 2)
        vel = momentum * vel + (1 - momentum) * acc
        vel /= max(float(np.linalg.norm(vel)), 1e-6)
        vel *= rng.uniform(0.3, 1.7)  # uneven speed: dwelling parts expose longer
        pos[i] = pos[i - 1] + vel
    steps = np.linalg.norm(np.diff(pos, axis=0), axis=1).sum()
    pos *= (length - 1.0) / max(steps, 1e-6)
    pos -= (pos.max(axis=0) + pos.min(axis=0)) / 2.0
    half = int(np.ceil(np.abs(pos).max())) + 1
    size = 2 * half + 1
    k = np.zeros((size, size), np.float64)
    # dense samples along the path (each segment split by its length) so the kernel has no gaps
    dense = [pos[0]]
    for p0, p1 in zip(pos[:-1], pos[1:], strict=True):
        n = max(2, int(np.ceil(np.linalg.norm(p1 - p0) * 4)))
        dense.extend(p0 + (p1 - p0) * t for t in np.linspace(0, 1, n)[1:])
    pts = np.array(dense)
    xs, ys = pts[:, 0] + half, pts[:, 1] + half
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    fx, fy = xs - x0, ys - y0
    for dy, dx, w in ((0, 0, (1 - fx) * (1 - fy)), (0, 1, fx * (1 - fy)), (1, 0, (1 - fx) * fy), (1, 1, fx * fy)):
        np.add.at(k, (np.clip(y0 + dy, 0, size - 1), np.clip(x0 + dx, 0, size - 1)), w)
    return (k / k.sum()).astype(np.float32)


def disc_kernel(radius: float) -> np.ndarray:
    """Anti-aliased uniform disc (defocus) kernel of ``radius`` px, summing to 1.

    Examples:
        >>> disc_kernel(2.0).shape
        (7, 7)
    """
    radius = max(float(radius), 0.5)
    half = int(np.ceil(radius)) + 1
    ss = 8
    coords = (np.arange((2 * half + 1) * ss) + 0.5) / ss - half - 0.5
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    inside = (xx**2 + yy**2 <= radius**2).astype(np.float64)
    k = inside.reshape(2 * half + 1, ss, 2 * half + 1, ss).mean(axis=(1, 3))
    return (k / k.sum()).astype(np.float32)


def _filter(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    # cv2.filter2D correlates; flip so this is a true convolution (matters for asymmetric kernels)
    return cv2.filter2D(image, -1, kernel[::-1, ::-1].copy(), borderType=cv2.BORDER_REFLECT_101)


# -- the eight degradations ---------------------------------------------------------------------
@register("noise", "additive Gaussian (or Poisson-Gaussian) sensor noise")
def _noise(
    image: np.ndarray,
    severity: float,
    rng: np.random.Generator,
    model: str = "gaussian",
    jpeg: bool | None = None,
    luma_nr: bool | float | None = None,
) -> tuple[np.ndarray, Params]:
    for name, value in (("jpeg", jpeg), ("luma_nr", luma_nr)):
        if value is not None and model != "camera":
            raise ValueError(f"noise option {name}= is for model='camera' only, not {model!r}")
    if model == "camera":
        return _camera_noise(image, severity, rng, jpeg, luma_nr)
    sigma = 5.0 + 45.0 * severity
    s = sigma / 255.0
    if model == "gaussian":
        out = image + rng.standard_normal(image.shape, dtype=np.float32) * np.float32(s)
        return out, {"model": model, "sigma": round(sigma, 4)}
    if model == "poisson_gaussian":
        # variance a*x + b with read variance b = 0.2 s^2 and total s^2 at x = 0.5
        read = np.sqrt(0.2) * s
        peak = 0.5 / (0.8 * s * s)
        shot = rng.poisson(np.clip(image, 0, 1).astype(np.float64) * peak) / peak
        out = shot + rng.standard_normal(image.shape) * read
        return out.astype(np.float32), {
            "model": model,
            "sigma": round(sigma, 4),
            "peak": round(float(peak), 4),
            "read_sigma": round(float(read * 255.0), 4),
        }
    if model == "granular":
        # web-image grain: spatially correlated (low-passed) luminance grain plus a weaker, coarser
        # per-channel colour grain (chroma is subsampled and smeared by the pipeline), scaled so
        # that each channel's std is sigma, 0.7 x the Gaussian model's (grain of the same std
        # reads much stronger than i.i.d. noise: it is not averaged away by the eye)
        sigma *= 0.7
        s = sigma / 255.0
        h, w = image.shape[:2]
        grain = float(rng.uniform(1.5, 3.0))
        chroma = float(rng.uniform(0.2, 0.4))
        luma_std = s / np.sqrt(1.0 + chroma * chroma)
        lum = _grain_field(rng, (h, w), grain)
        col = _grain_field(rng, (h, w, 3), 2.0 * grain)
        out = image + lum[..., None] * np.float32(luma_std) + col * np.float32(chroma * luma_std)
        return out, {
            "model": model,
            "sigma": round(sigma, 4),
            "grain": round(grain, 4),
            "chroma": round(chroma, 4),
        }
    raise ValueError(f"unknown noise model {model!r}; use 'gaussian', 'poisson_gaussian', 'granular' or 'camera'")


CAMERA_SHOT: tuple[float, float] = (4.0e-4, 4.0e-2)
"""Camera noise: shot-noise gain ``a`` (raw variance per unit signal, ``var = a x + b``) at severity
0 and 1 (before the jitter). The severity moves ``sqrt(a)`` linearly, as it moves the Gaussian's
sigma, so a severity means about as much noise in every model; the paper's log-uniform spread comes
as a seeded, severity-independent jitter of ``log a`` uniform in +- :data:`CAMERA_JITTER`."""
CAMERA_JITTER: float = 0.4


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """Inverse sRGB transfer curve (display values in [0, 1] to linear light), float32.

    Examples:
        >>> import numpy as np
        >>> [round(float(v), 4) for v in srgb_to_linear(np.array([0.0, 0.5, 1.0]))]
        [0.0, 0.214, 1.0]
    """
    x = np.clip(np.asarray(x, np.float32), 0.0, 1.0)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """sRGB transfer curve (linear light to display values), float32; negatives clip to black.

    Examples:
        >>> import numpy as np
        >>> x = np.array([0.0, 0.25, 0.5, 1.0], np.float32)
        >>> bool(np.allclose(srgb_to_linear(linear_to_srgb(x)), x, atol=1e-6))
        True
    """
    x = np.maximum(np.asarray(x, np.float32), 0.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1.0 / 2.4) - 0.055).astype(np.float32)


def bayer_masks(h: int, w: int) -> np.ndarray:
    """(H, W, 3) float32 0/1 masks of an RGGB Bayer pattern (R at even row and column).

    Examples:
        >>> bayer_masks(2, 2)[..., 1].tolist()
        [[0.0, 1.0], [1.0, 0.0]]
    """
    yy, xx = np.mgrid[0:h, 0:w]
    ey, ex = yy % 2 == 0, xx % 2 == 0
    return np.stack([ey & ex, ey != ex, ~ey & ~ex], axis=2).astype(np.float32)


def demosaic_bilinear(mosaic: np.ndarray) -> np.ndarray:
    """Bilinear demosaic of an (H, W) RGGB mosaic to (H, W, 3) float32 (a linear operator).

    Examples:
        >>> import numpy as np
        >>> flat = (bayer_masks(6, 6) * np.array([0.2, 0.5, 0.8], np.float32)).sum(2)
        >>> bool(np.allclose(demosaic_bilinear(flat), [0.2, 0.5, 0.8]))
        True
    """
    mosaic = np.asarray(mosaic, np.float32)
    planes = mosaic[..., None] * bayer_masks(*mosaic.shape[:2])
    k_rb = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], np.float32) / 4.0
    k_g = np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]], np.float32) / 4.0
    # reflect-101 keeps the Bayer phase at the border (index -1 mirrors to 1, same parity)
    return np.stack(
        [cv2.filter2D(np.ascontiguousarray(planes[..., c]), -1, k, borderType=cv2.BORDER_REFLECT_101) for c, k in enumerate((k_rb, k_g, k_rb))],
        axis=2,
    )


def _random_ccm(rng: np.random.Generator) -> np.ndarray:
    """A mild camera-to-sRGB colour correction matrix: rows sum to 1 (grey stays grey), diagonal
    1.2 .. 1.6, the rest split unevenly between the two negative off-diagonal terms."""
    diag = rng.uniform(1.2, 1.6, 3)
    split = rng.uniform(0.2, 0.8, 3)
    m = np.zeros((3, 3), np.float64)
    for i in range(3):
        j, k = (i + 1) % 3, (i + 2) % 3
        m[i, i] = diag[i]
        m[i, j] = -(diag[i] - 1.0) * split[i]
        m[i, k] = -(diag[i] - 1.0) * (1.0 - split[i])
    return m


def _camera_residual(image: np.ndarray, z: np.ndarray, p: Params) -> np.ndarray:
    """sRGB residual that camera noise adds to ``image`` for the unit normal mosaic field ``z``."""
    cam2rgb = np.asarray(p["ccm"], np.float64)
    rgb2cam = np.linalg.inv(cam2rgb).astype(np.float32)
    gains = np.array([p["rgb_gain"] * p["wb_gains"][0], p["rgb_gain"], p["rgb_gain"] * p["wb_gains"][1]], np.float32)
    # unprocess: sRGB -> linear -> camera RGB (inverse CCM) -> raw (inverse white balance and gain)
    raw = np.clip((srgb_to_linear(image) @ rgb2cam.T) / gains, 0.0, 1.0)
    h, w = image.shape[:2]
    mosaic = (raw * bayer_masks(h, w)).sum(axis=2)
    # heteroscedastic shot + read noise on the Bayer sites, spread by the demosaic; the signal itself
    # is kept exact (a good demosaic recovers it; bilinear zippers would be an artefact of their own)
    noise = demosaic_bilinear(z * np.sqrt(p["shot"] * mosaic + p["read"]).astype(np.float32))
    ccm = cam2rgb.T.astype(np.float32)
    noisy = linear_to_srgb(((raw + noise) * gains) @ ccm)
    clean = linear_to_srgb((raw * gains) @ ccm)
    res = noisy - clean
    if p["chroma_nr"] > 0:  # in-camera chroma noise reduction: colour noise turns into soft blotches
        y = res @ LUMA
        chroma = cv2.GaussianBlur(np.ascontiguousarray(res - y[..., None]), (0, 0), p["chroma_nr"], borderType=cv2.BORDER_REFLECT_101)
        res = y[..., None] + chroma
    if p.get("luma_nr", 0.0) > 0:  # in-camera luminance noise reduction: the grain turns into mottle
        y = res @ LUMA
        smooth = cv2.GaussianBlur(np.ascontiguousarray(y), (0, 0), p["luma_nr"], borderType=cv2.BORDER_REFLECT_101)
        res = res + (smooth - y)[..., None]
    return res


CAMERA_LUMA_NR: tuple[float, float] = (1.0, 2.0)
"""Camera noise with ``luma_nr=True``: range of the Gaussian sigma (px) that smooths the luminance
residual. At 1.5-2 px the share of the noise left after 8x8 averaging (0.60-0.67, the camera's JPEG
on or off) reaches that of real high-ISO camera JPEGs (polyu 0.59, cc_nam 0.44; white noise
0.125, the model without it 0.37-0.43): ``scripts/camera_noise_gap.py``. Not yet used by the
shipped perception network (``restora train perception --camera-luma-nr-share``)."""


def _camera_noise(
    image: np.ndarray, severity: float, rng: np.random.Generator, jpeg: bool | None, luma_nr: bool | float | None = None
) -> tuple[np.ndarray, Params]:
    # Brooks et al. 2019 (unprocessing) / CBDNet: invert gamma, CCM and white balance, mosaic
    # (RGGB), heteroscedastic shot + read noise, demosaic, redo white balance, CCM and gamma, the
    # camera's chroma noise reduction, and half the time its JPEG. Every draw comes first and none
    # depends on the severity, which only moves the shot gain (and the read noise tied to it).
    jitter = float(rng.uniform(-1.0, 1.0))
    read_dev = float(np.clip(rng.normal(0.0, 0.26), -0.52, 0.52))
    ccm = _random_ccm(rng)
    wb = (float(rng.uniform(1.5, 2.2)), float(rng.uniform(1.3, 1.9)))  # red, blue gains
    rgb_gain = float(rng.uniform(1.0, 1.25))
    chroma_nr = float(rng.uniform(1.2, 2.4))
    drawn_jpeg = bool(rng.random() < 0.5)
    drawn_quality = int(rng.integers(75, 96))
    z = rng.standard_normal(image.shape[:2], dtype=np.float32)
    lo, hi = np.sqrt(CAMERA_SHOT)
    log_shot = float(2.0 * np.log(lo + (hi - lo) * severity) + CAMERA_JITTER * jitter)
    p: Params = {
        "model": "camera",
        "shot": float(np.exp(log_shot)),
        "read": float(np.exp(2.18 * log_shot + 1.2 + read_dev)),  # the paper's read-vs-shot line
        "ccm": ccm.tolist(),
        "wb_gains": list(wb),
        "rgb_gain": rgb_gain,
        "chroma_nr": chroma_nr,
    }
    if luma_nr is True:  # from its own stream: every other draw stays as without it
        p["luma_nr"] = float(_substream(rng, "camera-luma-nr").uniform(*CAMERA_LUMA_NR))
    elif luma_nr not in (None, False):
        if not float(luma_nr) >= 0.0:
            raise ValueError(f"luma_nr must be True, False or a sigma >= 0 in px, got {luma_nr!r}")
        p["luma_nr"] = float(luma_nr)
    out = image + _camera_residual(image, z, p)
    use_jpeg = drawn_jpeg if jpeg is None else bool(jpeg)
    if use_jpeg:
        out = jpeg_roundtrip(out, drawn_quality)
    out = np.clip(out, 0.0, 1.0)
    grey = np.full((64, 64, 3), 0.5, np.float32)
    sigma = float(np.std(_camera_residual(grey, _camera_grey_field(), p))) * 255.0
    return out, {
        "model": "camera",
        "sigma": round(sigma, 4),
        "sigma_image": round(float(np.std(out - image)) * 255.0, 4),
        "shot": round(p["shot"], 8),
        "read": round(p["read"], 10),
        "read_sigma": round(float(np.sqrt(p["read"])) * 255.0, 4),
        "ccm": [[round(float(v), 4) for v in row] for row in ccm],
        "wb_gains": [round(v, 4) for v in wb],
        "rgb_gain": round(rgb_gain, 4),
        "chroma_nr": round(chroma_nr, 4),
        **({"luma_nr": round(p["luma_nr"], 4)} if "luma_nr" in p else {}),
        "pattern": "RGGB",
        "jpeg_quality": drawn_quality if use_jpeg else None,
    }


_GREY_FIELD: list[np.ndarray] = []


def _camera_grey_field() -> np.ndarray:
    """The fixed unit-normal 64 x 64 mosaic field camera noise's ``sigma`` is measured with."""
    if not _GREY_FIELD:
        _GREY_FIELD.append(np.random.default_rng(_code("camera-sigma")).standard_normal((64, 64), dtype=np.float32))
    return _GREY_FIELD[0]


def _grain_field(rng: np.random.Generator, shape: tuple[int, ...], fwhm: float) -> np.ndarray:
    """Unit-variance, stationary Gaussian noise low-passed by a Gaussian of ``fwhm`` px."""
    sig = fwhm / 2.3548
    r = int(np.ceil(3.0 * sig))
    k = cv2.getGaussianKernel(2 * r + 1, sig, cv2.CV_32F)
    h, w = shape[:2]
    white = rng.standard_normal((h + 2 * r, w + 2 * r, *shape[2:]), dtype=np.float32)  # pad: no border effects
    field = cv2.sepFilter2D(white, -1, k, k, borderType=cv2.BORDER_REFLECT_101)[r : r + h, r : r + w]
    return field / np.float32(np.sum(k.astype(np.float64) ** 2))  # std of white noise after k (x) k


@register("motion_blur", "camera-motion blur: a straight line (default) or a hand-held shake path (model=shake)")
def _motion_blur(
    image: np.ndarray, severity: float, rng: np.random.Generator, angle: float | None = None, model: str = "linear"
) -> tuple[np.ndarray, Params]:
    length = 5.0 + 20.0 * severity
    drawn = float(rng.uniform(0.0, 180.0))
    ang = drawn if angle is None else float(angle) % 180.0
    if model == "shake":
        if angle is not None:
            raise ValueError("motion_blur option angle= is for model='linear' only (a shake path has no one angle)")
        out = _filter(image, shake_kernel(length, rng))
        return out, {"model": model, "length": round(length, 4)}
    if model != "linear":
        raise ValueError(f"motion_blur model must be 'linear' or 'shake', got {model!r}")
    out = _filter(image, motion_kernel(length, ang))
    return out, {"length": round(length, 4), "angle": round(ang, 4)}


@register("defocus", "out-of-focus (disc) blur")
def _defocus(image: np.ndarray, severity: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    radius = 1.5 + 4.5 * severity
    return _filter(image, disc_kernel(radius)), {"radius": round(radius, 4)}


@register("haze", "atmospheric scattering with a depth proxy")
def _haze(image: np.ndarray, severity: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    h, w = image.shape[:2]
    beta = 0.5 + 2.5 * severity
    a0 = float(rng.uniform(0.82, 0.95))
    tint = float(rng.uniform(0.02, 0.06))  # blue-ish: red and green a little below blue
    airlight = np.array([a0 * (1 - 1.6 * tint), a0 * (1 - 0.8 * tint), a0], np.float32)
    ramp = np.linspace(1.0, 0.0, h, dtype=np.float32)[:, None] * np.ones((1, w), np.float32)
    mins = image.min(axis=2)
    s = max(2.0, 0.06 * min(h, w))
    small = cv2.GaussianBlur(mins, (0, 0), s, borderType=cv2.BORDER_REFLECT_101)
    lo, hi = np.percentile(small, [1, 99])
    prox = np.clip((small - lo) / max(hi - lo, 1e-3), 0, 1) if hi - lo > 1e-3 else np.zeros_like(small)
    depth = 0.2 + 0.8 * (0.6 * ramp + 0.4 * prox)
    t = np.exp(-beta * depth)[..., None].astype(np.float32)
    out = image * t + airlight * (1.0 - t)
    return out, {
        "beta": round(beta, 4),
        "airlight": [round(float(v), 4) for v in airlight],
        "depth": "0.6 vertical ramp (top far) + 0.4 smoothed min-channel, in [0.2, 1]",
        "mean_transmission": round(float(t.mean()), 4),
    }


@register("rain", "synthetic rain streaks")
def _rain(
    image: np.ndarray, severity: float, rng: np.random.Generator, splashes: bool = False
) -> tuple[np.ndarray, Params]:
    h, w = image.shape[:2]
    scale = max(0.5, min(h, w) / 400.0)
    tilt = float(np.clip(rng.normal(0.0, 12.0), -30.0, 30.0))  # degrees from vertical
    length = (10.0 + 25.0 * severity) * scale
    density = 0.002 + 0.010 * severity
    brightness = 0.55 + 0.35 * severity
    u = rng.random((2, h, w), dtype=np.float32)  # drawn once: more severity -> a superset of drops
    strength = rng.uniform(0.4, 1.0, (2, h, w)).astype(np.float32)
    layers = []
    for i, (frac, lf) in enumerate(((0.6, 1.0), (0.4, 0.6))):
        seeds = np.where(u[i] < density * frac, strength[i], 0).astype(np.float32)
        k = motion_kernel(length * lf, 90.0 + tilt + (i - 0.5) * 3.0, peak_one=True)
        streak = cv2.filter2D(seeds, -1, k, borderType=cv2.BORDER_CONSTANT)
        layers.append(streak)
    streaks = np.clip(layers[0] + 0.8 * layers[1], 0, 1)
    streaks = cv2.GaussianBlur(streaks, (0, 0), 0.6)
    streaks = np.clip(streaks * brightness * 1.6, 0, 1)
    layer = streaks
    extra: Params = {}
    if splashes:  # their own stream: the streaks above are the same bytes with or without them
        splash, extra = rain_splashes(h, w, severity, _substream(rng, "rain-splashes"), 90.0 + tilt)
        layer = np.maximum(streaks, splash)
    color = np.array([0.92, 0.93, 0.96], np.float32)
    out = 1.0 - (1.0 - image) * (1.0 - layer[..., None] * color)
    return out, {
        "angle": round(90.0 + tilt, 4),
        "length": round(length, 4),
        "density": round(density, 5),
        "brightness": round(brightness, 4),
        "coverage": round(float((streaks > 0.1).mean()), 4),
        **extra,
    }


SPLASH_DENSITY: tuple[float, float] = (0.0004, 0.0020)
"""Rain splashes per pixel (at the 400-px reference size) at severity 0 and 1."""


def rain_splashes(
    h: int, w: int, severity: float, rng: np.random.Generator, angle: float = 90.0
) -> tuple[np.ndarray, Params]:
    """Splash layer (H, W) in [0, 1] of rain drops and spatter, and its parameters.

    Candidates (position, size, shape, strength) are all drawn up front, independently of
    ``severity``, and a candidate shows when its own uniform draw is below the severity's share of
    the maximum density (:data:`SPLASH_DENSITY`), so a higher severity shows a superset, a little
    brighter (peak 0.7 .. 1.0 x a strength of 0.5 .. 1). Sizes are at 400 px and scale with the
    image's short side (not below 0.75 x). 65 % are drops: anti-aliased ellipses, brighter in the
    middle, 2 .. 4.4 px across and 1.2 .. 2.5 times as long, elongated along the rain ``angle``
    (degrees as for the streaks, +- 15). 35 % are spatter: a small core and 3 .. 6 droplets of
    radius 0.5 .. 1.2 px thrown 2.5 .. 7 px around it. The layer is blurred by 0.5 px.

    Examples:
        >>> import numpy as np
        >>> lo, p = rain_splashes(96, 96, 0.2, np.random.default_rng(0))
        >>> hi, q = rain_splashes(96, 96, 0.9, np.random.default_rng(0))
        >>> bool((hi >= lo).all()), p["splash_count"] <= q["splash_count"]
        (True, True)
    """
    size = max(0.75, min(h, w) / 400.0)
    lo, hi = SPLASH_DENSITY
    density = lo + (hi - lo) * severity
    n_max = int(np.ceil(hi * h * w / (size * size)))
    cx, cy = rng.uniform(0, w, n_max), rng.uniform(0, h, n_max)
    u = rng.random(n_max)
    spatter = rng.random(n_max) < 0.35
    minor = rng.uniform(1.0, 2.2, n_max) * size  # semi-axes
    major = minor * rng.uniform(1.2, 2.5, n_max)
    theta = angle + rng.normal(0.0, 15.0, n_max)
    strength = rng.uniform(0.5, 1.0, n_max)
    n_sat = rng.integers(3, 7, n_max)
    sat_dir = rng.uniform(0, 2 * np.pi, (n_max, 6))
    sat_dist = rng.uniform(2.5, 7.0, (n_max, 6)) * size
    sat_rad = rng.uniform(0.5, 1.2, (n_max, 6)) * size
    gain = 0.7 + 0.3 * severity
    layer = np.zeros((h, w), np.float32)
    shown = np.nonzero(u < density / hi)[0]
    for i in shown:
        if spatter[i]:
            _stamp(layer, cx[i], cy[i], 0.6 * minor[i] + 0.3, 0.6 * minor[i] + 0.3, 0.0, strength[i] * gain)
            for j in range(n_sat[i]):
                sx = cx[i] + sat_dist[i, j] * np.cos(sat_dir[i, j])
                sy = cy[i] + sat_dist[i, j] * np.sin(sat_dir[i, j])
                _stamp(layer, sx, sy, sat_rad[i, j], sat_rad[i, j], 0.0, 0.85 * strength[i] * gain)
        else:
            _stamp(layer, cx[i], cy[i], major[i], minor[i], theta[i], strength[i] * gain)
    layer = cv2.GaussianBlur(layer, (0, 0), 0.5)
    return np.clip(layer, 0, 1), {
        "splashes": True,
        "splash_density": round(density, 6),
        "splash_count": len(shown),
        "splash_spatter": int(spatter[shown].sum()),
        "splash_coverage": round(float((layer > 0.1).mean()), 4),
    }


def _stamp(canvas: np.ndarray, cx: float, cy: float, a: float, b: float, theta: float, value: float) -> None:
    """Max-blend an anti-aliased, centre-bright ellipse (semi-axes ``a`` >= ``b`` px, major axis at
    ``theta`` degrees counter-clockwise on screen) of peak ``value`` into ``canvas`` in place."""
    h, w = canvas.shape
    r = int(np.ceil(max(a, b))) + 2
    x0, x1 = max(0, int(cx) - r), min(w, int(cx) + r + 1)
    y0, y1 = max(0, int(cy) - r), min(h, int(cy) + r + 1)
    if x0 >= x1 or y0 >= y1:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    dx, dy = xx + 0.5 - cx, yy + 0.5 - cy
    t = np.deg2rad(theta)
    along = dx * np.cos(t) - dy * np.sin(t)
    across = dx * np.sin(t) + dy * np.cos(t)
    rr = np.sqrt((along / a) ** 2 + (across / b) ** 2)
    cover = np.clip((1.0 - rr) * b + 0.5, 0, 1)  # ~1 px anti-aliased rim
    shade = 0.75 + 0.25 * np.clip(1.0 - rr, 0, 1)
    patch = canvas[y0:y1, x0:x1]
    np.maximum(patch, (value * cover * shade).astype(np.float32), out=patch)


@register("dark", "under-exposure: gain, gamma and dim-light noise")
def _dark(image: np.ndarray, severity: float, rng: np.random.Generator, noise: bool = True) -> tuple[np.ndarray, Params]:
    gain = 0.55 - 0.40 * severity
    gamma = 1.3 + 1.2 * severity
    dim = gain * np.power(np.clip(image, 0, 1), gamma)
    peak = 1500.0 - 1100.0 * severity  # photons at full scale: fewer in dimmer scenes
    read = (0.8 + 1.2 * severity) / 255.0
    if not noise:  # the dimming alone, for a noise model that comes after it (a camera's, at low exposure)
        return dim.astype(np.float32), {"gain": round(gain, 4), "gamma": round(gamma, 4), "noise": False, "noise_sigma": 0.0}
    shot = rng.poisson(dim.astype(np.float64) * peak) / peak
    out = shot + rng.standard_normal(image.shape) * read
    return out.astype(np.float32), {
        "gain": round(gain, 4),
        "gamma": round(gamma, 4),
        "peak": round(peak, 2),
        "read_sigma": round(read * 255.0, 4),
        "noise_sigma": round(float(np.std(out - dim)) * 255.0, 4),  # the dim-light noise it added (0-255)
    }


@register("jpeg", "JPEG compression artefacts")
def _jpeg(
    image: np.ndarray, severity: float, rng: np.random.Generator, model: str = "jpeg"
) -> tuple[np.ndarray, Params]:
    quality = round(60 - 50 * severity)
    if model == "jpeg":
        return jpeg_roundtrip(image, quality), {"quality": quality}
    if model == "web":
        # an image as a web platform serves it: downscaled, compressed, perhaps re-compressed on a
        # re-upload, and shown back at the original size. Every draw is independent of the
        # severity, so a higher severity only lowers the qualities.
        h, w = image.shape[:2]
        factor = float(rng.uniform(0.5, 0.9))
        reupload = bool(rng.random() < 0.5)
        shift = int(rng.integers(3, 11)) * (1 if rng.random() < 0.5 else -1)
        sw, sh = max(1, round(w * factor)), max(1, round(h * factor))
        small = jpeg_roundtrip(cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA), quality)
        qualities = [quality]
        if reupload:
            qualities.append(int(np.clip(quality + shift, 5, 95)))
            small = jpeg_roundtrip(small, qualities[1])
        out = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        return out, {
            "model": model,
            "quality": quality,
            "qualities": qualities,
            "factor": round(factor, 4),
            "small_width": sw,
            "small_height": sh,
        }
    raise ValueError(f"unknown jpeg model {model!r}; use 'jpeg' or 'web'")


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode ``image`` as JPEG (OpenCV, 4:2:0) at ``quality`` and decode it back.

    Examples:
        >>> import numpy as np
        >>> jpeg_roundtrip(np.zeros((16, 16, 3), np.float32), 30).shape
        (16, 16, 3)
    """
    u8 = (np.clip(image, 0, 1) * 255.0 + 0.5).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", u8[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    dec = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return dec[..., ::-1].astype(np.float32) / 255.0


@register("low_res", "lost resolution: area downscale then bicubic upscale")
def _low_res(image: np.ndarray, severity: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    h, w = image.shape[:2]
    factor = 1.5 + 2.5 * severity
    sw, sh = max(1, round(w / factor)), max(1, round(h / factor))
    small = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
    out = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return out, {"factor": round(factor, 4), "small_width": sw, "small_height": sh}


# -- RealRestorer's other types: synthesis only for now (perception and tools do not know them yet)
@register("reflection", "reflection off glass: a blurred, shifted second scene added on top", before="dark")
def _reflection(image: np.ndarray, severity: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    h = image.shape[0]
    # No second photo is available offline: the reflected layer is this scene flipped both ways,
    # shifted and defocused (reflections are rarely in focus), as in common synthesis recipes.
    layer = image[::-1, ::-1]
    dy, dx = (int(v) for v in rng.integers(-max(1, h // 4), max(2, h // 4), 2))
    layer = np.roll(layer, (dy, dx), axis=(0, 1))
    blur = 1.0 + 3.0 * float(rng.random())
    layer = cv2.GaussianBlur(np.ascontiguousarray(layer), (0, 0), blur)
    alpha = 0.12 + 0.38 * severity
    out = image * (1.0 - 0.5 * alpha) + layer * alpha
    return out, {"alpha": round(alpha, 4), "blur": round(blur, 4), "shift": [dy, dx]}


@register("flare", "lens flare: veiling glare around a light source and a chain of ghosts", before="motion_blur")
def _flare(image: np.ndarray, severity: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    h, w = image.shape[:2]
    size = float(min(h, w))
    sx, sy = float(rng.uniform(0.1, 0.9) * w), float(rng.uniform(0.05, 0.45) * h)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = (xx - sx) ** 2 + (yy - sy) ** 2
    strength = 0.5 + 0.5 * severity
    glow = strength * np.exp(-r2 / (2 * (0.1 * size) ** 2)) + 0.45 * strength * np.exp(-r2 / (2 * (0.35 * size) ** 2))
    flare = glow[..., None] * np.array([1.0, 0.95, 0.85], np.float32)
    cx, cy = w / 2.0, h / 2.0
    ghosts = []
    for t in (0.6, 1.2, 1.5, 1.9):  # ghosts sit on the line through the source and the centre
        gx, gy = sx + (cx - sx) * t, sy + (cy - sy) * t
        radius = float(rng.uniform(0.04, 0.12) * size)
        tint = rng.uniform(0.5, 1.0, 3).astype(np.float32)
        disc = np.clip(radius - np.sqrt((xx - gx) ** 2 + (yy - gy) ** 2), 0, 1.5) / 1.5
        flare = flare + (0.45 * strength * disc)[..., None] * tint
        ghosts.append([round(gx, 1), round(gy, 1), round(radius, 2)])
    flare = np.clip(flare, 0, 1)
    out = 1.0 - (1.0 - image) * (1.0 - flare)
    return out, {"source": [round(sx, 1), round(sy, 1)], "strength": round(strength, 4), "ghosts": ghosts}


@register("gaussian_blur", "isotropic Gaussian blur", before="noise")
def _gaussian_blur(image: np.ndarray, severity: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    sigma = 0.8 + 3.2 * severity
    return cv2.GaussianBlur(image, (0, 0), sigma), {"sigma": round(sigma, 4)}


@register("moire", "moire: colour interference bands from two beating gratings", before="noise")
def _moire(image: np.ndarray, severity: float, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    period = float(rng.uniform(2.2, 3.2))  # near the sampling limit, as a screen photographed is
    angle = np.deg2rad(float(rng.uniform(0, 180)))
    skew = np.deg2rad(float(rng.uniform(1.5, 4.0)))
    u1 = xx * np.cos(angle) + yy * np.sin(angle)
    u2 = xx * np.cos(angle + skew) + yy * np.sin(angle + skew)
    beat = np.cos(2 * np.pi * u1 / period) * np.cos(2 * np.pi * u2 / (period * 1.03))
    beat = cv2.GaussianBlur(beat, (0, 0), 1.2)  # what the sensor's aperture leaves of the grids
    beat = beat / (np.abs(beat).max() + 1e-6)
    amplitude = 0.06 + 0.24 * severity
    phases = np.array([0.0, 2.1, 4.2], np.float32)  # colour moire: channels beat out of phase
    pattern = np.stack([np.cos(np.arccos(np.clip(beat, -1, 1)) + p) for p in phases], axis=2)
    out = image * (1.0 + amplitude * pattern)
    return out, {"period": round(period, 4), "amplitude": round(amplitude, 4), "angle": round(float(np.rad2deg(angle)), 2)}


# -- helpers -----------------------------------------------------------------------------------
def _code(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


def _substream(rng: np.random.Generator, name: str) -> np.random.Generator:
    """A generator derived from ``rng``'s seed and ``name``; ``rng``'s own stream is untouched."""
    ss = rng.bit_generator.seed_seq
    return np.random.default_rng(np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, _code(name))))


def _check_name(degradation: str | Degradation) -> str:
    name = str(degradation)
    if name not in DEGRADATIONS:
        close = difflib.get_close_matches(name, list(DEGRADATIONS), n=2, cutoff=0.5)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"unknown degradation {name!r}{hint} (known: {', '.join(list_degradations())})")
    return name


def _check_severity(severity: float) -> float:
    sev = float(severity)
    if not np.isfinite(sev) or sev < 0.0 or sev > 1.0:
        raise ValueError(f"severity must be in [0, 1], got {severity!r}")
    return sev


def _check_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        raise ValueError(f"expected a float (H, W, 3) RGB array in [0, 1], got shape {shape}")
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"expected a float image in [0, 1], got dtype {image.dtype}")
    return np.ascontiguousarray(image, dtype=np.float32)
