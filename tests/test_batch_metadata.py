"""Formats and metadata of restora batch outputs: a real JPEG carrying EXIF (camera make, date,
GPS, orientation) and an ICC profile keeps them in a JPEG output (and in PNG, WebP and TIFF),
stored upright with orientation 1; 16-bit stays 16-bit in PNG and TIFF."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from restora.imageio import encode_image, load_image, output_format

pytestmark = pytest.mark.data
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>roll 2</dc:title></rdf:Description></rdf:RDF></x:xmpmeta>'


def camera_jpeg(data_dir: Path, path: Path) -> bytes:
    """A 96x64 crop of a real photo saved as a camera would: EXIF Make, DateTime, DateTimeOriginal,
    GPS, orientation 6 (rotate to display), an sRGB ICC profile and XMP. Returns the profile."""
    im = Image.open(data_dir / "clean" / "kodak24" / "kodim05.png").convert("RGB").crop((200, 200, 296, 264))
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F] = "Restora Camera Co."
    exif[0x0110] = "RC-1"
    exif[0x0132] = "2024:05:06 07:08:09"
    exif[0x0112] = 6
    exif.get_ifd(0x8769)[0x9003] = "2024:05:06 07:08:09"
    exif.get_ifd(0x8825).update({1: "N", 2: (52.0, 31.0, 12.5), 3: "E", 4: (13.0, 24.0, 0.0)})
    im.save(path, quality=85, exif=exif.tobytes(), icc_profile=icc, xmp=XMP)
    return icc


def check_metadata(data: bytes, icc: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    exif = im.getexif()
    assert exif.get(0x010F) == "Restora Camera Co." and exif.get(0x0110) == "RC-1"
    assert exif.get(0x0132) == "2024:05:06 07:08:09"
    assert exif.get_ifd(0x8769).get(0x9003) == "2024:05:06 07:08:09"
    gps = exif.get_ifd(0x8825)
    assert gps.get(1) == "N" and tuple(map(float, gps.get(2))) == (52.0, 31.0, 12.5) and gps.get(3) == "E"
    assert exif.get(0x0112) == 1  # the pixels are stored upright
    assert im.info.get("icc_profile") == icc
    assert im.size == (64, 96)  # rotated by orientation 6
    return im


@pytest.mark.parametrize("fmt", ["jpg", "png", "webp", "tiff"])
def test_exif_icc_and_xmp_are_carried(data_dir: Path, tmp_path: Path, fmt: str):
    src = tmp_path / "cam.jpg"
    icc = camera_jpeg(data_dir, src)
    loaded = load_image(src)
    assert loaded.pixels.shape == (96, 64, 3)
    data, notes = encode_image(loaded.pixels, loaded, fmt, quality=90)
    im = check_metadata(data, icc)
    xmp = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp") or (im.tag_v2.get(700) if fmt == "tiff" else None)
    assert xmp is not None and b"roll 2" in (xmp if isinstance(xmp, bytes) else str(xmp).encode())
    assert notes == []
    again = load_image(_write(tmp_path / f"o.{fmt}", data))
    assert again.pixels.shape == loaded.pixels.shape  # not rotated a second time


def _write(p: Path, data: bytes) -> Path:
    p.write_bytes(data)
    return p


def test_sixteen_bit_stays_sixteen_bit_where_the_format_allows(tmp_path: Path):
    rng = np.random.default_rng(0)
    arr = (rng.random((24, 32, 3)) * 65535).astype(np.uint16)
    import cv2

    src = tmp_path / "deep.png"
    cv2.imwrite(str(src), arr)
    loaded = load_image(src)
    assert loaded.bit_depth == 16
    for fmt in ("png", "tiff"):
        data, notes = encode_image(loaded.pixels, loaded, fmt)
        back = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        assert back.dtype == np.uint16 and notes == []
        if fmt == "png":
            assert np.abs(back.astype(int) - arr.astype(int)).max() <= 1
    data, notes = encode_image(loaded.pixels, loaded, "jpg")
    assert notes and "8-bit" in notes[0]


def test_format_keep_follows_the_input():
    assert output_format("keep", "a/b.JPG") == ("jpg", ".JPG")
    assert output_format("keep", "a/b.tiff") == ("tiff", ".tiff")
    assert output_format("keep", "a/b.bmp") == ("png", ".png")
    assert output_format("jpg", "a/b.png") == ("jpg", ".jpg")
    with pytest.raises(ValueError, match="unknown output format"):
        output_format("gif")


def test_a_batch_keeps_a_camera_jpegs_exif_and_profile(data_dir: Path, tmp_path: Path):
    from restora.batch.engine import run_batch
    from restora.batch.job import BatchSettings

    src = tmp_path / "in" / "2024"
    src.mkdir(parents=True)
    icc = camera_jpeg(data_dir, src / "cam.jpg")
    out = tmp_path / "out"
    report = run_batch([tmp_path / "in"], out, BatchSettings(max_steps=2, allow=["denoise_nlm", "dejpeg_deblock"], perception="classical", fmt="keep", quality=92))
    assert report.counts == {"done": 1}
    target = out / "2024" / "cam.jpg"
    assert report.results[0]["output"] == str(target)
    check_metadata(target.read_bytes(), icc)
    assert Image.open(target).format == "JPEG"


@pytest.mark.slow
def test_restora_run_keeps_the_metadata_too(data_dir: Path, tmp_path: Path):
    """`restora run` writes the same EXIF (orientation normalised), ICC and XMP as `restora batch`."""
    from typer.testing import CliRunner

    from restora.cli import app

    src = tmp_path / "in" / "cam.jpg"
    src.parent.mkdir()
    icc = camera_jpeg(data_dir, src)
    res = CliRunner().invoke(app, ["run", str(src), "-o", str(tmp_path / "out"), "--max-steps", "1", "-q"])
    assert res.exit_code == 0, res.output
    im = check_metadata((tmp_path / "out" / "cam.png").read_bytes(), icc)
    assert im.format == "PNG"
