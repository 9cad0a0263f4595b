"""Reading and writing images at the edge of the library.

Everything inside restora works on float32 (H, W, 3) RGB in [0, 1]. :func:`load_image` turns a
file into that form and records what it had to do on the way (notes a person should read: the
first frame of an animation was taken, EXIF rotation applied, alpha kept aside, ...).
:func:`save_image` writes atomically: to a temporary file in the target folder, then renamed, so
no half-written file ever stands under its final name. Input files are only ever opened for
reading.

Examples:
    >>> img = load_image("photo.jpg")                       # doctest: +SKIP
    >>> img.pixels.shape, img.notes                          # doctest: +SKIP
    ((480, 640, 3), ['applied EXIF orientation 6'])
    >>> save_image("out/photo.png", img.pixels, like=img)   # doctest: +SKIP
"""

from __future__ import annotations

import io
import os
import secrets
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from restora.errors import ImageLoadError, ImageTooLargeError, InvalidImageError, RestoraError

DEFAULT_MAX_MEGAPIXELS = 50.0  # refuse larger inputs (decompression-bomb guard)
# restora checks the header's pixel count against its own, stated limit before decoding anything,
# so PIL's generic guard (which would fire first, with a less useful message) is switched off.
Image.MAX_IMAGE_PIXELS = None
SIXTEEN_BIT_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I"}


@dataclass
class LoadedImage:
    """A decoded image plus what a person should know about how it was read."""

    pixels: np.ndarray  # float32 (H, W, 3) in [0, 1]
    path: Path | None = None
    format: str | None = None
    mode: str = "RGB"  # the file's own mode (L, RGBA, CMYK, I;16, ...)
    bit_depth: int = 8
    grayscale: bool = False
    alpha: np.ndarray | None = None  # float32 (H, W) in [0, 1], kept aside
    frames: int = 1
    notes: list[str] = field(default_factory=list)
    exif: bytes | None = None  # the file's EXIF with the orientation reset to 1 (pixels are upright)
    icc_profile: bytes | None = None  # its embedded colour profile
    xmp: bytes | None = None  # its XMP packet

    @property
    def size(self) -> tuple[int, int]:
        return self.pixels.shape[1], self.pixels.shape[0]


def load_image(path: str | os.PathLike, max_megapixels: float = DEFAULT_MAX_MEGAPIXELS) -> LoadedImage:
    """Read ``path`` into a :class:`LoadedImage`; raise :class:`ImageLoadError` with a clear reason."""
    p = Path(path)
    if not p.exists():
        raise ImageLoadError(f"{p}: no such file")
    if p.is_dir():
        raise ImageLoadError(f"{p}: is a folder, not an image")
    data = p.read_bytes()
    if not data:
        raise ImageLoadError(f"{p}: empty file (0 bytes)")
    return decode_image(data, name=str(p), path=p, max_megapixels=max_megapixels)


def decode_image(
    data: bytes,
    name: str = "<bytes>",
    path: Path | None = None,
    max_megapixels: float = DEFAULT_MAX_MEGAPIXELS,
) -> LoadedImage:
    """Decode image bytes; see :func:`load_image`."""
    limit = int(max_megapixels * 1_000_000)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as e:
        raise ImageLoadError(f"{name}: not an image, or a format restora cannot read") from e
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageTooLargeError(f"{name}: image too large ({e})") from e
    except OSError as e:
        what = "truncated or corrupt image data" if "truncat" in str(e).lower() else "unreadable image header"
        raise ImageLoadError(f"{name}: {what} ({e})") from e

    w, h = im.size
    if w * h > limit:
        raise ImageTooLargeError(
            f"{name}: {w}x{h} = {w * h / 1e6:.1f} megapixels exceeds the limit of "
            f"{max_megapixels:g} megapixels (raise it with --max-megapixels)"
        )
    if w < 1 or h < 1:
        raise ImageLoadError(f"{name}: image has no pixels ({w}x{h})")
    notes: list[str] = []
    frames = int(getattr(im, "n_frames", 1) or 1)
    if frames > 1:
        notes.append(f"animated image with {frames} frames: only the first frame was restored")
        im.seek(0)
    fmt = im.format
    mode = im.mode
    try:
        im.load()
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageLoadError(f"{name}: truncated or corrupt image data ({e})") from e
    except Image.DecompressionBombError as e:
        raise ImageTooLargeError(f"{name}: image too large ({e})") from e

    exif_bytes, icc, xmp = _metadata(im)
    orientation = im.getexif().get(0x0112, 1)
    if orientation not in (1, None):
        im = ImageOps.exif_transpose(im)
        notes.append(f"applied EXIF orientation {orientation} (the output is stored upright)")

    alpha = None
    bit_depth = 8
    grayscale = False
    if mode in SIXTEEN_BIT_MODES or _png_is_16bit_rgb(data, fmt):
        rgb, alpha, bit_depth, grayscale = _decode_high_depth(data, im, name)
        notes.append(f"{bit_depth}-bit input: processed in float, saved as 16-bit PNG")
    else:
        if mode == "CMYK":
            notes.append("CMYK input converted to RGB (no colour profile applied)")
        if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
            rgba = np.asarray(im.convert("RGBA"), dtype=np.float32) / 255.0
            alpha = rgba[..., 3].copy()
            rgb = rgba[..., :3]
            notes.append("alpha channel kept aside and re-attached to the output")
            grayscale = mode in ("LA",)
        elif mode in ("L", "1"):
            rgb = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
            grayscale = True
        elif mode == "F":
            arr = np.asarray(im, dtype=np.float32)
            rng = float(arr.max() - arr.min()) or 1.0
            rgb = np.repeat(((arr - arr.min()) / rng)[..., None], 3, axis=2)
            grayscale = True
            notes.append("32-bit float input rescaled to [0, 1]")
        else:
            rgb = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    if grayscale:
        notes.append("grayscale input: restored as RGB, saved as grayscale")
    rgb = np.ascontiguousarray(np.clip(rgb, 0.0, 1.0), dtype=np.float32)
    return LoadedImage(
        pixels=rgb,
        path=path,
        format=fmt,
        mode=mode,
        bit_depth=bit_depth,
        grayscale=grayscale,
        alpha=alpha,
        frames=frames,
        notes=notes,
        exif=exif_bytes,
        icc_profile=icc,
        xmp=xmp,
    )


def _metadata(im: Image.Image) -> tuple[bytes | None, bytes | None, bytes | None]:
    """(EXIF with orientation 1, ICC profile, XMP) of an opened image; None for what it lacks."""
    exif_bytes = None
    try:
        raw = im.info.get("exif") or im.getexif().tobytes()  # a copy: the image's own Exif stays as read
        exif = Image.Exif()
        if raw:
            exif.load(raw)
        if len(exif):
            for ifd in (0x8769, 0x8825):  # the Exif and GPS sub-IFDs: loaded so tobytes() writes them
                if ifd in exif:
                    exif.get_ifd(ifd)
            if 0x0112 in exif:
                exif[0x0112] = 1
            exif_bytes = exif.tobytes()
    except Exception:  # noqa: BLE001 - broken EXIF must not stop the image itself from loading
        exif_bytes = None
    icc = im.info.get("icc_profile") or None
    xmp = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp") or None
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8")
    return exif_bytes, icc, xmp


def _png_is_16bit_rgb(data: bytes, fmt: str | None) -> bool:
    # PIL reads 48/64-bit PNGs as 8-bit RGB(A); the IHDR bit depth byte tells the truth.
    return fmt == "PNG" and len(data) > 25 and data[24] == 16


def _decode_high_depth(data: bytes, im: Image.Image, name: str):
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:  # fall back to PIL's own reading (e.g. 16-bit TIFF cv2 cannot decode)
        arr = np.asarray(im)
    arr = np.asarray(arr)
    if arr.dtype == np.uint16:
        scale, depth = 65535.0, 16
    elif arr.dtype == np.uint8:
        scale, depth = 255.0, 8
    else:
        arr = arr.astype(np.float64)
        scale, depth = float(arr.max()) or 1.0, 16
    arr = arr.astype(np.float32) / scale
    alpha = None
    grayscale = False
    if arr.ndim == 2:
        rgb = np.repeat(arr[..., None], 3, axis=2)
        grayscale = True
    elif arr.shape[2] == 4:
        rgb = arr[..., 2::-1]  # cv2 gives BGRA
        alpha = arr[..., 3].copy()
    elif arr.shape[2] == 3:
        rgb = arr[..., ::-1]
    else:
        raise ImageLoadError(f"{name}: unsupported channel count {arr.shape[2]}")
    orientation = im.getexif().get(0x0112, 1) if hasattr(im, "getexif") else 1
    if orientation not in (1, None):
        rgb = _apply_orientation(rgb, orientation)
        if alpha is not None:
            alpha = _apply_orientation(alpha, orientation)
    return rgb, alpha, depth, grayscale


def _apply_orientation(a: np.ndarray, orientation: int) -> np.ndarray:
    ops = {
        2: lambda x: x[:, ::-1],
        3: lambda x: x[::-1, ::-1],
        4: lambda x: x[::-1],
        5: lambda x: np.swapaxes(x, 0, 1),
        6: lambda x: np.rot90(x, -1),
        7: lambda x: np.rot90(x, 1)[::-1],  # transverse
        8: lambda x: np.rot90(x, 1),
    }
    return np.ascontiguousarray(ops.get(orientation, lambda x: x)(a))


def check_image(image: Any, what: str = "image", error: type[RestoraError] = InvalidImageError) -> None:
    """The one image contract inside restora: raise ``error`` unless ``image`` is a float32 numpy
    array (H, W, 3), RGB, with finite values in [0, 1].

    Examples:
        >>> check_image(np.zeros((4, 4, 3), np.float32))
        >>> check_image(np.zeros((4, 4), np.float32), "mask")
        Traceback (most recent call last):
        ...
        restora.errors.InvalidImageError: mask: expected shape (H, W, 3), got (4, 4)
    """
    if not isinstance(image, np.ndarray):
        raise error(f"{what}: expected a numpy array, got {type(image).__name__}")
    if image.dtype != np.float32:
        raise error(f"{what}: expected float32, got {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise error(f"{what}: expected shape (H, W, 3), got {image.shape}")
    lo, hi = float(image.min()), float(image.max())
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo < 0.0 or hi > 1.0:
        raise error(f"{what}: values must be finite and in [0, 1], got [{lo:.3g}, {hi:.3g}]")


def quantize(image: np.ndarray) -> np.ndarray:
    """Round to 8-bit levels (what a saved PNG holds), as float32 in [0, 1].

    Examples:
        >>> float(quantize(np.full((1, 1, 3), 0.5011, np.float32))[0, 0, 0]) == float(np.float32(128 / 255))
        True
    """
    return (np.round(np.clip(image, 0.0, 1.0) * 255.0) / 255.0).astype(np.float32)


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    return (np.clip(pixels, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def encode_png(pixels: np.ndarray, like: LoadedImage | None = None) -> bytes:
    """PNG bytes for ``pixels``, matching ``like``'s grayscale/alpha/bit depth where given."""
    rgb = np.clip(pixels, 0.0, 1.0)
    sixteen = like is not None and like.bit_depth == 16
    maxv = 65535.0 if sixteen else 255.0
    dtype = np.uint16 if sixteen else np.uint8
    if like is not None and like.grayscale:
        out = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
        chans = [out]
    else:
        chans = [rgb[..., 2], rgb[..., 1], rgb[..., 0]]  # cv2 writes BGR
    if like is not None and like.alpha is not None:
        alpha = like.alpha
        if alpha.shape != rgb.shape[:2]:
            alpha = cv2.resize(alpha, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
        chans.append(alpha)
    arr = chans[0] if len(chans) == 1 else np.stack(chans, axis=2)
    arr = (arr * maxv + 0.5).astype(dtype)
    ok, buf = cv2.imencode(".png", arr)
    if not ok:
        raise OSError("PNG encoding failed")
    return buf.tobytes()


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    The file gets the mode any file the user makes gets (0666 less the umask, e.g. 0644 under
    umask 022): the temporary file is created with that mode, not ``mkstemp``'s private 0600.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(target)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return target


def _create_temp(target: Path) -> tuple[int, Path]:
    """A new, empty ``.<name>.<random>.part`` beside ``target``, opened for writing, mode 0666
    less the umask (the kernel applies the umask, as for any file the user makes)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.part")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not make a temporary file beside {target}")


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def save_image(path: str | os.PathLike, pixels: np.ndarray, like: LoadedImage | None = None) -> Path:
    """Save ``pixels`` as PNG at ``path`` atomically (see :func:`encode_png` for ``like``)."""
    return write_bytes_atomic(path, encode_png(pixels, like))


FORMATS: dict[str, str] = {"png": ".png", "jpg": ".jpg", "webp": ".webp", "tiff": ".tif"}
"""Formats :func:`encode_image` writes, with their usual suffix."""
_FORMAT_OF = {"PNG": "png", "JPEG": "jpg", "MPO": "jpg", "WEBP": "webp", "TIFF": "tiff"}
_SUFFIX_FORMAT = {".png": "png", ".jpg": "jpg", ".jpeg": "jpg", ".webp": "webp", ".tif": "tiff", ".tiff": "tiff"}


def output_format(fmt: str, source: str | os.PathLike | None = None, like: LoadedImage | None = None) -> tuple[str, str]:
    """(format, suffix) for ``fmt``: one of :data:`FORMATS`, or ``keep`` (the input's own format
    and suffix where restora can write it, else PNG).

    Examples:
        >>> output_format("keep", "scans/a.JPEG")
        ('jpg', '.JPEG')
        >>> output_format("keep", "scans/a.bmp")
        ('png', '.png')
        >>> output_format("webp")
        ('webp', '.webp')
    """
    if fmt != "keep":
        if fmt not in FORMATS:
            raise ValueError(f"unknown output format {fmt!r} (use keep, {', '.join(FORMATS)})")
        return fmt, FORMATS[fmt]
    suffix = Path(source).suffix if source is not None else ""
    kept = _SUFFIX_FORMAT.get(suffix.lower())
    if kept is None and like is not None and like.format:
        kept = _FORMAT_OF.get(like.format)
        suffix = FORMATS.get(kept or "", "")
    return (kept, suffix) if kept else ("png", ".png")


def encode_image(pixels: np.ndarray, like: LoadedImage | None = None, fmt: str = "png", quality: int = 95) -> tuple[bytes, list[str]]:
    """Bytes of ``pixels`` in ``fmt`` (png, jpg, webp, tiff) carrying ``like``'s EXIF (orientation
    1: the pixels are upright), ICC profile and XMP, its grayscale and alpha where the format has
    them, and 16 bits where the input had them and the format allows (PNG, TIFF). Returns the
    bytes and notes on what could not be carried.

    Examples:
        >>> data, notes = encode_image(np.zeros((8, 8, 3), np.float32), fmt="jpg", quality=90)
        >>> data[:2] == bytes([0xFF, 0xD8]), notes
        (True, [])
    """
    notes: list[str] = []
    exif, icc, xmp = (like.exif, like.icc_profile, like.xmp) if like is not None else (None, None, None)
    sixteen = like is not None and like.bit_depth == 16
    gray = like is not None and like.grayscale
    alpha = like.alpha if like is not None else None
    if alpha is not None and alpha.shape != pixels.shape[:2]:
        alpha = cv2.resize(alpha, (pixels.shape[1], pixels.shape[0]), interpolation=cv2.INTER_LINEAR)
    if fmt == "png":
        return _png_with_metadata(encode_png(pixels, like), exif, icc, xmp), notes
    if fmt == "tiff" and sixteen:
        return _tiff16(pixels, gray, alpha, icc, xmp, exif, notes), notes
    if sixteen:
        notes.append(f"16-bit input saved as 8-bit {fmt.upper()} (the format has no 16 bits; use --format png or tiff to keep them)")
    rgb8 = to_uint8(pixels)
    if gray:
        im = Image.fromarray(to_uint8(pixels @ np.array([0.299, 0.587, 0.114], np.float32)), "L")
    else:
        im = Image.fromarray(rgb8, "RGB")
    if alpha is not None:
        if fmt == "jpg":
            notes.append("alpha channel dropped: JPEG has none")
        else:
            im = im.convert("LA" if gray and fmt == "tiff" else "RGBA")
            im.putalpha(Image.fromarray(to_uint8(alpha), "L"))
    kw: dict[str, Any] = {}
    if exif:
        kw["exif"] = exif
    if icc:
        kw["icc_profile"] = icc
    buf = io.BytesIO()
    if fmt == "jpg":
        if xmp:
            kw["xmp"] = xmp
        im.save(buf, format="JPEG", quality=int(quality), subsampling=0 if quality >= 90 else 2, optimize=True, **kw)
    elif fmt == "webp":
        if xmp:
            kw["xmp"] = xmp
        im.save(buf, format="WEBP", quality=int(quality), lossless=quality >= 100, method=4, **kw)
    elif fmt == "tiff":
        # EXIF goes in as TIFF tags, its Exif and GPS sub-IFDs nested; Pillow's own writer (no
        # compression) writes nested IFDs, libtiff's (deflate) refuses them
        info: dict[int, Any] = {}
        if kw.pop("exif", None):
            tags = Image.Exif()
            tags.load(exif)
            info = {k: v for k, v in tags.items() if k not in (0x8769, 0x8825)}
            for ifd in (0x8769, 0x8825):
                if ifd in tags and tags.get_ifd(ifd):
                    info[ifd] = dict(tags.get_ifd(ifd))
        if xmp:
            info[700] = xmp
        im.save(buf, format="TIFF", compression=None if exif else "tiff_deflate", tiffinfo=info, **kw)
    else:
        raise ValueError(f"unknown output format {fmt!r} (use {', '.join(FORMATS)})")
    return buf.getvalue(), notes


def save_image_as(
    path: str | os.PathLike, pixels: np.ndarray, like: LoadedImage | None = None, fmt: str = "png", quality: int = 95
) -> tuple[Path, list[str]]:
    """:func:`encode_image` written atomically to ``path`` (a temporary name, then a rename).

    Examples:
        >>> save_image_as("out/a.jpg", img.pixels, like=img, fmt="jpg", quality=92)   # doctest: +SKIP
        (PosixPath('out/a.jpg'), [])
    """
    data, notes = encode_image(pixels, like, fmt, quality)
    return write_bytes_atomic(path, data), notes


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    import struct
    import zlib

    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _png_with_metadata(png: bytes, exif: bytes | None, icc: bytes | None, xmp: bytes | None) -> bytes:
    """``png`` with iCCP, eXIf and an XMP iTXt chunk inserted after IHDR (cv2 writes none)."""
    import zlib

    extra = b""
    if icc:
        extra += _png_chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(icc))
    if exif:
        body = exif[6:] if exif.startswith(b"Exif\x00\x00") else exif
        extra += _png_chunk(b"eXIf", body)
    if xmp:
        extra += _png_chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + xmp)
    if not extra:
        return png
    end_ihdr = 8 + 8 + 13 + 4  # signature, IHDR length+type, IHDR body, CRC
    return png[:end_ihdr] + extra + png[end_ihdr:]


def _tiff16(pixels: np.ndarray, gray: bool, alpha: np.ndarray | None, icc: bytes | None, xmp: bytes | None, exif: bytes | None, notes: list[str]) -> bytes:
    """A 16-bit TIFF (tifffile: Pillow writes no 16-bit RGB) with the ICC profile and XMP."""
    import tifffile

    arr = np.clip(pixels, 0.0, 1.0)
    if gray:
        arr = arr @ np.array([0.299, 0.587, 0.114], np.float32)
    if alpha is not None:
        arr = np.dstack([arr, alpha]) if arr.ndim == 3 else np.dstack([arr, alpha])
    arr16 = (arr * 65535.0 + 0.5).astype(np.uint16)
    extratags = [(700, "B", len(xmp), xmp, True)] if xmp else []
    if exif:
        notes.append("16-bit TIFF: EXIF not carried (colour profile and XMP are)")
    buf = io.BytesIO()
    photometric = "minisblack" if arr16.ndim == 2 or (gray and alpha is not None) else "rgb"
    tifffile.imwrite(
        buf, arr16, photometric=photometric, compression="zlib", iccprofile=icc, extratags=extratags,
        extrasamples=("unassalpha",) if alpha is not None else None, metadata=None,
    )
    return buf.getvalue()


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """Shortcut: the float32 RGB pixels of an image file."""
    return load_image(path).pixels
