"""Bad input gets a clear error; odd but valid formats are read correctly; writes are atomic."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from restora.errors import ImageLoadError, ImageTooLargeError
from restora.imageio import encode_png, load_image, save_image, write_bytes_atomic


def _photo(h: int = 48, w: int = 64) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x / w, y / h, (x + y) / (w + h)], axis=2).astype(np.float32)


def _png_bytes(arr_u8: np.ndarray, mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr_u8, mode=mode).save(buf, format="PNG")
    return buf.getvalue()


def _huge_png_header(w: int, h: int) -> bytes:
    """A PNG whose header claims w x h pixels (data is tiny and never decoded)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def test_zero_byte_file(tmp_path: Path):
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    with pytest.raises(ImageLoadError, match="empty file"):
        load_image(p)


def test_not_an_image(tmp_path: Path):
    p = tmp_path / "notes.png"
    p.write_text("this is not a picture\n")
    with pytest.raises(ImageLoadError, match="not an image"):
        load_image(p)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file(tmp_path: Path, fmt: str):
    buf = io.BytesIO()
    Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)).save(buf, format=fmt)
    data = buf.getvalue()
    p = tmp_path / f"cut.{fmt.lower()}"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError, match="truncated|corrupt|unreadable"):
        load_image(p)


def test_missing_file_and_folder(tmp_path: Path):
    with pytest.raises(ImageLoadError, match="no such file"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageLoadError, match="folder"):
        load_image(tmp_path)


def test_huge_dimensions_refused_with_the_limit_stated(tmp_path: Path):
    p = tmp_path / "bomb.png"
    p.write_bytes(_huge_png_header(60000, 60000))
    with pytest.raises(ImageTooLargeError, match=r"60000x60000 = 3600\.0 megapixels exceeds the limit of 50 megapixels"):
        load_image(p)
    small = tmp_path / "small.png"
    small.write_bytes(_png_bytes(np.zeros((48, 64, 3), np.uint8)))
    with pytest.raises(ImageTooLargeError, match="limit of 0.001 megapixels"):
        load_image(small, max_megapixels=0.001)


def test_sixteen_bit_rgb_png_keeps_precision_and_saves_16_bit(tmp_path: Path):
    ref = _photo()
    u16 = (ref * 65535).round().astype(np.uint16)
    p = tmp_path / "deep.png"
    cv2.imwrite(str(p), u16[..., ::-1])
    img = load_image(p)
    assert img.bit_depth == 16
    assert np.abs(img.pixels - ref).max() < 1e-4  # far finer than 8-bit steps (3.9e-3)
    out = tmp_path / "out.png"
    save_image(out, img.pixels, like=img)
    back = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16 and back.shape == (48, 64, 3)


def test_sixteen_bit_grayscale(tmp_path: Path):
    g = (np.linspace(0, 1, 48 * 64).reshape(48, 64) * 65535).astype(np.uint16)
    p = tmp_path / "g16.png"
    cv2.imwrite(str(p), g)
    img = load_image(p)
    assert img.grayscale and img.bit_depth == 16 and img.pixels.shape == (48, 64, 3)
    save_image(tmp_path / "o.png", img.pixels, like=img)
    back = cv2.imread(str(tmp_path / "o.png"), cv2.IMREAD_UNCHANGED)
    assert back.ndim == 2 and back.dtype == np.uint16


def test_grayscale_is_processed_as_rgb_and_saved_gray(tmp_path: Path):
    g = (_photo()[..., 0] * 255).astype(np.uint8)
    p = tmp_path / "gray.png"
    p.write_bytes(_png_bytes(g, mode="L"))
    img = load_image(p)
    assert img.pixels.shape == (48, 64, 3) and img.grayscale
    assert any("grayscale" in n for n in img.notes)
    save_image(tmp_path / "o.png", img.pixels, like=img)
    assert Image.open(tmp_path / "o.png").mode == "L"


def test_alpha_is_kept_aside_and_reattached(tmp_path: Path):
    rgba = np.concatenate([(_photo() * 255).astype(np.uint8), np.full((48, 64, 1), 128, np.uint8)], axis=2)
    rgba[:10, :10, 3] = 0
    p = tmp_path / "a.png"
    p.write_bytes(_png_bytes(rgba, mode="RGBA"))
    img = load_image(p)
    assert img.pixels.shape == (48, 64, 3) and img.alpha is not None
    save_image(tmp_path / "o.png", img.pixels, like=img)
    back = np.asarray(Image.open(tmp_path / "o.png"))
    assert back.shape == (48, 64, 4)
    assert back[0, 0, 3] == 0 and back[20, 20, 3] == 128


def test_cmyk_jpeg(tmp_path: Path):
    p = tmp_path / "cmyk.jpg"
    Image.fromarray((_photo() * 255).astype(np.uint8)).convert("CMYK").save(p, format="JPEG", quality=95)
    img = load_image(p)
    assert img.mode == "CMYK" and img.pixels.shape == (48, 64, 3)
    assert any("CMYK" in n for n in img.notes)
    assert abs(float(img.pixels.mean()) - float(_photo().mean())) < 0.05


def test_exif_rotation_is_applied(tmp_path: Path):
    arr = (_photo(40, 70) * 255).astype(np.uint8)  # landscape
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 CW to display
    p = tmp_path / "rot.jpg"
    im.save(p, format="JPEG", exif=exif.tobytes(), quality=95)
    img = load_image(p)
    assert img.pixels.shape == (70, 40, 3)  # upright: portrait
    assert any("EXIF orientation 6" in n for n in img.notes)


def test_animated_gif_takes_the_first_frame_and_says_so(tmp_path: Path):
    frames = [Image.fromarray(np.full((32, 32, 3), v, np.uint8)) for v in (30, 200, 120)]
    p = tmp_path / "anim.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:], duration=100, loop=0)
    img = load_image(p)
    assert img.frames == 3
    assert any("only the first frame" in n for n in img.notes)
    assert abs(float(img.pixels.mean()) * 255 - 30) < 3


def test_palette_and_webp(tmp_path: Path):
    arr = (_photo() * 255).astype(np.uint8)
    Image.fromarray(arr).convert("P").save(tmp_path / "p.png")
    Image.fromarray(arr).save(tmp_path / "w.webp", lossless=True)
    assert load_image(tmp_path / "p.png").pixels.shape == (48, 64, 3)
    assert np.abs(load_image(tmp_path / "w.webp").pixels - arr / 255.0).max() < 1e-6


def test_png_round_trip_is_lossless(tmp_path: Path):
    arr = _photo()
    save_image(tmp_path / "x.png", arr)
    assert np.abs(load_image(tmp_path / "x.png").pixels - arr).max() <= 0.5 / 255 + 1e-6


def test_atomic_write_never_leaves_a_half_file(tmp_path: Path, monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"previous good output")

    def failing_replace(src, dst):  # a test double: simulates a crash between write and rename
        raise OSError("disk went away")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk went away"):
        write_bytes_atomic(target, encode_png(_photo()))
    assert target.read_bytes() == b"previous good output"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]  # no temp file left behind
