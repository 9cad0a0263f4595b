"""Remove JPEG artefacts with waifu2x's CUNet 1x denoising models (levels 0-3).

waifu2x's noise models were trained to undo JPEG compression; the 1x CUNet variants keep the
size. On Kodak crops compressed at quality 20 (input ~28.7 dB) level 2 gives ~30.8 dB.

Examples:
    >>> from restora.tools import create_tool
    >>> out = create_tool("dejpeg_waifu2x")(jpeg_image, {"level": 2})     # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, cast

import numpy as np
from pydantic import Field

from restora.taxonomy import Task
from restora.tools._ncnn import NcnnTool, Waifu2xCunetNet
from restora.tools._tiling import run_tiled
from restora.tools.base import ToolParams

CARD = "waifu2x-cunet-denoise"


def level_for_quality(quality: float) -> int:
    """The waifu2x noise level that suits a JPEG quality (lower quality, higher level).

    Measured on Kodak crops (OpenCV JPEG, 4:2:0): level 0 is best from quality ~70 up, level 1
    around 55-70, level 2 below; level 3 ties level 2 at quality 20-40 and is slightly worse
    below 20, so it is only ever a second choice.

    Examples:
        >>> [level_for_quality(q) for q in (90, 60, 40, 15)]
        [0, 1, 2, 2]
    """
    if quality >= 70:
        return 0
    if quality >= 55:
        return 1
    return 2


class DejpegWaifu2x(NcnnTool):
    """waifu2x CUNet 1x noise0..3: a learned JPEG deblocker/deringer."""

    class Params(ToolParams):
        level: int = Field(
            2, ge=0, le=3, description="strength: 0 light (JPEG quality 70+), 1 (55-70), 2 (below 55), 3 strongest"
        )

    task: ClassVar[Task] = Task.DEJPEG
    summary: ClassVar[str] = "waifu2x CUNet denoiser (levels 0-3): removes JPEG blocking and ringing"
    cost: ClassVar[float] = 8.0
    card: ClassVar[str] = CARD
    memory_mb: ClassVar[int] = 300

    tile: ClassVar[int] = 320
    context: ClassVar[int] = 28

    def run(self, image: np.ndarray, params: ToolParams) -> np.ndarray:
        p = cast(DejpegWaifu2x.Params, params)
        net = self.net(p.level, lambda files: Waifu2xCunetNet(files, p.level))
        out = run_tiled(net, image, scale=1, tile=self.tile, overlap=16, context=self.context)
        return np.clip(out, 0.0, 1.0)

    @classmethod
    def suggest_params(cls, severity: float, evidence: Mapping[str, float]) -> list[ToolParams]:
        """The level for the estimated JPEG quality first, then one weaker and one stronger.

        Without ``evidence["jpeg_quality"]`` the quality follows severity (60 .. 10).

        Examples:
            >>> [p.level for p in DejpegWaifu2x.suggest_params(0.5, {"jpeg_quality": 30})]
            [2, 3, 1]
        """
        q = evidence.get("jpeg_quality")
        if q is None or not np.isfinite(q):
            q = 60.0 - 50.0 * min(max(float(severity), 0.0), 1.0)
        best = level_for_quality(float(q))
        levels = [best] + [lv for lv in (best + 1, best - 1) if 0 <= lv <= 3]
        return [cls.Params(level=lv) for lv in levels]
