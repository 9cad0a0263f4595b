#!/usr/bin/env bash
# The planner at its real size on GPUs: Qwen2.5-VL-3B/7B-Instruct, LoRA SFT on ~10k synthesized
# trajectories, then GRPO, then served by vLLM with the adapter. NOT RUN YET: no GPU (and no model
# hub) was available where this was written; the figures below are estimates, with their reasons.
#
#   bash scripts/gpu_planner_recipe.sh [3b|7b]       # default 7b; every step resumes when rerun
#
# Needs: a GPU machine with restora installed with `.[train]` (TRL 1.16, peft 0.21, accelerate),
# the base model in the Hugging Face cache (`hf download Qwen/Qwen2.5-VL-7B-Instruct`), and for
# GRPO generation and serving, vLLM (`pip install vllm` in the same environment for TRL's colocate
# mode; a separate one for `vllm serve`).
#
# Expected cost per step (estimates, not measured):
#   Qwen2.5-VL-7B: 8.3B params, 16.6 GB in bf16. A planner row is ~1.8k text tokens (the tool
#   catalogue is ~1.6k of them) + 256 image tokens (448 px, the planner's image cap) + a ~50-token
#   answer (perception answers ~110). LoRA r 16 on the language model's projections: ~40M trainable
#   params (0.5 GB with AdamW states). With gradient checkpointing, ~1 GB of activations per row;
#   the loss runs the LM head on answer tokens only (TRL's fused head on a GPU), so no 2k x 152k
#   logit tensor. SFT at 8 rows per GPU: ~26 GB peak (fits 40 GB); ~6 x 8.3B x 2.1k = 100 TFLOP
#   per row incl. recompute, ~0.25 s per row at 40% of an H100's bf16 peak: ~2 s per step.
#   10k trajectories + ~3k perception rows, 2 epochs = ~3.3k steps of 8: ~1.8 h on one H100,
#   ~15 min on 8 (accelerate launch). Qwen2.5-VL-3B: about 0.45x the time, ~12 GB peak.
#   GRPO, 8 prompts x 4 replies per step: generation by vLLM (colocate, 30% of the GPU for weights
#   + KV cache) ~2-3 s; log-probs and backward over 32 full sequences ~3 PFLOP, ~8 s; rewards run
#   the real tools on the rows' 256 px images on the CPU (cached per image and choice), a few
#   seconds with 16 cores: ~15 s per step, ~45-50 GB peak on an 80 GB GPU; 500 steps ~2 h.
set -euo pipefail
SIZE="${1:-7b}"
case "$SIZE" in
  3b) BASE_REPO="Qwen/Qwen2.5-VL-3B-Instruct" ;;
  7b) BASE_REPO="Qwen/Qwen2.5-VL-7B-Instruct" ;;
  *) echo "usage: $0 [3b|7b]" >&2; exit 2 ;;
esac
BASE="$(python -c "from huggingface_hub import snapshot_download; print(snapshot_download('$BASE_REPO', local_files_only=True))")"
DATA="${DATA:-../shared/data}"
OUT="${OUT:-runs/planner-$SIZE}"
GPUS="$(python -c 'import torch; print(torch.cuda.device_count())')"
mkdir -p "$OUT"

# 1. ~10k trajectories from the training pool (never the benchmark photos), 256 px crops.
#    About 21 trajectories per minute per core here (PLATFORM.md); with 16 workers ~30 min.
restora synth --clean "$DATA/clean/cbsd68" "$DATA/clean/live1" --out "$OUT/synth" --n 10000 --size 256 --workers "$(nproc)"

# 2. LoRA SFT: bf16, gradient checkpointing, 8 rows per GPU, 2 epochs (--max-steps -1), held-out
#    replies before and after on 256 validation rows.
accelerate launch --num_processes "$GPUS" -m restora.cli train planner sft \
  --data "$OUT/synth" --base "$BASE" --out "$OUT/sft" --max-steps -1 --epochs 2 \
  --batch-size 8 --grad-accum 1 --lr 2e-4 --lora-r 16 --lora-alpha 32 --bf16 --gradient-checkpointing \
  --eval-every 200 --eval-rows 256 --device auto

# 3. GRPO from the SFT adapter (generation through vLLM is TRL's colocate mode: add use_vllm=True
#    with PlannerGRPOConfig in Python until the command line has the switch).
python - "$OUT" "$BASE" <<'PY'
import sys
from pathlib import Path
from restora.trainer.planner.grpo import PlannerGRPOConfig, train_planner_grpo

out, base = Path(sys.argv[1]), sys.argv[2]
cfg = PlannerGRPOConfig(data=out / "synth", base=base, adapter=str(out / "sft"), out=out / "grpo", max_steps=500,
                        batch_size=32, num_generations=4, temperature=0.9, learning_rate=1e-5, beta=0.01,
                        bf16=True, gradient_checkpointing=True, use_vllm=True, vllm_mode="colocate", eval_rows=128)
r = train_planner_grpo(cfg)
print("mean reward", r["train_reward_first"], "->", r["train_reward_last"], "held-out", r["before"]["reward"], "->", r["after"]["reward"])
PY

# 4. Serve it: vLLM with the adapter as a LoRA module, then restora asks for that module.
echo "serve:  vllm serve $BASE_REPO --served-model-name base --enable-lora --max-lora-rank 16 \\"
echo "          --lora-modules restora=$OUT/grpo/adapter --max-model-len 8192 --limit-mm-per-prompt '{\"image\": 2, \"video\": 0}'"
echo "run:    restora run photos/ -o out/ --planner vlm --planner-url http://127.0.0.1:8000/v1 --planner-model restora"
echo "eval:   restora eval planner --data $OUT/synth --planner vlm --planner-url http://127.0.0.1:8000/v1 --planner-model restora --out $OUT/eval"
