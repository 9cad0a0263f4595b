"""restora.config: typed, checked configs; the one place RESTORA_* variables are read, all listed
in the README; and the package layout's rule that imports only point down (no loops)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from restora.config import ENV_VARS, TEST_ENV_VARS, ConfigError, DeviceConfig, RunConfig, env

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "restora"


def test_env_reads_and_checks_every_variable():
    e = env(
        {
            "RESTORA_DATA": "/d",
            "RESTORA_ZOO": "/z",
            "RESTORA_ZOO_DOWNLOAD": "1",
            "RESTORA_DEVICE": "cuda:1",
            "RESTORA_DTYPE": "float16",
            "RESTORA_MODEL_MEMORY_MB": "4096",
            "RESTORA_DIT": "flux-kontext-dev",
            "RESTORA_DIT_OFFLOAD": "model",
            "RESTORA_NCNN_THREADS": "2",
            "RESTORA_PLANNER_KEY": "k",
        }
    )
    assert (e.data, e.zoo, e.zoo_download, e.device, e.dtype) == (Path("/d"), Path("/z"), True, "cuda:1", "float16")
    assert (e.model_memory_mb, e.dit, e.dit_offload, e.ncnn_threads, e.planner_key) == (4096, "flux-kontext-dev", "model", 2, "k")
    assert env({}) == env({"RESTORA_ZOO": "  "})  # unset and blank are the same
    for name, value in [("RESTORA_NCNN_THREADS", "two"), ("RESTORA_MODEL_MEMORY_MB", "0"), ("RESTORA_DIT_OFFLOAD", "all")]:
        with pytest.raises(ConfigError, match=name):
            env({name: value})


def test_a_bad_variable_is_a_clear_error_where_it_is_used(monkeypatch):
    from restora.tools._ncnn import default_threads

    monkeypatch.setenv("RESTORA_NCNN_THREADS", "-3")
    with pytest.raises(ConfigError, match="RESTORA_NCNN_THREADS must be a positive integer, got '-3'"):
        default_threads()
    monkeypatch.setenv("RESTORA_NCNN_THREADS", "3")
    assert default_threads() == 3


def test_run_config_is_checked_on_creation_and_replace():
    assert RunConfig().to_dict() == {
        "max_steps": 8, "max_seconds": 600.0, "min_gain": 0.002, "min_consistency": 0.25, "request": None,
        "plan_megapixels": 2.0, "plan_crop": 256, "sibling_trials": False, "perception": None, "guard": True, "guard_vouch": True,
    }
    with pytest.raises(ValueError, match="plan_crop"):
        RunConfig(plan_crop=10)
    with pytest.raises(ValueError, match="plan_megapixels"):
        RunConfig(plan_megapixels=0)
    with pytest.raises(ValueError, match="max_steps must be >= 0"):
        RunConfig(max_steps=-1)
    with pytest.raises(ValueError, match="max_seconds must be > 0"):
        RunConfig(max_seconds=0)
    with pytest.raises(ValueError, match="min_consistency"):
        RunConfig().replace(min_consistency=2.0)
    with pytest.raises(TypeError, match="unknown RunConfig fields"):
        RunConfig().replace(max_stepz=3)
    assert RunConfig().replace(max_steps=3).max_steps == 3
    for f in RunConfig.__dataclass_fields__.values():
        assert f.metadata.get("help"), f"{f.name} has no help text"


def test_device_config():
    from restora.model_zoo.loaded import apply

    assert apply(DeviceConfig(device="cpu")) == ("cpu", "float32")
    assert DeviceConfig(device="auto").device is None
    with pytest.raises(ValueError, match="device 'gpu'"):
        DeviceConfig(device="gpu")
    with pytest.raises(ValueError, match="dtype"):
        DeviceConfig(dtype="int8")


def test_only_config_reads_restora_variables():
    """Every RESTORA_* name in the package's code (not in docstrings or help text) is in config.py."""
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.name == "config.py" and path.parent == SRC:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                fn = ast.unparse(node.func)
                if fn in ("os.environ.get", "os.getenv", "environ.get", "getenv") or fn.endswith("environ.__getitem__"):
                    args = [ast.unparse(a) for a in node.args]
                    if any("RESTORA_" in a for a in args) or (args and not args[0].startswith(("'", '"'))):
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(node)}")
            if isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
                key = ast.unparse(node.slice)
                if "RESTORA_" in key and not isinstance(getattr(node, "ctx", None), ast.Store):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(node)}")
    assert not offenders, "read RESTORA_* variables through restora.config.env():\n" + "\n".join(offenders)


def test_every_variable_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for name in (*ENV_VARS, *TEST_ENV_VARS):
        assert f"| `{name}` |" in readme, name
    used = set(re.findall(r"RESTORA_[A-Z_]+", "".join(p.read_text() for p in SRC.rglob("*.py"))))
    used |= set(re.findall(r"RESTORA_[A-Z_]+", "".join(p.read_text() for p in (ROOT / "tests").glob("*.py"))))
    undocumented = sorted(used - set(ENV_VARS) - set(TEST_ENV_VARS))
    assert not undocumented, f"RESTORA_* names used but not listed in restora.config: {undocumented}"


def _package_imports() -> dict[str, set[str]]:
    """restora's top-level packages/modules -> the others they import (anywhere in their code)."""

    def unit(module: str) -> str:
        parts = module.split(".")
        return parts[1] if len(parts) > 1 else ""

    edges: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        me = unit(".".join(path.relative_to(SRC.parent).with_suffix("").parts))
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for n in names:
                if n.startswith("restora.") and unit(n) not in ("", me):
                    edges.setdefault(me, set()).add(unit(n))
    return edges


def test_no_two_packages_import_each_other():
    edges = _package_imports()

    def reaches(a: str) -> set[str]:
        seen, todo = set(), [a]
        while todo:
            for b in edges.get(todo.pop(), ()):
                if b not in seen:
                    seen.add(b)
                    todo.append(b)
        return seen

    loops = sorted({tuple(sorted((a, b))) for a in edges for b in edges[a] if a in reaches(b)})
    assert not loops, f"import loops between packages: {loops}"
    # the foundations import none of the packages built on them
    for low in ("config", "imageio", "errors", "taxonomy", "cases", "traces", "quality", "model_zoo"):
        assert not edges.get(low, set()) & {"agent", "bench", "batch", "synth", "cli", "planners"}, low
