"""Motion deblurring: non-blind deconvolution with a linear motion kernel.

Length and angle come from the params (perception's ``blur_length`` / ``blur_angle``) and are
refined, within ``search`` of the given values, against the image's own power spectrum: a
linear blur of length L stamps parallel dark stripes (the zeros of sinc(L f.u)) across it,
perpendicular to the motion. The angle is found first with a Radon transform of the detrended
log-spectrum (the stripes' orientation), the length by fitting the kernel's transfer function to
the spectrum (:class:`restora.tools._classical.SpectrumFit`). With no evidence the whole range
(any angle, 3-60 px) is searched. Deconvolution is Laplacian-regularised least squares with
unknown boundaries, solved by preconditioned conjugate gradients (Reeves 2005; an edge-tapered
Wiener filter rang so much at the borders of long kernels that it lost to the blurred input),
weighted by the estimated noise level; scikit-image's Wiener-Hunt and Richardson-Lucy are the
alternatives.

Angles are degrees counter-clockwise from horizontal as seen on screen, as in
:func:`restora.degrade.motion_kernel`.

Examples:
    >>> from restora.tools import create_tool
    >>> tool = create_tool("deblur_motion")
    >>> sharp = tool(image, {"length": 15, "angle": 30})                        # doctest: +SKIP
    >>> tool.suggest_params(0.5, {"blur_length": 15, "blur_angle": 30})[0]     # doctest: +SKIP
    Params(length=15.0, angle=30.0, search=0.3, method='cg', balance=None, iterations=30)
"""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np
from pydantic import Field

from restora.degrade import motion_kernel
from restora.taxonomy import Task
from restora.tools._classical import (
    DeconvParams,
    SpectrumFit,
    deconv_balance,
    deconvolve,
    noise_floor,
    noise_sigma,
    require_side,
)
from restora.tools.base import Tool, ToolParams

LENGTH_RANGE = (3.0, 60.0)
ANGLE_SPAN = 12.0  # degrees searched either side of a given angle when search > 0
MIN_BLUR = 3.0  # an estimated length below this is "no motion blur" (sharp photos fit ~2-2.8 px)


class DeblurMotion(Tool):
    """Linear-motion-kernel deconvolution (boundary-aware least squares), kernel refined from the spectrum."""

    task = Task.MOTION_DEBLUR
    summary = "motion deblur: regularised deconvolution with a linear kernel, length/angle fitted to the spectrum"
    cost = 5.0
    hypothesis_params = ("length", "angle")
    """The kernel (method, iterations and balance are the solver). Real camera shake is a curved
    path, so a straight kernel can be systematically wrong; Richardson-Lucy hides the ringing the
    regularised solve showed. Defocus has no such rule: its retries (Richardson-Lucy, a stronger
    balance) are the remedy for ringing from too little regularisation with the right radius, and
    blaming the radius lost 0.2-2.0 dB on four synthetic defocus cases of the quick setting."""

    class Params(DeconvParams):
        length: float | None = Field(
            None, ge=1.0, le=120.0, description="blur length in px; None: estimate it from the image (3-60 px)"
        )
        angle: float | None = Field(
            None, ge=-360.0, le=360.0, description="blur direction, degrees counter-clockwise from horizontal; None: estimate"
        )
        search: float = Field(
            0.3,
            ge=0.0,
            le=1.0,
            description="refine a given length within +-search (relative) and angle within +-40*search degrees; 0: use as given",
        )

    @classmethod
    def suggest_params(cls, severity: float, evidence: Mapping[str, float]) -> list[ToolParams]:
        length = evidence.get("blur_length")
        angle = evidence.get("blur_angle")
        length = float(np.clip(length, 1.0, 120.0)) if length is not None and length > 0 else None
        angle = float(angle) % 180.0 if angle is not None else None
        first = cls.Params(length=length, angle=angle, noise_floor=noise_floor(evidence))
        alternatives = [cls.Params(length=length, angle=angle, method="rl")]
        if length is not None and angle is not None:
            alternatives.append(cls.Params(length=length, angle=angle, search=0.0, method="rl"))
        else:
            alternatives.append(cls.Params(length=5.0 + 20.0 * float(severity), angle=angle, method="rl"))
        return [first, *alternatives]

    def run(self, image: np.ndarray, params: ToolParams) -> np.ndarray:
        require_side(image, 16, "deblur_motion")
        p = params
        length, angle = p.length, p.angle
        if length is None or angle is None or p.search > 0:
            length, angle = estimate_motion(SpectrumFit(image), length, angle, p.search)
        if p.length is None and length < MIN_BLUR:  # nothing measurable to undo: leave it be
            return image.copy()
        kernel = motion_kernel(length, angle)
        balance = p.balance if p.balance is not None else deconv_balance(max(noise_sigma(image), p.noise_floor or 0.0))
        return deconvolve(image, kernel, p.method, iterations=p.iterations, balance=balance)


def estimate_motion(
    fit: SpectrumFit, length: float | None = None, angle: float | None = None, search: float = 0.3
) -> tuple[float, float]:
    """(length, angle) of the linear blur that best explains the image's power spectrum.

    A given ``length`` is searched within +-``search`` (relative), a given ``angle`` within
    +-40*``search`` degrees (capped at 12); missing ones over their whole range.
    """
    fixed_angle = angle is not None and search == 0
    fixed_length = length is not None and search == 0
    span = min(ANGLE_SPAN, 40.0 * search)
    a0 = float(angle) if fixed_angle else stripe_angle(fit.gray, angle, span)
    tent = (np.sinc(fit.fx) * np.sinc(fit.fy)) ** 4  # the kernel's bilinear splatting

    def misfit(n: float, a: float) -> float:
        t = np.deg2rad(a)
        proj = fit.fx * np.cos(t) - fit.fy * np.sin(t)  # image y points down
        return fit.misfit(np.sinc(max(n - 1.0, 0.0) * proj) ** 2 * tent)

    if fixed_length:
        lengths = np.array([float(length)])
    elif length is None:
        lengths = np.arange(LENGTH_RANGE[0], LENGTH_RANGE[1] + 1e-6, 1.0)
    else:
        lengths = np.linspace(length * (1 - search), length * (1 + search), 13)
        lengths = lengths[lengths >= 1.0]
    best_len = float(lengths[int(np.argmin([misfit(n, a0) for n in lengths]))])
    best_ang = a0
    if not fixed_angle:
        lo, hi = (a0 - 3.0, a0 + 3.0) if angle is None else (max(a0 - 3.0, angle - span), min(a0 + 3.0, angle + span))
        angles = np.arange(lo, hi + 1e-6, 0.5)
        best_ang = float(angles[int(np.argmin([misfit(best_len, a) for a in angles]))])
    if not fixed_length:
        step = float(lengths[1] - lengths[0]) if len(lengths) > 1 else 1.0
        fine = np.linspace(best_len - step, best_len + step, 9)
        fine = fine[fine >= 1.0]
        best_len = float(fine[int(np.argmin([misfit(n, best_ang) for n in fine]))])
    return best_len, best_ang % 180.0


def stripe_angle(gray: np.ndarray, around: float | None = None, span: float = ANGLE_SPAN) -> float:
    """Motion direction (degrees) from the orientation of the stripes in the log power spectrum:
    the Radon projection angle with the largest variance (scikit-image ``radon``)."""
    from skimage.transform import radon

    h, w = gray.shape
    n = min(h, w)
    g = gray[(h - n) // 2 : (h - n) // 2 + n, (w - n) // 2 : (w - n) // 2 + n]
    win = np.outer(np.hanning(n), np.hanning(n))
    spec = np.log1p(np.abs(np.fft.fftshift(np.fft.fft2((g - g.mean()) * win)))).astype(np.float32)
    spec = spec - cv2.GaussianBlur(spec, (0, 0), 8)
    yy, xx = np.mgrid[:n, :n] - n // 2  # scikit-image's own reconstruction circle, 1 px inside
    spec = spec * (xx**2 + yy**2 < (n // 2 - 1) ** 2)
    if around is None:
        thetas = np.arange(0.0, 180.0, 1.0)
    else:
        thetas = np.arange(around - span, around + span + 1e-6, 1.0)
    variance = radon(spec, theta=thetas % 180.0, circle=True).var(axis=0)
    return float(thetas[int(np.argmax(variance))])
