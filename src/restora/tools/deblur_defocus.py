"""Defocus deblurring: non-blind deconvolution with a uniform disc (pillbox) kernel.

The radius comes from the params (perception's ``defocus_radius``) and is refined, within
``search`` of the given value, by fitting the disc's transfer function (an Airy-like jinc whose
rings of zeros are visible in a defocused photo's power spectrum) to the image's spectrum; with
no radius at all the whole range 1-10 px is searched. Deconvolution is Laplacian-regularised least
squares with unknown boundaries, solved by preconditioned conjugate gradients (no ringing at the
borders; see :func:`restora.tools._classical.deconvolve`), weighted by the estimated noise level;
scikit-image's Wiener-Hunt and Richardson-Lucy are the alternatives.

Examples:
    >>> from restora.tools import create_tool
    >>> tool = create_tool("deblur_defocus")
    >>> sharp = tool(image, {"radius": 3.0})                 # doctest: +SKIP
    >>> tool.suggest_params(0.4, {"defocus_radius": 3.3})[0]  # doctest: +SKIP
    Params(radius=3.3, search=0.3, method='cg', balance=None, iterations=30)
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from pydantic import Field
from scipy.special import j1

from restora.degrade import disc_kernel
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

RADIUS_RANGE = (1.0, 10.0)
MIN_RADIUS = 1.1  # an estimated radius up to this is "in focus" (sharp photos fit 0.75-1.06 px)


class DeblurDefocus(Tool):
    """Disc-kernel deconvolution (boundary-aware least squares) with a spectrum-fitted radius."""

    task = Task.DEFOCUS_DEBLUR
    summary = "defocus deblur: regularised deconvolution with a disc kernel, radius fitted to the spectrum"
    cost = 4.5

    class Params(DeconvParams):
        radius: float | None = Field(
            None, ge=0.5, le=30.0, description="disc radius in px; None: estimate it from the image (1-10 px)"
        )
        search: float = Field(
            0.3, ge=0.0, le=1.0, description="relative range around radius where the spectrum fit may refine it; 0: use as given"
        )

    @classmethod
    def suggest_params(cls, severity: float, evidence: Mapping[str, float]) -> list[ToolParams]:
        r = evidence.get("defocus_radius")
        floor = noise_floor(evidence)
        if r is not None and r > 0:
            r = float(np.clip(r, 0.5, 30.0))
            return [
                cls.Params(radius=r, noise_floor=floor),
                cls.Params(radius=r, method="rl"),
                cls.Params(radius=r, search=0.0, balance=deconv_balance(max(5.0, floor or 0.0))),
            ]
        return [cls.Params(noise_floor=floor), cls.Params(method="rl"), cls.Params(radius=1.5 + 4.5 * float(severity), search=0.0, method="rl")]

    def run(self, image: np.ndarray, params: ToolParams) -> np.ndarray:
        require_side(image, 16, "deblur_defocus")
        p = params
        radius = p.radius
        if radius is None or p.search > 0:
            radius = estimate_radius(SpectrumFit(image), radius, p.search)
        if p.radius is None and radius <= MIN_RADIUS:  # nothing measurable to undo: leave it be
            return image.copy()
        kernel = disc_kernel(radius)
        balance = p.balance if p.balance is not None else deconv_balance(max(noise_sigma(image), p.noise_floor or 0.0))
        return deconvolve(image, kernel, p.method, iterations=p.iterations, balance=balance)


def estimate_radius(fit: SpectrumFit, around: float | None = None, search: float = 0.3) -> float:
    """The disc radius whose jinc transfer function best explains the image's power spectrum,
    within ``around`` * (1 +- ``search``) when ``around`` is given, else in 1-10 px."""
    if around is None:
        candidates = np.arange(RADIUS_RANGE[0], RADIUS_RANGE[1] + 1e-6, 0.25)
    else:
        candidates = np.linspace(around * (1 - search), around * (1 + search), 13)
        candidates = candidates[candidates >= 0.5]
    x = 2.0 * np.pi * fit.fr

    def misfit(r: float) -> float:
        arg = r * x
        jinc = np.where(arg < 1e-6, 1.0, 2.0 * j1(arg) / np.maximum(arg, 1e-6))
        return fit.misfit(jinc**2)

    best = float(candidates[int(np.argmin([misfit(r) for r in candidates]))])
    step = float(candidates[1] - candidates[0]) if len(candidates) > 1 else 0.0
    if step > 0:  # one finer pass around the best coarse value
        fine = np.linspace(best - step, best + step, 9)
        fine = fine[fine >= 0.5]
        best = float(fine[int(np.argmin([misfit(r) for r in fine]))])
    return best
