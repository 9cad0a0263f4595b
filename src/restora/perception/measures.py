"""Raw no-reference measurements, one function per cue. Thresholds live in :mod:`.decide`.

Every function takes the float32 (H, W, 3) RGB image in [0, 1] (or its luma) and returns a dict
of plain floats. Which pixels each cue may look at:

* noise, JPEG, low resolution, blur: full-resolution pixels (crops or tiles of large images),
  because downscaling would hide exactly what they measure;
* haze, dark, rain: a downscaled copy (scene-level cues).

Estimators (with their sources):

* noise: weak-textured-patch PCA (Liu, Tanaka & Okutomi, "Single-image noise level estimation
  for blind denoising", IEEE TIP 2013): iteratively keep 7x7 patches whose gradient energy is
  below the level pure noise of the current sigma would reach, and take the smallest eigenvalue
  of their covariance. Patches containing clipped pixels are left out.
* JPEG: blockiness (mean absolute luma step across each of the 8 column/row offsets, at the
  strongest offset over the mean of the others) and the quantisation comb of the 8x8 DCT
  coefficients on that grid (Fan & de Queiroz, "Identification of bitmap compression history",
  IEEE TIP 2003): per coefficient, the largest step whose multiples hold clearly more of the
  coefficient values than any fractional offset; the IJG quality whose luma table matches
  those steps best is the quality estimate.
* blur: Welch power spectrum of the luma (Hann-windowed tiles), minus the white noise floor
  from the noise estimate. Whitened (rho^2 P) high-band over low-band energy per direction gives
  the sharpness, its minimum direction and its anisotropy. The power cepstrum (inverse FFT of the
  log spectrum) turns the kernel's spectral zeros into peaks: a linear motion kernel of length L
  at angle theta gives a point at distance ~L along theta, a disc of radius r a ring of radius
  ~1.9 r (Rom 1975; Cannon 1976).
* low resolution: Gallagher's periodicity of the mean absolute second derivative of rows and
  columns ("Detection of linear and cubic interpolation in JPEG compressed images", 2005);
  interpolation by a factor f leaves a peak at frequency 1/f in both directions.
* haze: dark channel prior statistics (He, Sun & Tang 2009), the black level (1st percentile
  of the min channel), saturation and contrast.
* dark: luma mean and percentiles.
* rain: bright thin ridges from the Hessian of the smoothed luma, histogrammed by orientation;
  rain streaks add bright ridges at one common near-vertical angle without the matching dark
  valleys that natural line textures (fences, masts) have.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

LUMA = np.array([0.299, 0.587, 0.114], np.float32)
QUANT_FLOOR = (1.0 / 255.0) ** 2 / 12.0  # 8-bit quantisation noise power, so float input reads like 8-bit


def luma(image: np.ndarray) -> np.ndarray:
    """Rec. 601 luma of an RGB float image.

    Examples:
        >>> luma(np.ones((2, 2, 3), np.float32)).round(3).tolist()
        [[1.0, 1.0], [1.0, 1.0]]
    """
    return np.ascontiguousarray(image @ LUMA, dtype=np.float32)


VIEW_MEDIAN = 0.25
"""A picture whose median luma is at least this is looked at as it is; a dimmer one is looked at
brightened (:func:`view_gain`). 0.25 is the 5th percentile of the median luma of the training
pool's 96 well-exposed photos (clean/cbsd68 + clean/live1: 1st 0.07, 5th 0.25, median 0.41), so
the view of 95% of them is the picture itself; no benchmark photo was used."""

VIEW_MAX_GAIN = 8.0
"""The most a dim picture is brightened to be looked at: three stops."""


def view_gain(luma_or_image: np.ndarray) -> float:
    """How much a dim picture is brightened to be looked at: ``VIEW_MEDIAN / median luma``, in
    [1, :data:`VIEW_MAX_GAIN`] (1 for a picture at least as bright as nearly every well-exposed photo).

    A person judges a dim photo, and what a step did to it, at the exposure they view it at: a
    denoiser's residual in a photo whose median is 12/255 is a few levels of grey, too faint for
    measures made on normally exposed pictures (and for the network trained on them), though the
    noise is plain once the photo is brightened.

    Examples:
        >>> view_gain(np.full((8, 8), 0.5, np.float32)), round(view_gain(np.full((8, 8), 0.05, np.float32)), 3)
        (1.0, 5.0)
    """
    y = luma(luma_or_image) if luma_or_image.ndim == 3 else luma_or_image
    return float(np.clip(VIEW_MEDIAN / max(float(np.median(y)), 1e-4), 1.0, VIEW_MAX_GAIN))


def to_view(x: np.ndarray, gain: float) -> np.ndarray:
    """``x`` (luma or RGB in [0, 1]) as viewed at ``gain``: the curve ``g x / (1 + (g - 1) x)``,
    whose slope is ``g`` at black and which keeps white at 1 (nothing clips; highlights are
    compressed). Gain 1 returns ``x`` itself.

    Examples:
        >>> [round(float(v), 3) for v in to_view(np.array([0.0, 0.05, 1.0], np.float32), 5.0)]
        [0.0, 0.208, 1.0]
    """
    if gain <= 1.0:
        return x
    return (gain * x / (1.0 + (gain - 1.0) * x)).astype(np.float32)


def view_slope(gain: float, at: float) -> float:
    """The slope of :func:`to_view`'s curve at luma ``at``: how much a small change there (noise,
    a residual) is magnified in the view.

    Examples:
        >>> round(view_slope(5.0, 0.05), 3), view_slope(1.0, 0.3)
        (3.472, 1.0)
    """
    return float(gain / (1.0 + (gain - 1.0) * at) ** 2)


def downscale(image: np.ndarray, max_side: int) -> np.ndarray:
    """Area-downscale so the longer side is at most ``max_side`` (no-op when already smaller).

    Examples:
        >>> downscale(np.zeros((100, 400, 3), np.float32), 200).shape
        (50, 200, 3)
    """
    h, w = image.shape[:2]
    s = max_side / max(h, w)
    if s >= 1.0:
        return image
    return cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def center_crop(a: np.ndarray, size: int) -> np.ndarray:
    """The central ``size`` x ``size`` part of ``a`` (or less where ``a`` is smaller).

    Examples:
        >>> center_crop(np.zeros((10, 30)), 8).shape
        (8, 8)
    """
    h, w = a.shape[:2]
    ch, cw = min(size, h), min(size, w)
    y, x = (h - ch) // 2, (w - cw) // 2
    return a[y : y + ch, x : x + cw]


def tiles(a: np.ndarray, size: int, max_tiles: int) -> list[np.ndarray]:
    """Up to ``max_tiles`` tiles of ``size`` px spread evenly over ``a`` (overlapping if needed).

    Examples:
        >>> len(tiles(np.zeros((512, 512)), 128, 16))
        16
    """
    h, w = a.shape[:2]
    t = min(size, h, w)
    n = max(1, int(np.floor(np.sqrt(max_tiles))))
    ny = min(n, max(1, int(np.ceil(4 * (h - t) / t)) + 1))  # overlap up to 3/4 of a tile
    nx = min(n, max(1, int(np.ceil(4 * (w - t) / t)) + 1))
    ys = np.unique(np.linspace(0, h - t, ny).astype(int))
    xs = np.unique(np.linspace(0, w - t, nx).astype(int))
    return [a[y : y + t, x : x + t] for y in ys for x in xs]


# -- noise -------------------------------------------------------------------------------------
_PATCH = 7
_TAU0 = 81.82076743668523  # gamma.ppf(1 - 1e-6, 45 / 2, scale=2 * 35 / 45): 7x7 patch gradient energy


def noise_sigma(image: np.ndarray, max_patches: int = 8000) -> dict[str, float]:
    """Noise standard deviation per channel in 0-255 units (Liu et al. 2013).

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> img = np.clip(0.5 + rng.normal(0, 10 / 255, (128, 128, 3)), 0, 1).astype(np.float32)
        >>> 9.5 < noise_sigma(img)["noise_sigma"] < 10.5     # true sigma 10
        True
    """
    h, w = image.shape[:2]
    if h * w > 320 * 320:  # tiles at full resolution: noise must not be averaged away
        parts = tiles(image, 128, 16)
    else:
        parts = [image]
    sig = []
    for c in range(3):
        xs, trs = [], []
        for part in parts:
            x, tr = _patches(part[..., c].astype(np.float64) * 255.0, max_patches // len(parts))
            xs.append(x)
            trs.append(tr)
        sig.append(_liu_sigma(np.concatenate(xs), np.concatenate(trs)))
    # the same estimate on a 2x area-downscaled copy, times 2: white noise reads the same, noise
    # correlated over neighbouring pixels (demosaiced, JPEG'd camera noise) reads higher
    small = cv2.resize(image, (max(1, w // 2), max(1, h // 2)), interpolation=cv2.INTER_AREA)
    coarse = []
    for c in range(3):
        x, tr = _patches(small[..., c].astype(np.float64) * 255.0, max_patches // 2)
        coarse.append(2.0 * _liu_sigma(x, tr))
    return {
        "noise_sigma": float(np.mean(sig)),
        "noise_sigma_coarse": float(np.mean(coarse)),
        "noise_sigma_r": float(sig[0]),
        "noise_sigma_g": float(sig[1]),
        "noise_sigma_b": float(sig[2]),
    }


def _patches(x: np.ndarray, target: int) -> tuple[np.ndarray, np.ndarray]:
    """7x7 patches of ``x`` (about ``target`` of them, on a regular grid) and their gradient energy."""
    h, w = x.shape
    if h < _PATCH + 2 or w < _PATCH + 2:
        return np.zeros((0, _PATCH * _PATCH)), np.zeros(0)
    ny, nx = h - _PATCH + 1, w - _PATCH + 1
    stride = max(1, int(np.ceil(np.sqrt(ny * nx / max(target, 1)))))
    X = sliding_window_view(x, (_PATCH, _PATCH))[::stride, ::stride].reshape(-1, _PATCH * _PATCH)
    gh = np.zeros_like(x)
    gh[:, 1:-1] = (x[:, 2:] - x[:, :-2]) / 2.0
    gv = np.zeros_like(x)
    gv[1:-1] = (x[2:] - x[:-2]) / 2.0
    # gradient energy inside each patch (interior columns for d/dx, interior rows for d/dy)
    box = {"anchor": (0, 0), "normalize": False, "borderType": cv2.BORDER_CONSTANT}
    sh = cv2.boxFilter(gh**2, -1, (_PATCH - 2, _PATCH), **box)
    sv = cv2.boxFilter(gv**2, -1, (_PATCH, _PATCH - 2), **box)
    tr = (sh[:ny:stride, 1 : nx + 1 : stride] + sv[1 : ny + 1 : stride, :nx:stride]).ravel()
    # mostly clipped patches (blown highlights, crushed shadows) under-read the noise: leave
    # them out; a few clipped pixels are kept, or heavy noise would select its own quiet draws
    clipped = ((x <= 0.5) | (x >= 254.5)).astype(np.float32)
    frac = cv2.boxFilter(clipped, -1, (_PATCH, _PATCH), **box)[:ny:stride, :nx:stride]
    ok = (frac < 0.25 * _PATCH * _PATCH).ravel()
    return X[ok], tr[ok]


def _liu_sigma(X: np.ndarray, tr: np.ndarray, iterations: int = 3) -> float:
    if len(X) < 2 * _PATCH * _PATCH:
        return 0.0

    def min_eig(Xs: np.ndarray) -> float:
        mu = Xs.mean(0)
        C = (Xs.T @ Xs - len(Xs) * np.outer(mu, mu)) / (len(Xs) - 1)
        return max(float(np.linalg.eigvalsh(C)[0]), 0.0)

    s2 = min_eig(X)
    n = len(X)
    for _ in range(iterations):
        sel = tr < s2 * _TAU0
        if sel.sum() < 2 * _PATCH * _PATCH:
            break
        s2 = min_eig(X[sel])
        n = int(sel.sum())
    # the smallest eigenvalue of a d-dim sample covariance of n white-noise patches sits near
    # sigma^2 (1 - sqrt(d / n))^2 (Marchenko-Pastur lower edge): undo that finite-sample bias
    return float(np.sqrt(s2) / (1.0 - np.sqrt(_PATCH * _PATCH / n)))


# -- JPEG --------------------------------------------------------------------------------------
_IJG_LUMA = np.array(
    [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
     14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
     18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
     49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99],
    np.float64,
).reshape(8, 8)  # fmt: skip
_COEFS = ((0, 0), (0, 1), (1, 0), (1, 1), (0, 2), (2, 0), (1, 2), (2, 1), (2, 2), (0, 3), (3, 0))
_FRACS = np.array(sorted({j / m for m in range(2, 7) for j in range(1, m)}))
_DCT8 = np.array(
    [[np.sqrt((1 if k == 0 else 2) / 8.0) * np.cos(np.pi * (2 * n + 1) * k / 16.0) for n in range(8)] for k in range(8)]
)  # orthonormal DCT-II matrix (JPEG's FDCT): coefficients = D @ block @ D.T


def _ijg_table(q: int) -> np.ndarray:
    s = 5000.0 / q if q < 50 else 200.0 - 2.0 * q
    return np.clip(np.floor((_IJG_LUMA * s + 50.0) / 100.0), 1, 255)


_TABLES = np.stack([_ijg_table(q) for q in range(1, 101)])


def jpeg_quality(image: np.ndarray) -> dict[str, float]:
    """Blockiness and estimated JPEG quality (100 when no quantisation comb is found).

    Examples:
        >>> from restora.degrade import jpeg_roundtrip
        >>> from skimage import data
        >>> img = data.astronaut()[:256, :256].astype(np.float32) / 255
        >>> jpeg_quality(img)["jpeg_quality"], jpeg_quality(jpeg_roundtrip(img, 40))["jpeg_quality"]
        (100.0, 40.0)
    """
    Y = luma(center_crop(image, 768)).astype(np.float64) * 255.0
    h, w = Y.shape
    if h < 32 or w < 32:
        return {"jpeg_quality": 100.0, "blockiness": 1.0, "jpeg_comb": 0.0}
    prof = []
    for d in (np.abs(np.diff(Y, axis=1)).mean(0), np.abs(np.diff(Y, axis=0)).mean(1)):
        n = len(d) // 8 * 8
        prof.append(d[:n].reshape(-1, 8).mean(0))
    mh, mv = prof
    order_x = np.argsort(mh)[::-1]
    order_y = np.argsort(mv)[::-1]
    bh = mh[order_x[0]] / max(np.delete(mh, order_x[0]).mean(), 1e-6)
    bv = mv[order_y[0]] / max(np.delete(mv, order_y[0]).mean(), 1e-6)
    blockiness = float(np.sqrt(bh * bv))
    best: tuple[int, np.ndarray] | None = None
    candidates = [(order_x[0], order_y[0])]
    if blockiness > 1.15:  # a second grid (re-compression, a crop) may hide behind the first
        candidates += [(order_x[1], order_y[0]), (order_x[0], order_y[1]), (order_x[1], order_y[1])]
    for kx, ky in candidates:
        D = _block_dct(Y, (int(kx) + 1) % 8, (int(ky) + 1) % 8)
        if len(D) < 16:
            continue
        steps = np.array([_quant_step(D[:, u, v]) for (u, v) in _COEFS], np.float64)
        n_ok = int((steps > 1).sum())
        if best is None or n_ok > int((best[1] > 1).sum()):
            best = (n_ok, steps)
        if n_ok >= 3:
            break
    if best is None or best[0] < 3:
        return {
            "jpeg_quality": 100.0,
            "blockiness": blockiness,
            "jpeg_comb": float(0 if best is None else best[0]),
        }
    steps = best[1]
    ok = steps > 1
    idx = np.array(_COEFS)[ok]
    pred = _TABLES[:, idx[:, 0], idx[:, 1]]
    err = np.abs(np.log(pred / steps[ok])).sum(1)
    quality = int(np.argmin(err)) + 1
    return {
        "jpeg_quality": float(quality),
        "blockiness": blockiness,
        "jpeg_comb": float(best[0]),
    }


def _block_dct(Y: np.ndarray, ox: int, oy: int) -> np.ndarray:
    Yc = Y[oy:, ox:]
    h, w = (Yc.shape[0] // 8) * 8, (Yc.shape[1] // 8) * 8
    B = Yc[:h, :w].reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3).reshape(-1, 8, 8) - 128.0
    return _DCT8 @ B @ _DCT8.T


def _quant_step(c: np.ndarray, smax: int = 100, threshold: float = 0.5, min_count: int = 16) -> int:
    """Largest step whose multiples hold clearly more values than any fractional offset."""
    res = 10.0
    a = np.abs(c)
    top = float(min(a.max(), smax * 8))
    nb = int(top * res) + 2
    hist = np.bincount(np.minimum((a * res).astype(int), nb - 1), minlength=nb)
    cs = np.concatenate([[0.0], np.cumsum(hist)])

    def count(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        lo_i = np.clip(np.round(lo * res).astype(int), 0, nb)
        hi_i = np.clip(np.round(hi * res).astype(int), 0, nb)
        return cs[hi_i] - cs[lo_i]

    S = np.arange(2, smax + 1, dtype=np.float64)
    K = np.floor(top / S).astype(int)
    S, K = S[K >= 1], K[K >= 1]
    if len(S) == 0:
        return 1
    W = np.maximum(0.6, 0.12 * S)
    si = np.repeat(np.arange(len(S)), K)
    kk = np.concatenate([np.arange(1, k + 1) for k in K])
    centre = kk * S[si]
    ws = W[si]
    A = np.bincount(si, weights=count(centre - ws, centre + ws), minlength=len(S))
    Bmax = np.zeros(len(S))
    for f in _FRACS:
        off = centre - (1.0 - f) * S[si]
        m = off >= S[si] / 2.0
        B = np.bincount(si[m], weights=count(off[m] - ws[m], off[m] + ws[m]), minlength=len(S))
        Bmax = np.maximum(Bmax, B)
    score = (A - Bmax) / np.maximum(A + Bmax, 1e-9)
    good = (score > threshold) & (A >= min_count)
    if not good.any():
        return 1
    return int(S[np.nonzero(good)[0][-1]])


# -- blur (spectrum and cepstrum) ----------------------------------------------------------------
_NPHI = 90  # 2-degree direction bins over [0, 180)


def welch_spectrum(Y: np.ndarray, size: int = 256, max_tiles: int = 9) -> np.ndarray:
    """Mean Hann-windowed periodogram over tiles, fftshifted; white noise of variance v gives v.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> round(float(welch_spectrum(rng.normal(0, 0.1, (256, 256))).mean()), 3)
        0.01
    """
    t = min(size, 1 << int(np.log2(min(Y.shape))))
    win = np.outer(np.hanning(t), np.hanning(t)).astype(np.float32)
    norm = float((win**2).sum())
    P = np.zeros((t, t), np.float64)
    parts = tiles(Y, t, max_tiles)
    for part in parts:
        p = part - part.mean()
        P += np.abs(np.fft.fft2(p * win)) ** 2 / norm
    return np.fft.fftshift(P / len(parts))


def _polar(A: np.ndarray, rmax: float, nr: int) -> tuple[np.ndarray, np.ndarray]:
    """Sample the centred square array ``A`` on (radius, direction) with 2-degree directions.

    Direction is measured counter-clockwise from +x as seen on screen (array rows go down).
    """
    t = A.shape[0]
    c0 = t // 2
    rho = np.linspace(0, rmax, nr + 1)[1:]
    phi = np.radians(np.arange(_NPHI) * (180.0 / _NPHI))
    rr, pp = np.meshgrid(rho, phi, indexing="ij")
    mx = (c0 + rr * np.cos(pp)).astype(np.float32)
    my = (c0 - rr * np.sin(pp)).astype(np.float32)
    return cv2.remap(A.astype(np.float32), mx, my, cv2.INTER_LINEAR), rho


def blur_measures(Y: np.ndarray, noise_sigma: float, jpeg_grid: bool = False) -> dict[str, float]:
    """Spectral sharpness (overall and per direction) and cepstral kernel estimates.

    With ``jpeg_grid`` the spectral lines of the 8x8 block grid (k/8 cycles/px along each axis)
    are notched out first: block edges would otherwise read as a periodic kernel.

    Examples:
        >>> from restora.degrade import apply
        >>> from skimage import data
        >>> img = data.astronaut()[:256, :256].astype(np.float32) / 255
        >>> m = blur_measures(luma(apply(img, "motion_blur", 0.5, angle=30.0)), 0.0)
        >>> round(m["cepstrum_peak_length"] / 0.92), round(m["cepstrum_peak_angle"])
        (15, 30)
    """
    P = welch_spectrum(Y)
    t = P.shape[0]
    if jpeg_grid and t >= 64:
        P = _notch_block_grid(P)
    floor = (0.668 * 0.82 * noise_sigma / 255.0) ** 2  # luma noise of i.i.d. channel noise, a bit under
    Pn = np.maximum(P - floor, 0.0) + QUANT_FLOOR
    out: dict[str, float] = {}

    # whitened log spectrum on a polar grid
    Lp, rho = _polar(np.log10(Pn), t / 2 * 0.98, 64)
    nu = rho / t
    Wp = Lp + 2.0 * np.log10(nu)[:, None]
    lo = (nu > 0.03) & (nu < 0.07)
    hi = (nu > 0.2) & (nu < 0.4)
    mid = (nu > 0.1) & (nu < 0.2)
    base = Wp[lo].mean(0)
    D = Wp[hi].mean(0) - base
    Dm = Wp[mid].mean(0) - base
    phi = np.arange(_NPHI) * (180.0 / _NPHI)
    Ds = np.convolve(np.r_[D[-2:], D, D[:2]], np.ones(5) / 5.0, "valid")
    z2 = (D * np.exp(-2j * np.radians(phi))).mean() * 2
    out["sharpness"] = float(D.mean())
    out["sharpness_mid"] = float(Dm.mean())
    out["sharpness_min"] = float(Ds.min())
    out["sharpness_max"] = float(Ds.max())
    out["sharpness_min_angle"] = float(phi[int(np.argmin(Ds))])
    out["anisotropy"] = float(abs(z2))
    # 4-fold (square) symmetry of the high band: separable resampling keeps the diagonals
    out["diagonal_excess"] = float(-(D * np.cos(4 * np.radians(phi))).mean() * 2)

    # power cepstrum on a polar grid: minus sign so kernel zeros show as positive peaks
    C = np.fft.fftshift(np.real(np.fft.ifft2(np.fft.ifftshift(np.log(Pn)))))
    rmax_c = min(48.0, t / 2 - 2)
    Cp, crho = _polar(-C, rmax_c, int(rmax_c * 2))
    valid = crho >= 3.0
    vals = Cp[valid]
    scale = 1.4826 * float(np.median(np.abs(vals - np.median(vals)))) + 1e-9
    ring = Cp.mean(1)
    k = int(np.argmax(np.where(valid, ring, -np.inf)))
    out["ring_strength"] = float(ring[k] / scale)
    out["ring_radius"] = float(crho[k])
    dev = Cp - ring[:, None]
    dev = (dev + np.roll(dev, 1, 1) + np.roll(dev, -1, 1)) / 3.0
    dev[crho < 4.0] = -np.inf  # the shortest synthetic motion (5 px) peaks at ~4.6
    i, j = np.unravel_index(int(np.argmax(dev)), dev.shape)
    out["cepstrum_peak"] = float(dev[i, j] / scale)
    out["cepstrum_peak_length"] = float(crho[i])
    out["cepstrum_peak_angle"] = float(phi[j])
    # the second harmonic of a motion kernel's cepstral peak lies at twice the distance
    i2 = int(np.argmin(np.abs(crho - 2 * crho[i])))
    out["cepstrum_peak_harmonic"] = float(dev[i2, j] / scale) if 2 * crho[i] <= crho[-1] else 0.0
    return out


def _notch_block_grid(P: np.ndarray) -> np.ndarray:
    """Replace the rows and columns at k/8 cycles/px (k = 1..7) by their neighbours' mean."""
    P = P.copy()
    t = P.shape[0]
    c0 = t // 2
    for k in range(1, 8):
        for sign in (-1, 1):
            j = c0 + sign * round(k * t / 8)
            if 2 <= j <= t - 3:
                P[:, j - 1 : j + 2] = (0.5 * (P[:, j - 2] + P[:, j + 2]))[:, None]
                P[j - 1 : j + 2, :] = (0.5 * (P[j - 2, :] + P[j + 2, :]))[None, :]
    return P


def resampling_periodicity(Y: np.ndarray, jpeg_grid: bool = False) -> dict[str, float]:
    """Gallagher's interpolation periodicity over rows and columns (peak height over median).

    With ``jpeg_grid`` the harmonics of the 8-px JPEG block grid (k/8 cycles/px) are ignored.

    Examples:
        >>> from restora.degrade import apply
        >>> from skimage import data
        >>> img = data.astronaut()[:256, :256].astype(np.float32) / 255
        >>> m = resampling_periodicity(luma(apply(img, "low_res", 0.5)))   # factor 2.75
        >>> m["resample_peak"] > 5, round(1 / m["resample_freq"], 2)
        (True, 2.75)
    """
    Yc = center_crop(Y, 512).astype(np.float64)
    spectra = []
    for A in (Yc, Yc.T):
        d2 = np.abs(A[:, 2:] - 2 * A[:, 1:-1] + A[:, :-2]).mean(0)
        d2 = d2 - d2.mean()
        spectra.append(np.abs(np.fft.rfft(d2 * np.hanning(len(d2)))))
    f0 = np.fft.rfftfreq(Yc.shape[1] - 2)
    f1 = np.fft.rfftfreq(Yc.shape[0] - 2)
    grid = np.linspace(0.0, 0.5, 257)
    s0 = np.interp(grid, f0, spectra[0])
    s1 = np.interp(grid, f1, spectra[1])
    joint = np.sqrt(s0 * s1)
    # period 2 (0.5 cycles/px) is left out: camera demosaicing leaves it in full-resolution
    # photos, and an exact 2x bicubic upscale (half-pixel centres) does not produce it anyway
    band = (grid >= 0.2) & (grid <= 0.48)
    if jpeg_grid:
        for k in (2, 3, 4):
            band &= np.abs(grid - k / 8.0) > 0.006
    ref = float(np.median(joint[(grid >= 0.05) & (grid <= 0.5)])) + 1e-12
    k = int(np.argmax(np.where(band, joint, -1.0)))
    return {"resample_peak": float(joint[k] / ref), "resample_freq": float(grid[k])}


# -- scene-level cues ------------------------------------------------------------------------------
def exposure_haze(image: np.ndarray) -> dict[str, float]:
    """Luma statistics (dark) and dark-channel / contrast / saturation statistics (haze).

    Examples:
        >>> m = exposure_haze(np.full((64, 64, 3), 0.2, np.float32))
        >>> round(m["mean_luma"], 2), round(m["saturation"], 2)
        (0.2, 0.0)
    """
    im = downscale(image, 256)
    im = cv2.GaussianBlur(im, (0, 0), 1.0)
    Y = luma(im)
    mn = im.min(axis=2)
    mx = im.max(axis=2)
    k = max(3, round(min(im.shape[:2]) / 28) | 1)
    dc = cv2.erode(mn, np.ones((k, k), np.uint8))
    sat = (mx - mn) / np.maximum(mx, 1e-3)
    p = np.percentile(Y, [1, 5, 50, 95, 99])
    flat = dc.ravel()
    top = flat >= np.percentile(flat, 99.5)
    airlight = im.reshape(-1, 3)[top].mean(0)
    return {
        "mean_luma": float(Y.mean()),
        "luma_p01": float(p[0]),
        "luma_p05": float(p[1]),
        "luma_p50": float(p[2]),
        "luma_p95": float(p[3]),
        "luma_p99": float(p[4]),
        "log_mean_luma": float(np.exp(np.log(Y + 0.01).mean()) - 0.01),
        "contrast": float(Y.std()),
        "black_level": float(np.percentile(mn, 1)),
        "dark_channel_p10": float(np.percentile(dc, 10)),
        "dark_channel_median": float(np.median(dc)),
        "saturation": float(sat.mean()),
        "airlight": float(airlight.mean()),
    }


def rain_streaks(image: np.ndarray, noise_sigma: float = 0.0) -> dict[str, float]:
    """Excess of bright over dark thin lines at the dominant near-vertical orientation.

    The luma is smoothed more when it is noisy (``noise_sigma`` in 0-255 units), so that noise
    does not pass for thin lines.

    Examples:
        >>> from restora.degrade import apply
        >>> from skimage import data
        >>> img = data.astronaut()[:256, :256].astype(np.float32) / 255
        >>> rain_streaks(img)["rain_streak_energy"] < 1 < rain_streaks(apply(img, "rain", 0.7))["rain_streak_energy"]
        True
    """
    im = downscale(image, 640)
    s = 1.0 + max(0.0, noise_sigma - 8.0) / 25.0
    y = luma(im)
    # exposure-invariant: streaks in a dim photo are as dim as the photo
    y = y / max(float(np.percentile(y, 99)), 0.2)
    Y = cv2.GaussianBlur(y, (0, 0), s)
    norm = s * s  # scale-normalised curvature (Lindeberg), so energies compare across s
    hxx = cv2.Sobel(Y, cv2.CV_32F, 2, 0, ksize=3) * norm
    hyy = cv2.Sobel(Y, cv2.CV_32F, 0, 2, ksize=3) * norm
    hxy = cv2.Sobel(Y, cv2.CV_32F, 1, 1, ksize=3) * norm
    half_tr = (hxx + hyy) / 2
    rad = np.sqrt(((hxx - hyy) / 2) ** 2 + hxy**2)
    l1 = half_tr - rad  # most negative curvature: across a bright line
    l2 = half_tr + rad
    ridge = np.maximum(-l1 - 2 * np.abs(l2), 0)
    valley = np.maximum(l2 - 2 * np.abs(l1), 0)
    # axis of the larger eigenvalue, as a screen angle: a bright line's direction; a dark
    # line's direction is perpendicular to it
    ang = np.degrees(-0.5 * np.arctan2(2 * hxy, hxx - hyy)) % 180.0
    nb = _NPHI
    br = (ang / 2).astype(int) % nb
    bv = (((ang + 90.0) % 180.0) / 2).astype(int) % nb
    scale = 1000.0 / Y.size
    hr = np.bincount(br.ravel(), ridge.ravel(), nb) * scale
    hv = np.bincount(bv.ravel(), valley.ravel(), nb) * scale

    def window(hist: np.ndarray) -> np.ndarray:
        return np.convolve(np.r_[hist[-2:], hist, hist[:2]], np.ones(5), "valid")

    D = window(hr) - window(hv)
    centre = np.arange(nb) * 2 + 1
    near_vertical = (centre >= 55) & (centre <= 125)
    k = int(np.argmax(np.where(near_vertical, D, -np.inf)))
    far = np.abs((centre - centre[k] + 90) % 180 - 90) >= 20
    med = float(np.median(D[far]))
    mad = float(np.median(np.abs(D[far] - med))) + 1e-3
    return {
        "rain_streak_energy": float(D[k]),
        "rain_streak_z": float((D[k] - med) / mad),
        "rain_angle": float(centre[k]),
        "thin_line_energy": float(hr.sum() + hv.sum()),
    }
