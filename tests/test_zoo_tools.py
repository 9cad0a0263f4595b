"""The model-zoo tools on tiny random-weight checkpoints that `restora zoo tiny` writes: the DiT
restorer (a real diffusers FluxKontextPipeline, loaded through model_zoo with its LoRA adapter)
and a spandrel tool (a real NAFNet state dict), run alone, inside the agent and from the CLI; and
the errors for a wrong checksum and a missing file. Random weights make noise-like outputs: these
tests check the machinery (loading, checks, resolution policy, adapters, traces), not quality."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from restora.cli import app
from restora.errors import ChecksumError
from restora.model_zoo import ZOO_ENV, availability, clear_cache, get_card, list_cards, resolve_card
from restora.model_zoo.loaded import loaded_models
from restora.model_zoo.tiny import DIT_ID, LORA_ID, NAFNET_ID, NAFNET_TOOL, write_tiny_zoo
from restora.planners.heuristic import HeuristicPlanner
from restora.planners.schema import ActionError, action_schema, parse_action
from restora.tools import ToolBox, get_tool

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


@pytest.fixture(scope="session")
def tiny_zoo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    zoo = tmp_path_factory.mktemp("zoo")
    write_tiny_zoo(zoo, seed=0)
    return zoo


@pytest.fixture
def zoo_env(tiny_zoo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv(ZOO_ENV, str(tiny_zoo))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("RESTORA_DIT", raising=False)
    monkeypatch.delenv("RESTORA_DEVICE", raising=False)
    yield tiny_zoo
    loaded_models().clear()
    clear_cache()


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth synthetic photo-like image (structure at every scale, no data folder needed)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([np.sin(x / 9.0 + c) * np.cos(y / 13.0 - c) for c in (0.0, 1.0, 2.0)], axis=-1)
    return np.clip(0.5 + 0.35 * base + 0.03 * rng.standard_normal((h, w, 3)), 0, 1).astype(np.float32)


def _tree_digest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_tiny_zoo_cards_are_pinned_safetensors_and_resolve(zoo_env: Path):
    ids = {c.id for c in list_cards()}
    assert {DIT_ID, LORA_ID, NAFNET_ID} <= ids
    for card_id in (DIT_ID, LORA_ID, NAFNET_ID):
        card = get_card(card_id)
        assert card.pinned and card.origin == "local"
        resolved = resolve_card(card_id)
        assert resolved.origin == "zoo" and resolved.folder == zoo_env / card_id
        assert not [n for n in card.files if n.endswith((".bin", ".pt", ".pth", ".ckpt", ".pkl"))]
    dit = get_card(DIT_ID)
    assert dit.kind == "diffusers" and "model_index.json" in dit.files
    assert any(n.startswith("transformer/") and n.endswith(".safetensors") for n in dit.files)
    assert get_card(LORA_ID).base == DIT_ID
    r = CliRunner().invoke(app, ["zoo", "list", "--json"])
    assert r.exit_code == 0, r.output
    rows = {row["id"]: row for row in json.loads(r.output)}
    assert all(rows[i]["available"] and rows[i]["found_in"] == "zoo" for i in (DIT_ID, LORA_ID, NAFNET_ID))


def test_tiny_zoo_same_seed_same_bytes(tiny_zoo: Path, tmp_path: Path):
    again = tmp_path / "again"
    r = CliRunner().invoke(app, ["zoo", "tiny", str(again)])
    assert r.exit_code == 0, r.output
    for card_id in (DIT_ID, LORA_ID, NAFNET_ID):
        assert _tree_digest(again / card_id) == _tree_digest(tiny_zoo / card_id)
    r = CliRunner().invoke(app, ["zoo", "tiny", str(again)])
    assert r.exit_code == 2 and "already exist" in r.output


def test_spandrel_tool_from_a_card_runs_tiled(zoo_env: Path):
    cls = get_tool(NAFNET_TOOL)
    assert cls.availability() is None and cls.learned and cls.task == "denoise"
    box = ToolBox(allow=[NAFNET_TOOL])
    img = _image(150, 100)
    out = box.run(NAFNET_TOOL, img)
    info = box.last_info(NAFNET_TOOL)
    assert out.shape == img.shape and out.dtype == np.float32
    assert info["architecture"] == "NAFNet" and info["tiles"] and info["tile"] == 64
    assert np.array_equal(out, box.run(NAFNET_TOOL, img))  # deterministic
    assert not np.allclose(out, img, atol=1e-3)  # the random model does change it
    assert np.allclose(box.run(NAFNET_TOOL, img, {"blend": 0.0}), img, atol=1e-6)


def test_dit_tool_native_size_tiles_seed_and_lora(zoo_env: Path):
    cls = get_tool("dit_restore")
    assert cls.availability() is None and cls.multi_task() and not cls.needs_device
    box = ToolBox(allow=["dit_restore"])
    small = _image(96, 80)
    a = box.run("dit_restore", small, {"task": "denoise", "seed": 1})
    info = box.last_info("dit_restore")
    assert a.shape == small.shape
    assert info["card"] == DIT_ID and info["pipeline"] == "FluxKontextPipeline"
    assert info["resolution"] == "native" and info["tiles"] == 1
    h, w = info["run_size"]
    assert h % 16 == 0 and w % 16 == 0 and abs(h * w - 128 * 128) <= 0.25 * 128 * 128
    assert abs(h / w - 96 / 80) < 0.15  # aspect kept
    assert info["steps"] == 2 and info["seed"] == 1 and "noise" in info["prompt"]
    assert info["lora"] == "tiny_flux_kontext_lora"  # the adapter's card lists denoise
    assert np.array_equal(a, box.run("dit_restore", small, {"task": "denoise", "seed": 1}))
    assert not np.array_equal(a, box.run("dit_restore", small, {"task": "denoise", "seed": 2}))
    box.run("dit_restore", small, {"task": "derain"})
    info = box.last_info("dit_restore")
    assert info["lora"] is None and "rain" in info["prompt"]
    big = _image(300, 200)
    out = box.run("dit_restore", big, {"task": "dehaze", "steps": 1})
    info = box.last_info("dit_restore")
    assert out.shape == big.shape and info["resolution"] == "tiles" and info["tiles"] == 6
    assert info["run_size"] == [112, 112] and info["steps"] == 1  # 3 x 2 tiles of 112 (native 128)
    # one pipeline in memory, whatever the number of calls
    assert [k for k in loaded_models().keys() if k.startswith("dit:")] == [f"dit:{DIT_ID}:cpu:float32:none"]
    assert box.get("dit_restore")._pipe is None  # held by loaded_models() alone between calls


def test_heuristic_planner_and_schema_use_the_dit_for_any_task(zoo_env: Path):
    box = ToolBox(allow=["dit_restore"])
    catalogue = {n: t.describe() for n, t in box.catalogue().items()}
    assert catalogue["dit_restore"]["tasks"] == [str(t) for t in get_tool("dit_restore").handles()]
    schema = action_schema(catalogue)
    assert set(schema["$defs"]["dit_restore"]["properties"]["task"]["enum"]) >= {"denoise", "derain", "dehaze"}
    action = parse_action({"kind": "tool", "tool": "dit_restore", "task": "derain", "params": {}}, catalogue)
    assert action.task == "derain" and action.params["task"] == "derain"
    with pytest.raises(ActionError, match="params.task"):
        parse_action({"kind": "tool", "tool": "dit_restore", "task": "derain", "params": {"task": "dehaze"}}, catalogue)
    from restora.planners.base import Observation

    report = {
        "width": 64,
        "height": 64,
        "findings": {"rain": {"degradation": "rain", "present": True, "severity": 0.7, "evidence": {}}},
    }
    obs = Observation(step=0, report=report, scores={}, steps_left=4, seconds_left=100.0, catalogue=catalogue)
    step = HeuristicPlanner().next_action(obs)
    assert step.tool == "dit_restore" and step.task == "derain" and step.params["task"] == "derain"


@pytest.mark.slow
def test_restora_run_allow_dit_restore_end_to_end(zoo_env: Path, tmp_path: Path, clean_photo: np.ndarray):
    from restora.degrade import apply as degrade
    from restora.imageio import save_image

    noisy = degrade(clean_photo, "noise", severity=0.7, seed=0)
    src = tmp_path / "noisy.png"
    save_image(src, noisy)
    before = src.read_bytes()
    r = CliRunner().invoke(app, ["run", str(src), "--allow", "dit_restore", "--out", str(tmp_path / "out"), "-q"])
    assert r.exit_code == 0, r.output
    assert src.read_bytes() == before
    records = [json.loads(line) for line in (tmp_path / "out" / "noisy.trace.jsonl").read_text().splitlines()]
    steps = [r for r in records if r["event"] == "step" and r["action"]["kind"] == "tool"]
    assert steps and steps[0]["action"]["tool"] == "dit_restore" and steps[0]["action"]["task"] == "denoise"
    info = steps[0]["tool_info"]
    assert info["card"] == DIT_ID and info["resolution"] in ("native", "tiles") and info["lora"]
    # the random DiT's output has nothing of the input left: the no-reference score alone liked
    # it, the structure check rolls it back
    assert steps[0]["consistency"] < 0.25 and steps[0]["decision"] == "rollback"
    assert records[0]["config"]["min_consistency"] == 0.25


def test_wrong_checksum_and_missing_file(tiny_zoo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    zoo = tmp_path / "zoo"
    shutil.copytree(tiny_zoo, zoo)
    monkeypatch.setenv(ZOO_ENV, str(zoo))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("RESTORA_DIT", raising=False)
    weights = zoo / DIT_ID / "transformer" / "diffusion_pytorch_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    clear_cache()
    try:
        with pytest.raises(ChecksumError, match=f"{DIT_ID}.*diffusion_pytorch_model.safetensors.*sha256"):
            resolve_card(DIT_ID)
        # the tool refuses to load it: the agent records the error and the run goes on
        from restora.agent import restore

        box = ToolBox(allow=["dit_restore"])
        with pytest.raises(ChecksumError):
            box.run("dit_restore", _image(64, 64), {"task": "denoise"})
        result = restore(
            _image(64, 64),
            toolbox=box,
            planner=_ScriptedDiT(),
            max_steps=1,
        )
        steps = [r for r in result.records if getattr(r, "event", "") == "step" and r.action.kind == "tool"]
        assert result.tool_calls == 1 and steps and "sha256" in (steps[0].error or "")
        assert steps[0].decision == "error" and np.array_equal(result.image, _image(64, 64))
        # a missing file: the tool is unavailable and says which file and how to provide it
        (zoo / NAFNET_ID / "model.safetensors").unlink()
        reason = get_tool(NAFNET_TOOL).availability()
        assert reason is not None and NAFNET_ID in reason and "model.safetensors" in reason
        assert NAFNET_TOOL not in ToolBox().catalogue()
        assert availability(LORA_ID) is None
    finally:
        loaded_models().clear()
        clear_cache()


class _ScriptedDiT:
    """Planner double: always asks for the DiT on denoise (the run must record the load error)."""

    name = "scripted-dit"

    def next_action(self, obs):
        from restora.planners.base import Action

        if obs.history:
            return Action.stop("done")
        return Action(kind="tool", tool="dit_restore", task="denoise", params={"task": "denoise"})


@pytest.mark.slow
def test_dit_tool_runs_a_qwen_image_edit_pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The other pipeline family: Qwen-Image-Edit (VL text encoder that sees the image, true CFG
    with a negative prompt), chosen with RESTORA_DIT, through the same card and tool."""
    from restora.model_zoo import sha256_file
    from restora.model_zoo.cards import ModelCard
    from restora.model_zoo.tiny.dit import write_tiny_qwen_image_edit

    folder = tmp_path / "zoo" / "tiny-qwen-image-edit"
    files = write_tiny_qwen_image_edit(folder, seed=0)
    card = ModelCard.model_validate(
        {
            "id": "tiny-qwen-image-edit",
            "kind": "diffusers",
            "pipeline_class": "QwenImageEditPipeline",
            "files": files,
            "sha256": {n: sha256_file(folder / n) for n in files},
            "licence": "Apache-2.0",
            "task": "denoise",
            "tasks": ["denoise", "derain"],
            "memory_mb": 100,
            "format": "safetensors",
            "defaults": {"steps": 2, "guidance": 2.0, "native_pixels": 64 * 64, "multiple": 16, "needs_device": False},
        }
    )
    (folder / "card.json").write_text(card.model_dump_json(exclude_defaults=True))
    monkeypatch.setenv(ZOO_ENV, str(tmp_path / "zoo"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("RESTORA_DIT", "tiny-qwen-image-edit")
    try:
        box = ToolBox(allow=["dit_restore"])
        assert "dit_restore" in box.catalogue()
        img = _image(48, 80)
        out = box.run("dit_restore", img, {"task": "derain", "seed": 0})
        info = box.last_info("dit_restore")
        assert out.shape == img.shape and info["pipeline"] == "QwenImageEditPipeline"
        assert info["resolution"] == "native" and info["run_size"][0] % 16 == 0 and info["lora"] is None
        assert np.array_equal(out, box.run("dit_restore", img, {"task": "derain", "seed": 0}))
    finally:
        loaded_models().clear()
        clear_cache()


@pytest.mark.slow
def test_built_in_spandrel_cards_load_checkpoints_of_their_real_architecture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The built-in cards name upstream checkpoints that cannot be downloaded here. A random-weight
    state dict of the same architecture at its published configuration (SCUNet default; SwinIR-M
    x4 real-world: embed 180, 6x6 blocks, nearest+conv), placed under $RESTORA_ZOO and pinned with
    `restora zoo pin`, must be recognised by spandrel and run through the card's tool."""
    import torch
    from safetensors.torch import save_file
    from spandrel.architectures.SCUNet import SCUNet
    from spandrel.architectures.SwinIR import SwinIR

    monkeypatch.setenv(ZOO_ENV, str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    torch.manual_seed(0)
    models = {
        "scunet-color-real-psnr": SCUNet(),
        "swinir-m-real-x4": SwinIR(upscale=4, in_chans=3, img_size=64, window_size=8, img_range=1.0, depths=[6] * 6,
                                   embed_dim=180, num_heads=[6] * 6, mlp_ratio=2, upsampler="nearest+conv",
                                   resi_connection="1conv"),
    }
    for card_id, model in models.items():
        (tmp_path / card_id).mkdir()
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / card_id / "model.safetensors"))
        assert "nothing to check" in availability(card_id) and "restora zoo pin" in availability(card_id)
        r = CliRunner().invoke(app, ["zoo", "pin", card_id])
        assert r.exit_code == 0, r.output
    try:
        box = ToolBox(allow=["denoise_scunet", "sr_swinir"])
        assert set(box.catalogue()) == {"denoise_scunet", "sr_swinir"}
        img = _image(40, 56)
        out = box.run("denoise_scunet", img)
        assert out.shape == img.shape and box.last_info("denoise_scunet")["architecture"] == "SCUNet"
        up = box.run("sr_swinir", img[:24, :32])
        assert up.shape == (96, 128, 3) and box.last_info("sr_swinir")["architecture"] == "SwinIR"
    finally:
        loaded_models().clear()
        clear_cache()
