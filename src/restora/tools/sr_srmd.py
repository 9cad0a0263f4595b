"""Super-resolution with SRMD x2/x3/x4 (fidelity-oriented; takes a noise level).

Same modes as ``sr_realesrgan``:

* ``restore`` (default): the input was enlarged from a lower resolution; it is area-downscaled
  by ``factor`` (default ``scale``), super-resolved by SRMD x``scale`` and resized to exactly
  the input size.
* ``upscale``: the output is ``scale`` times larger than the input.

``sigma`` is SRMD's noise-level input (0-255 units): 0 for clean input; raise it when the
low-resolution image is noisy. ``fidelity`` back-projects the result onto what the network saw.
SRMD raises PSNR over bicubic without inventing texture; it is softer than Real-ESRGAN.

Examples:
    >>> from restora.tools import create_tool
    >>> out = create_tool("sr_srmd")(soft_image, {"scale": 3, "factor": 2.75})  # doctest: +SKIP
    >>> big = create_tool("sr_srmd")(small, {"mode": "upscale", "scale": 2})    # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal, cast

import numpy as np
from pydantic import Field

from restora.taxonomy import Task
from restora.tools._ncnn import (
    NcnnTool,
    SrmdNet,
    lowres_factor,
    nearest_scale,
    super_resolve,
)
from restora.tools._tiling import run_tiled
from restora.tools.base import ToolParams

CARD = "srmd"


class SrSRMD(NcnnTool):
    """SRMD x2/x3/x4 through ncnn on the CPU; restores soft images or enlarges them."""

    class Params(ToolParams):
        scale: Literal[2, 3, 4] = Field(
            2, description="the SRMD model (x2/x3/x4); upscale: output size factor"
        )
        mode: Literal["restore", "upscale"] = Field(
            "restore", description="restore: same size, sharpen an enlarged/soft image; upscale: enlarge by scale"
        )
        factor: float | None = Field(
            None, ge=1.0, le=8.0, description="restore: the resolution the image lost, e.g. 2.75 (default: scale)"
        )
        sigma: float = Field(
            0.0, ge=0.0, le=75.0, description="noise level of the low-resolution image (0-255 units)"
        )
        fidelity: bool = Field(
            True, description="back-project so the result, shrunk back, matches the input"
        )

    task: ClassVar[Task] = Task.SUPER_RESOLUTION
    summary: ClassVar[str] = "SRMD x2/x3/x4: faithful super-resolution of soft/low-res photos, optional denoising"
    cost: ClassVar[float] = 5.0
    card: ClassVar[str] = CARD
    memory_mb: ClassVar[int] = 300
    changes_size: ClassVar[bool] = True

    tile: ClassVar[int] = 384
    context: ClassVar[int] = 12

    def run(self, image: np.ndarray, params: ToolParams) -> np.ndarray:
        p = cast(SrSRMD.Params, params)
        net = self.net(p.scale, lambda files: SrmdNet(files, p.scale))

        def model(x: np.ndarray) -> np.ndarray:
            return run_tiled(lambda t: net(t, p.sigma), x, scale=p.scale, tile=self.tile, overlap=16, context=self.context)

        return super_resolve(model, image, p.scale, p.mode, p.scale, p.factor, p.fidelity)

    @classmethod
    def suggest_params(cls, severity: float, evidence: Mapping[str, float]) -> list[ToolParams]:
        """Restore mode at the estimated factor with the nearest model (x2/x3/x4), then the
        neighbouring models.

        Without ``evidence["lowres_factor"]`` the factor follows severity (1.5 .. 4).

        Examples:
            >>> [(p.scale, p.factor) for p in SrSRMD.suggest_params(0.5, {"lowres_factor": 2.8})]
            [(3, 2.8), (2, 2.8), (4, 2.8)]
        """
        f = round(lowres_factor(severity, evidence), 2)
        best = nearest_scale(f, (2, 3, 4))
        order = [best] + [s for s in (best - 1, best + 1) if 2 <= s <= 4]
        return [cls.Params(scale=s, factor=f) for s in order]
