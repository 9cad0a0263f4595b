"""Shared pieces of the classical tools: colour conversions, a box-filter guided filter
(``cv2.ximgproc`` is not in headless OpenCV), non-local means without 8-bit loss, edge tapering,
boundary-aware deconvolution, blur estimation from the power spectrum, noise estimates, and the
dark-channel / CLAHE helpers of the dehazers. Blur kernels come from :mod:`restora.degrade`, so
tools and synthetic degradations agree on them.

Not a tool module (the leading underscore keeps it out of the registry). Everything here takes
and returns float32 arrays; images are (H, W, 3) RGB in [0, 1] unless a docstring says otherwise.

Examples:
    >>> import numpy as np
    >>> from restora.degrade import motion_kernel
    >>> from restora.tools._classical import deconvolve, guided_filter, rgb_to_luma
    >>> img = np.random.default_rng(0).random((64, 64, 3), dtype=np.float32)
    >>> guided_filter(rgb_to_luma(img), img, radius=4, eps=1e-2).shape
    (64, 64, 3)
    >>> deconvolve(img, motion_kernel(9, 30), "cg", iterations=5, balance=1e-3).shape
    (64, 64, 3)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import cv2
import numpy as np
from pydantic import Field
from scipy import fft

from restora.tools.base import ToolParams

# ITU-R BT.601 full-range YCbCr, as JPEG uses it.
_RGB2YCC = np.array(
    [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], np.float32
)
_YCC2RGB = np.linalg.inv(_RGB2YCC).astype(np.float32)


# -- colour -------------------------------------------------------------------------------------
def rgb_to_luma(image: np.ndarray) -> np.ndarray:
    """BT.601 luma (H, W) of an RGB image."""
    return np.ascontiguousarray(image @ _RGB2YCC[0], dtype=np.float32)


def rgb_to_ycbcr(image: np.ndarray) -> np.ndarray:
    """Full-range YCbCr with Cb, Cr centred on 0.5 (JPEG's convention), float32."""
    ycc = image @ _RGB2YCC.T
    ycc[..., 1:] += 0.5
    return ycc.astype(np.float32)


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_ycbcr` (not clipped)."""
    x = ycc.astype(np.float32, copy=True)
    x[..., 1:] -= 0.5
    return (x @ _YCC2RGB.T).astype(np.float32)


def to_u8(image: np.ndarray) -> np.ndarray:
    """Round float [0, 1] to uint8 (for OpenCV functions that only take 8 bits)."""
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def from_u8(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32) * np.float32(1.0 / 255.0)


def require_side(image: np.ndarray, minimum: int, what: str) -> None:
    """Raise ToolError when the image's short side is below ``minimum`` px."""
    from restora.errors import ToolError

    if min(image.shape[:2]) < minimum:
        raise ToolError(f"{what} needs an image of at least {minimum}x{minimum} px, got {image.shape[1]}x{image.shape[0]}")


def nlm_denoise(image: np.ndarray, h: float, h_color: float, search_window: int = 21) -> np.ndarray:
    """OpenCV's colour non-local means (``fastNlMeansDenoisingColored``, 7 px patches) with
    strengths in 0-255 units. OpenCV filters 8-bit CIELAB (converted as linear BGR); only the
    change the filter makes is applied to the float input, so rounding costs nothing where it
    changes nothing (worth ~0.8 dB on nearly clean photos)."""
    bgr = to_u8(image[..., ::-1])
    out = cv2.fastNlMeansDenoisingColored(bgr, None, float(h), float(h_color), 7, int(search_window) | 1)
    roundtrip = cv2.cvtColor(cv2.cvtColor(bgr, cv2.COLOR_LBGR2Lab), cv2.COLOR_Lab2LBGR)  # as OpenCV does
    change = from_u8(out[..., ::-1]) - from_u8(roundtrip[..., ::-1])
    return np.clip(image + change, 0.0, 1.0).astype(np.float32)


# -- guided filter (He, Sun & Tang 2010/2013), box-filter form ------------------------------------
def box(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window, reflecting at the borders."""
    k = 2 * int(radius) + 1
    return cv2.boxFilter(x, -1, (k, k), normalize=True, borderType=cv2.BORDER_REFLECT)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Edge-preserving smoothing of ``src`` steered by the grey ``guide`` (H, W).

    ``src`` may be (H, W) or (H, W, C); ``eps`` is the regularisation in squared intensity units
    (1e-3 keeps edges of ~0.03 contrast, 1e-1 smooths almost everything).
    """
    guide = np.ascontiguousarray(guide, dtype=np.float32)
    src = np.ascontiguousarray(src, dtype=np.float32)
    g = guide if src.ndim == 2 else guide[..., None]
    mean_i = box(guide, radius)
    var_i = box(guide * guide, radius) - mean_i * mean_i
    mean_p = box(src, radius)
    mean_ip = box(src * g, radius)
    mi = mean_i if src.ndim == 2 else mean_i[..., None]
    vi = var_i if src.ndim == 2 else var_i[..., None]
    a = (mean_ip - mi * mean_p) / (vi + eps)
    b = mean_p - a * mi
    return (box(a, radius) * g + box(b, radius)).astype(np.float32)


# -- deconvolution helpers ----------------------------------------------------------------------
def pad_for_fft(image: np.ndarray, pad: int) -> np.ndarray:
    """Reflect-pad by ``pad`` and make the result smoothly periodic by tapering its outer band
    towards the padded image's own blurred copy, so FFT deconvolution does not ring at edges."""
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    h, w = padded.shape[:2]
    # Circularly blur the padded image (wrap border) and blend it in near the outer edge.
    sigma = max(2.0, pad / 3.0)
    m = int(3 * sigma) + 1
    wrapped = cv2.copyMakeBorder(padded, m, m, m, m, cv2.BORDER_WRAP)
    blurred = cv2.GaussianBlur(wrapped, (0, 0), sigma)[m : m + h, m : m + w]
    ramp_y = _ramp(h, pad)
    ramp_x = _ramp(w, pad)
    alpha = np.outer(ramp_y, ramp_x).astype(np.float32)
    if padded.ndim == 3:
        alpha = alpha[..., None]
    return (alpha * padded + (1.0 - alpha) * blurred).astype(np.float32)


def _ramp(n: int, width: int) -> np.ndarray:
    r = np.ones(n, np.float64)
    width = max(1, min(width, n // 2))
    t = 0.5 - 0.5 * np.cos(np.pi * (np.arange(width) + 0.5) / width)
    r[:width] = t
    r[n - width :] = t[::-1]
    return r


def deconvolve(
    image: np.ndarray, psf: np.ndarray, method: str, iterations: int = 30, balance: float = 1e-3
) -> np.ndarray:
    """Non-blind deconvolution of an RGB image by ``psf``, returned clipped to [0, 1].

    ``method``:
      - "cg": Laplacian-regularised least squares with unknown boundaries (Reeves 2005, "Fast
        image restoration without boundary artifacts"): the sharp image lives on a domain larger
        than the photo, only observed pixels enter the data term, solved by conjugate gradients
        preconditioned with the circulant (Wiener) inverse. No edge ringing, ~``iterations``
        steps of 4 FFTs. ``balance`` weighs the smoothness prior.
      - "wiener": scikit-image Wiener-Hunt with the same prior, on an edge-tapered copy (one
        step; rings a little at the borders for long kernels).
      - "rl": scikit-image Richardson-Lucy, ``iterations`` steps (more = sharper and noisier),
        on an edge-tapered copy.
    """
    psf = np.asarray(psf, np.float32)
    if method == "cg":
        return _cg_deconvolve(image, psf, float(balance), int(iterations))
    from skimage.restoration import richardson_lucy, wiener

    pad = int(max(psf.shape)) * 2 + 8
    x = pad_for_fft(image, pad)
    if method == "rl":
        x = np.clip(x, 0.0, 1.0)
        chans = [richardson_lucy(x[..., c], psf, num_iter=int(iterations), clip=False) for c in range(3)]
    elif method == "wiener":
        chans = [wiener(x[..., c], psf, float(balance), clip=False) for c in range(3)]
    else:
        raise ValueError(f"unknown deconvolution method {method!r}; use 'cg', 'wiener' or 'rl'")
    out = np.stack(chans, axis=2)[pad : pad + image.shape[0], pad : pad + image.shape[1]]
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def psf_to_otf(psf: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Real-FFT transfer function of ``psf`` for a (circular) image of ``shape``."""
    big = np.zeros(shape, np.float32)
    kh, kw = psf.shape
    big[:kh, :kw] = psf
    big = np.roll(big, (-(kh // 2), -(kw // 2)), axis=(0, 1))
    return fft.rfft2(big)


_LAPLACIAN = np.array([[0, -1, 0], [-1, 4, -1], [0, -1, 0]], np.float32)


def _cg_deconvolve(y: np.ndarray, psf: np.ndarray, lam: float, iterations: int) -> np.ndarray:
    h, w, c = y.shape
    p = max(psf.shape) // 2 + 2
    hh, ww = fft.next_fast_len(h + 2 * p, real=True), fft.next_fast_len(w + 2 * p, real=True)
    k = psf_to_otf(psf, (hh, ww))[..., None].astype(np.complex64)
    kc = np.conj(k)
    r2 = (np.abs(psf_to_otf(_LAPLACIAN, (hh, ww))) ** 2)[..., None].astype(np.float32)
    precond = (1.0 / (np.abs(k) ** 2 + lam * r2 + 1e-6)).astype(np.float32)
    mask = np.zeros((hh, ww, 1), np.float32)
    mask[p : p + h, p : p + w] = 1.0
    observed = np.zeros((hh, ww, c), np.float32)
    observed[p : p + h, p : p + w] = y

    def f(x: np.ndarray) -> np.ndarray:
        return fft.rfft2(x, axes=(0, 1), workers=-1)

    def fi(x: np.ndarray) -> np.ndarray:
        return fft.irfft2(x, s=(hh, ww), axes=(0, 1), workers=-1)

    def normal_op(x: np.ndarray) -> np.ndarray:  # (K^T M K + lam L^T L) x
        spec = f(x)
        return fi(kc * f(mask * fi(spec * k)) + lam * r2 * spec)

    rhs = fi(kc * f(observed))
    x = cv2.copyMakeBorder(y, p, hh - h - p, p, ww - w - p, cv2.BORDER_REFLECT).astype(np.float32)
    r = rhs - normal_op(x)
    z = fi(f(r) * precond)
    d = z.copy()
    rz = float(np.vdot(r, z))
    for _ in range(iterations):
        ad = normal_op(d)
        dad = float(np.vdot(d, ad))
        if dad <= 0 or rz <= 0:
            break
        alpha = rz / dad
        x += alpha * d
        r -= alpha * ad
        z = fi(f(r) * precond)
        rz_new = float(np.vdot(r, z))
        d = z + (rz_new / rz) * d
        rz = rz_new
    return np.clip(x[p : p + h, p : p + w], 0.0, 1.0).astype(np.float32)


# -- noise and blur estimation --------------------------------------------------------------------
def noise_sigma(image: np.ndarray) -> float:
    """Estimated Gaussian noise std of ``image``'s luma in 0-255 units (scikit-image's wavelet
    estimate). With independent noise per channel this is ~0.67 of the per-channel std."""
    if min(image.shape[:2]) < 8:
        return 0.0
    return _estimate_sigma(rgb_to_luma(image)) * 255.0


def noise_sigma_rgb(image: np.ndarray) -> float:
    """Estimated per-channel Gaussian noise std of an RGB image in 0-255 units (the mean over
    channels of scikit-image's wavelet estimate). It sees white noise only: the spatially
    correlated noise of real camera JPEGs reads far too low (~1 where ~8 works best)."""
    from skimage.restoration import estimate_sigma

    if min(image.shape[:2]) < 8:
        return 0.0
    return float(estimate_sigma(image, channel_axis=-1, average_sigmas=True)) * 255.0


def center_crop(image: np.ndarray, side: int) -> np.ndarray:
    h, w = image.shape[:2]
    y, x = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return image[y : y + side, x : x + side]


class SpectrumFit:
    """Fits ``P(f) = c |f|^-b |H(f)|^2 + N`` to an image's power spectrum for candidate blur
    transfer functions ``H``; the candidate with the smallest misfit is the blur's best guess.

    The periodogram is taken on a Hann-windowed centre crop of the luma and lightly smoothed;
    ``N`` is the white-noise floor from :func:`noise_sigma`; ``c`` and ``b`` are fitted per
    candidate (natural images fall off as ~|f|^-2, blur adds the kernel's zeros on top).
    """

    def __init__(self, image: np.ndarray, max_side: int = 384, points: int = 3000) -> None:
        g = rgb_to_luma(center_crop(image, max_side)).astype(np.float64)
        h, w = g.shape
        win = np.outer(np.hanning(h), np.hanning(w))
        spec = np.abs(np.fft.fft2((g - g.mean()) * win)) ** 2 / (win**2).sum()
        spec = np.fft.ifftshift(cv2.blur(np.fft.fftshift(spec).astype(np.float32), (3, 3)))
        fy = np.fft.fftfreq(h)[:, None] * np.ones((1, w))
        fx = np.ones((h, 1)) * np.fft.fftfreq(w)[None, :]
        fr = np.hypot(fx, fy)
        keep = (fr > 0.02) & (fr < 0.48) & (fy >= 0)  # half plane: the spectrum is symmetric
        idx = np.flatnonzero(keep)
        if idx.size > points:
            idx = np.random.default_rng(0).choice(idx, points, replace=False)
        self.fx, self.fy = fx.ravel()[idx], fy.ravel()[idx]
        self.fr = fr.ravel()[idx]
        self.log_p = np.log(spec.ravel()[idx].astype(np.float64) + 1e-12)
        self.log_f = np.log(self.fr)
        self.sigma = _estimate_sigma(g) if min(h, w) >= 16 else 0.0  # in [0, 1] units
        self.noise_floor = self.sigma**2
        self.gray = g

    def misfit(self, h2: np.ndarray) -> float:
        """Mean squared log-spectrum residual for the squared transfer function ``h2``."""
        from scipy.optimize import least_squares

        lp, lf, n = self.log_p, self.log_f, self.noise_floor + 1e-12

        def residual(p: np.ndarray) -> np.ndarray:
            return np.log(np.exp(p[0] - p[1] * lf) * h2 + n) - lp

        fit = least_squares(residual, [float(lp.mean() + 2.0 * lf.mean()), 2.0], method="lm")
        return float(np.mean(fit.fun**2))


def _estimate_sigma(gray: np.ndarray) -> float:
    from skimage.restoration import estimate_sigma

    return float(estimate_sigma(gray))


JPEG_DECONV_SIGMA: dict[str, tuple[float, ...]] = {
    "quality": (22.0, 37.0, 52.0, 67.0, 82.0),
    "as_is": (10.0, 8.0, 4.0, 4.0, 2.0),
    "deblocked": (6.0, 4.0, 2.0, 2.0, 1.0),
}
"""The noise std (0-255) at which :func:`deconv_balance` gives the best deconvolution of a blurred
picture that was then JPEG-compressed at ``quality`` (the centres of five quality bins), as it is
and after waifu2x de-blocked it. The JPEG error is not white noise, and the noise estimate reads
it (and waifu2x's smooth output) as 0.1-0.5: at that floor the deconvolution amplifies the error
into ripples, 2-6 dB below the best balance. Calibrated on the training pool
(``scripts/calibrate_deconv_jpeg.py``: 160 crops of cbsd68 and live1, 192 px, a disc or straight
kernel, quality 15-90, the true kernel; the sigma of best mean PSNR per bin), never on benchmark
photos."""


def jpeg_deconv_sigma(quality: float, deblocked: bool) -> float:
    """The deconvolution noise floor for a picture JPEG-compressed at ``quality``
    (:data:`JPEG_DECONV_SIGMA`, interpolated between its bins).

    Examples:
        >>> round(jpeg_deconv_sigma(45, deblocked=False), 2), round(jpeg_deconv_sigma(45, deblocked=True), 2)
        (5.87, 2.93)
    """
    table = JPEG_DECONV_SIGMA["deblocked" if deblocked else "as_is"]
    return float(np.interp(float(quality), JPEG_DECONV_SIGMA["quality"], table))


def noise_floor(evidence: Mapping[str, Any]) -> float | None:
    """``evidence["deconv_noise_floor"]`` (set by the planner where the input read as JPEG; see
    :func:`jpeg_deconv_sigma`) as a float, None when absent or zero."""
    v = evidence.get("deconv_noise_floor")
    return round(float(v), 2) if isinstance(v, (int, float)) and v > 0 else None


def deconv_balance(sigma255: float) -> float:
    """Regularisation weight for :func:`deconvolve` given a noise std in 0-255 units (tuned on
    Kodak crops with motion and disc kernels: the best weight grows with the noise variance,
    1e-4 at quantisation level, ~5e-3 at sigma 3, ~8e-2 at sigma 10)."""
    return float(np.clip(8e-4 * sigma255**2, 1e-4, 0.3))


# -- haze ----------------------------------------------------------------------------------------
def dark_channel(image: np.ndarray, patch: int) -> np.ndarray:
    """Minimum over colour channels, then over a ``patch`` x ``patch`` window (grey erosion)."""
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (patch, patch))
    return cv2.erode(image.min(axis=2).astype(np.float32), kernel, borderType=cv2.BORDER_REFLECT)


def dark_patch(shape: tuple[int, ...]) -> int:
    """Dark-channel patch side for an image of ``shape``: ~1/25 of the short side, odd, >= 7."""
    return max(7, round(min(shape[:2]) / 25) | 1)


def estimate_airlight(image: np.ndarray, dark: np.ndarray, fraction: float = 0.001) -> np.ndarray:
    """Mean colour of the pixels whose dark channel is in the top ``fraction`` (He et al.)."""
    flat = dark.ravel()
    n = max(1, int(flat.size * fraction))
    idx = np.argpartition(flat, flat.size - n)[-n:]
    airlight = image.reshape(-1, 3)[idx].mean(axis=0)
    return np.clip(airlight, 0.05, 1.0).astype(np.float32)


def haze_level(dark_norm: np.ndarray) -> float:
    """Haze density in [0, 1] from the dark channel of ``I / A``: its median is ~0.1-0.45 on
    clean photos (Kodak crops) and rises towards 1 as haze thickens. Used to remove less haze
    when it is thin, where the scene's own dark channel would otherwise be taken for haze."""
    return float(np.clip((np.median(dark_norm) - 0.35) / 0.5, 0.0, 1.0))


CLAHE_MIN_TILE = 32
"""Smallest CLAHE tile side in pixels: a picture under 256 px gets fewer than 8 x 8 tiles."""


def clahe_lightness(image: np.ndarray, clip: float, tiles: int | None = None) -> np.ndarray:
    """OpenCV CLAHE on CIELAB lightness, chroma untouched. CLAHE runs on 8-bit lightness (its
    clip limit means what it says only with 256 bins: on 16 bits any limit equalises fully);
    the change it makes is added to the float lightness, so no precision is lost.

    ``tiles`` per side; None: 8, fewer on a small picture so that no tile is under
    :data:`CLAHE_MIN_TILE` px. Tiles of 16 px equalise the contrast of every detail: on 128-px
    crops of 24 training-pool photos, darkened, the gamma curve's mild CLAHE cost 3.5 dB that way
    (its gain 6.7 dB with 8 x 8 tiles, 10.2 without CLAHE), where on 256-px crops it is neutral.

    Examples:
        >>> img = np.random.default_rng(0).random((128, 96, 3)).astype(np.float32)
        >>> clahe_lightness(img, 0.5).shape
        (128, 96, 3)
    """
    if tiles is None:
        tiles = int(np.clip(min(image.shape[:2]) // CLAHE_MIN_TILE, 1, 8))
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2Lab)
    l8 = np.clip(lab[..., 0] * 2.55 + 0.5, 0, 255).astype(np.uint8)
    eq = cv2.createCLAHE(clipLimit=float(clip), tileGridSize=(tiles, tiles)).apply(l8)
    lab[..., 0] = np.clip(lab[..., 0] + (eq.astype(np.float32) - l8.astype(np.float32)) / 2.55, 0.0, 100.0)
    return np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB), 0.0, 1.0).astype(np.float32)


class DeconvParams(ToolParams):
    """The solver settings the deblurring tools share; each adds its kernel's own fields."""

    method: Literal["cg", "wiener", "rl"] = Field(
        "cg",
        description="cg: regularised least squares without boundary ringing (best); wiener: one-step, "
        "edge-tapered; rl: Richardson-Lucy (more forgiving of a wrong kernel)",
    )
    balance: float | None = Field(
        None, ge=1e-5, le=1.0, description="smoothness weight (cg, wiener); None: from the estimated noise level"
    )
    iterations: int = Field(30, ge=1, le=300, description="iterations (cg, rl)")
    noise_floor: float | None = Field(
        None, ge=0.0, le=100.0,
        description="noise std (0-255) the balance assumes at least: the error a JPEG left, which the noise estimate misses",
    )


def sigma_strength_suggestions(params_cls: type[ToolParams], evidence) -> list[ToolParams]:
    """Denoiser candidates from ``evidence["noise_sigma"]``: as measured, weaker (x0.7), stronger (x1.4)."""
    sigma = evidence.get("noise_sigma")
    sigma = float(np.clip(sigma, 1.0, 100.0)) if sigma is not None and sigma > 0 else None
    return [params_cls(sigma=sigma), params_cls(sigma=sigma, strength=0.7), params_cls(sigma=sigma, strength=1.4)]
