"""restora.model_zoo.loaded is the one owner of device and memory: resolve_device / tool_device /
placement choose where models run, and one budget (loaded_models) holds every loaded model:
ncnn networks, spandrel models, DiT pipelines and learned metrics. The GPU test skips without one."""

from __future__ import annotations

import warnings
from typing import ClassVar

import numpy as np
import pytest

from restora.errors import ToolError
from restora.model_zoo.loaded import loaded_models, placement, resolve_device, tool_device
from restora.taxonomy import Task
from restora.tools import ToolBox
from restora.tools.base import Tool

try:
    import torch

    HAS_CUDA = torch.cuda.is_available()
except ImportError:  # pragma: no cover
    HAS_CUDA = False


@pytest.fixture
def no_device_env(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("RESTORA_DEVICE", raising=False)
    monkeypatch.delenv("RESTORA_DTYPE", raising=False)


def test_resolve_device_auto_env_and_errors(no_device_env, monkeypatch: pytest.MonkeyPatch):
    assert resolve_device("cpu") == "cpu" and resolve_device("cuda:1") == "cuda:1"
    expect = "cuda" if HAS_CUDA else "cpu"
    assert resolve_device("auto") == resolve_device(None) == resolve_device("") == expect
    assert tool_device("cpu") == "cpu" and tool_device("auto") == expect
    monkeypatch.setenv("RESTORA_DEVICE", "cuda:2")
    assert resolve_device("auto") == "cuda:2" and resolve_device("cpu") == "cpu"
    assert tool_device("cpu") == "cuda:2"  # a tool on the default device follows the environment
    assert tool_device("cuda:0") == "cuda:0"
    with pytest.raises(ValueError, match="device 'gpu': use auto, cpu, cuda"):
        resolve_device("gpu")
    monkeypatch.setenv("RESTORA_DEVICE", "gpu")
    with pytest.raises(ValueError, match="RESTORA_DEVICE 'gpu'"):
        resolve_device("auto")


def test_placement_and_device_config_go_through_resolve_device(no_device_env):
    from restora.config import DeviceConfig
    from restora.model_zoo.loaded import apply, loaded_models

    assert placement("cpu") == ("cpu", "float32")
    assert placement("auto")[0] == resolve_device("auto")
    assert apply(DeviceConfig(device="cpu")) == ("cpu", "float32")
    assert apply(DeviceConfig())[0] == resolve_device("auto")
    before = loaded_models().budget_mb
    try:
        apply(DeviceConfig(device="cpu", memory_mb=1234))
        assert loaded_models().budget_mb == 1234  # the config's budget is the process's
    finally:
        loaded_models().set_budget(before)


class _NeedsGPU(Tool):
    task: ClassVar[Task] = Task.DENOISE
    needs_device: ClassVar[bool] = True

    def run(self, image, params):  # pragma: no cover - never run
        return image


def test_needs_device_follows_where_the_tool_runs(no_device_env, monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(ToolError, match="needs an accelerator"):
        _NeedsGPU(device="cpu")
    assert _NeedsGPU(device="cuda").device == "cuda"
    monkeypatch.setenv("RESTORA_DEVICE", "cuda")
    assert _NeedsGPU(device="cpu").device == "cpu"  # runs on RESTORA_DEVICE (tool_device)


def test_toolbox_resolves_auto_and_accepts_its_old_budget_argument(no_device_env):
    assert ToolBox(device="auto").device == resolve_device("auto")
    assert ToolBox().device == "cpu"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ToolBox(device="cpu", memory_budget_mb=8192, allow=None)  # the old signature, silently
    with pytest.warns(DeprecationWarning, match="one budget"):
        box = ToolBox(memory_budget_mb=100)
    assert box.memory_budget_mb == 100
    with pytest.raises(ValueError, match="use auto, cpu, cuda"):
        ToolBox(device="gpu")


@pytest.fixture
def shared_cache():
    cache = loaded_models()
    budget = cache.budget_mb
    cache.clear()
    yield cache
    cache.clear()
    cache.set_budget(budget)


def test_one_budget_governs_the_ncnn_networks(shared_cache, no_device_env):
    """No LRU of tool instances any more: the networks live in loaded_models(), a dropped one is
    freed and built again on its next use, with the same output."""
    rng = np.random.default_rng(0)
    img = rng.random((48, 40, 3), dtype=np.float32)
    box = ToolBox(allow=["denoise_srmd", "dejpeg_waifu2x"])
    first = box.run("denoise_srmd", img, {"sigma": 15})
    assert shared_cache.keys() == ["ncnn:srmd:denoise_srmd:2"]
    assert box.loaded_mb() == shared_cache.used_mb() == 300
    shared_cache.set_budget(400)  # room for one 300 MB network
    box.run("dejpeg_waifu2x", img, {"level": 1})
    assert shared_cache.keys() == ["ncnn:waifu2x-cunet-denoise:dejpeg_waifu2x:1"]
    again = box.run("denoise_srmd", img, {"sigma": 15})
    np.testing.assert_array_equal(first, again)
    assert shared_cache.keys() == ["ncnn:srmd:denoise_srmd:2"]
    box.get("denoise_srmd").unload()  # unloading a tool drops its models from the cache
    assert shared_cache.keys() == [] and box.loaded_mb() == 0
    np.testing.assert_array_equal(first, box.run("denoise_srmd", img, {"sigma": 15}))


@pytest.mark.skipif(not HAS_CUDA, reason="needs a GPU")
def test_auto_puts_models_and_learned_metric_slots_on_the_gpu(shared_cache, no_device_env, tmp_path, monkeypatch):
    from restora.model_zoo import ZOO_ENV, clear_cache
    from restora.model_zoo.tiny import NAFNET_TOOL, write_tiny_zoo
    from restora.quality import metric_device

    assert resolve_device("auto") == "cuda"
    assert placement("auto")[1] in ("bfloat16", "float16")
    assert metric_device("musiq", "auto") == "cuda" and metric_device("niqe", "auto") == "cpu"
    write_tiny_zoo(tmp_path / "zoo", seed=0)
    monkeypatch.setenv(ZOO_ENV, str(tmp_path / "zoo"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    try:
        rng = np.random.default_rng(0)
        img = rng.random((80, 72, 3), dtype=np.float32)
        gpu = ToolBox(device="auto", allow=[NAFNET_TOOL])
        out = gpu.run(NAFNET_TOOL, img)
        assert gpu.last_info(NAFNET_TOOL)["device"] == "cuda"
        assert any(k.startswith("spandrel:tiny-nafnet:cuda:") for k in shared_cache.keys())
        cpu = ToolBox(device="cpu", allow=[NAFNET_TOOL]).run(NAFNET_TOOL, img)
        assert out.shape == cpu.shape and np.abs(out - cpu).mean() < 0.05  # bf16/fp16 vs fp32
    finally:
        clear_cache()
