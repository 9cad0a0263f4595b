"""Training the Qwen-VL planner on ``restora synth`` rows (TRL): ``sft`` (SFTTrainer), ``grpo``
(GRPOTrainer with restora's reward functions), ``evaluate`` (held-out figures), ``data`` (rows),
``common`` (LoRA, run folder, report).

Examples:
    restora train planner sft --data out/synth --base out/tiny-planner --out runs/sft --max-steps 300
    restora train planner grpo --data out/synth --base out/tiny-planner --adapter runs/sft --out runs/grpo
    restora eval planner --data out/synth --planner hf --planner-model out/tiny-planner --planner-adapter runs/sft --out out/eval
"""
