"""One SFT step and one RL step of the DiT restorer's trainers at FLUX.1-Kontext's real size
(random weights), timed, with peak GPU memory.

No hub can be reached, so this builds FLUX.1-Kontext-dev's pipeline from its published
configurations with random weights (``restora.model_zoo.tiny.dit.flux_kontext_pipeline(size="full")``:
the 11.9B transformer, 19 double + 38 single blocks, 3072 wide; T5-XXL; CLIP-L; the 16-channel VAE)
in bf16 on the GPU and runs the trainers' own pieces on one 1024 x 1024 pair (a public-domain
photo from scikit-image, degraded by ``restora.degrade``):

* **SFT step** (:mod:`restora.trainer.dit_sft`): the task's instruction encoded once, the text
  encoders moved to the CPU, the pair VAE-encoded once, a LoRA (rank ``--rank``) on the
  transformer, gradient checkpointing, ``flow_matching_backward`` over ``--batch`` pairs in
  micro-batches of ``--micro-batch``, one AdamW step;
* **RL step** (:mod:`restora.trainer.dit_rl`): a rank-``--rl-rank`` LoRA stacked on the SFT one,
  ``--group`` rollouts of the input with the pipeline (``--sample-steps`` steps, as the tool
  samples), the reward (BRISQUE + PIQE + SSIM), group optimalities, blend weights, and
  ``nft_backward`` (no-grad v_old and v_sft passes, then flow matching on the ground truth and
  DiffusionNFT on the rollouts) in micro-batches, one AdamW step.

Prints JSON: parameter counts, build seconds, seconds and peak GPU memory of each phase (prompt
encoding, latents, SFT step, rollouts, reward, RL update), and the memory plan it ran.

Memory plan for an 80 GB card (what this script does): transformer in bf16 (23.8 GB), frozen;
T5-XXL + CLIP used once for the fixed instructions, then on the CPU (0 GB during training); VAE
in bf16 (0.2 GB); LoRA parameters, their gradients and AdamW states in float32 (rank 16 on the
default modules: ~66M parameters, ~1 GB with all of them); gradient checkpointing on every
transformer block (without it, one 1024-px sample's activations across the 57 blocks, ~8.7k
tokens of width 3072, exceed the card); micro-batch 1 with gradient accumulation for any batch
or group size; no CPU offload of the transformer (it fits; ``RESTORA_DIT_OFFLOAD=model`` is for
inference on small cards). Peak figures must come from running this on the card: this session
had no GPU.

    python scripts/gpu_dit_train_step.py [--px 1024] [--rank 16] [--rl-rank 4] [--group 4] [--sample-steps 28]
    python scripts/gpu_dit_train_step.py --tiny      # CPU smoke run of the same path (tiny config, 64 px)
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--px", type=int, default=1024, help="image side (multiple of 16)")
    ap.add_argument("--rank", type=int, default=16, help="SFT LoRA rank")
    ap.add_argument("--rl-rank", type=int, default=4, help="RL LoRA rank (IRPO: 4)")
    ap.add_argument("--batch", type=int, default=1, help="SFT pairs per step")
    ap.add_argument("--group", type=int, default=4, help="RL samples of the input (G)")
    ap.add_argument("--micro-batch", type=int, default=1, help="samples per forward/backward (gradients accumulated)")
    ap.add_argument("--sample-steps", type=int, default=28, help="sampling steps of the RL rollouts")
    ap.add_argument("--no-checkpointing", action="store_true", help="no gradient checkpointing (will not fit at 1024 px)")
    ap.add_argument("--tiny", action="store_true", help="tiny configuration on the CPU (smoke test)")
    args = ap.parse_args()
    if args.tiny:
        args.px, args.sample_steps = min(args.px, 64), min(args.sample_steps, 2)
    device = "cpu" if args.tiny else "cuda"
    dtype = torch.float32 if args.tiny else torch.bfloat16
    cuda = device == "cuda"
    report: dict = {"device": torch.cuda.get_device_name(0) if cuda else "cpu", "torch": torch.__version__, "args": vars(args)}

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    def phase(name: str, fn):
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        sync()
        t0 = time.perf_counter()
        out = fn()
        sync()
        row = {"s": round(time.perf_counter() - t0, 2)}
        if cuda:
            row["peak_gb"] = round(torch.cuda.max_memory_allocated() / 1e9, 2)
            row["allocated_gb"] = round(torch.cuda.memory_allocated() / 1e9, 2)
        report[name] = row
        print(name, row, flush=True)
        return out

    from accelerate import Accelerator
    from skimage import data as skdata

    from restora import degrade
    from restora.model_zoo.tiny.dit import flux_kontext_pipeline
    from restora.taxonomy import Task
    from restora.trainer import dit_common as dc
    from restora.trainer.dit_rl import RestorationReward, activate, blend_weights, group_optimality, nft_backward, rmse
    from restora.trainer.dit_sft import flow_matching_backward

    pipe = phase("build", lambda: flux_kontext_pipeline(0, "tiny" if args.tiny else "full", device=device, dtype=dtype))
    pipe.set_progress_bar_config(disable=True)
    tr = pipe.transformer
    for part in (pipe.vae, pipe.text_encoder, pipe.text_encoder_2, tr):
        part.requires_grad_(False)
    report["params_billion"] = {n: round(sum(p.numel() for p in getattr(pipe, n).parameters()) / 1e9, 3) for n in ("transformer", "text_encoder_2", "text_encoder", "vae")}

    import cv2

    clean = cv2.resize(skdata.astronaut().astype(np.float32) / 255.0, (args.px, args.px), interpolation=cv2.INTER_AREA)
    noisy = degrade.apply(clean, "noise", 0.6, seed=0)
    task = Task.DENOISE
    prompts = phase("encode_prompt", lambda: dc.encode_prompts(pipe, [task], device))
    dc.offload_text_encoders(pipe)
    if cuda:
        torch.cuda.empty_cache()
    lat = phase("vae_encode", lambda: dc.encode_images(pipe, [clean, noisy], device, batch=1))
    x_clean, x_deg = lat[:1].to(device), lat[1:].to(device)

    acc = Accelerator(mixed_precision="no" if args.tiny else "bf16", cpu=not cuda)
    flow = dc.KontextFlow(pipe, args.px, 2.5, device, dtype)
    dc.add_lora(tr, args.rank, float(args.rank), dc.LORA_TARGETS, "sft")
    sft_params = [p for p in tr.parameters() if p.requires_grad]
    report["lora_params_million"] = {"sft": round(sum(p.numel() for p in sft_params) / 1e6, 2)}
    if not args.no_checkpointing:
        tr.enable_gradient_checkpointing()
    tr.train()
    opt = torch.optim.AdamW(sft_params, lr=1e-4)
    g = torch.Generator().manual_seed(0)
    e, pooled, text_ids = prompts[task]
    b = args.batch

    def sft_step() -> float:
        x0, cond = x_clean.repeat(b, 1, 1), x_deg.repeat(b, 1, 1)
        noise = torch.randn(x0.shape, generator=g).to(device)
        sigma = flow.sigmas(b, g, "logit_normal").to(device)
        xt = (1 - sigma.view(-1, 1, 1)) * x0 + sigma.view(-1, 1, 1) * noise
        opt.zero_grad(set_to_none=True)
        loss = flow_matching_backward(flow, tr, acc, xt, cond, sigma, noise - x0, e.repeat(b, 1, 1).to(device), pooled.repeat(b, 1).to(device), text_ids, args.micro_batch)
        opt.step()
        return loss

    report["sft_loss"] = round(phase("sft_step", sft_step), 5)
    del opt
    if cuda:
        torch.cuda.empty_cache()

    # RL: a rank-rl_rank LoRA on top of the (now frozen) SFT one
    dc.add_lora(tr, args.rl_rank, float(args.rl_rank), dc.LORA_TARGETS, "rl")
    activate(tr, ["sft", "rl"], "rl")
    rl_params = [p for p in tr.parameters() if p.requires_grad]
    report["lora_params_million"]["rl"] = round(sum(p.numel() for p in rl_params) / 1e6, 2)
    opt = torch.optim.AdamW(rl_params, lr=5e-5)
    G = args.group
    tr.eval()
    x0s, imgs = phase("rollouts", lambda: dc.restore_images(pipe, noisy, task, prompts, args.sample_steps, 2.5, list(range(G)), latents=True))
    tr.train()
    reward = RestorationReward(["brisque", "piqe"], 1.0, 1.0)
    rows = phase("reward", lambda: [reward(y, clean) for y in imgs])
    _, prob = group_optimality(np.array([[r["reward"] for r in rows]]), 1.0)
    w = blend_weights(np.array([rmse(y, clean) for y in imgs]))

    def rl_update() -> dict:
        eps = torch.randn(x0s.shape, generator=g).to(device)
        sigma = flow.sigmas(G, g, "logit_normal").to(device)
        opt.zero_grad(set_to_none=True)
        parts = nft_backward(
            flow, tr, tr, acc, x0s.to(device), x_clean.repeat(G, 1, 1), x_deg.repeat(G, 1, 1), eps, sigma,
            torch.tensor(prob.ravel(), dtype=torch.float32, device=device), torch.tensor(w, dtype=torch.float32, device=device),
            e.repeat(G, 1, 1).to(device), pooled.repeat(G, 1).to(device), text_ids, beta=1.0, kl_weight=0.1, micro_batch=args.micro_batch,
        )
        opt.step()
        return parts

    report["rl_losses"] = {k: round(v, 6) for k, v in phase("rl_update", rl_update).items()}
    report["rl_step_s"] = round(report["rollouts"]["s"] + report["reward"]["s"] + report["rl_update"]["s"], 2)
    report["rewards"] = [round(r["reward"], 4) for r in rows]
    report["plan"] = {
        "weights": "transformer bf16, frozen; text encoders on the CPU after encoding the instructions; VAE bf16",
        "lora": f"SFT rank {args.rank}, RL rank {args.rl_rank} stacked, float32 parameters/grads/AdamW",
        "gradient_checkpointing": not args.no_checkpointing,
        "micro_batch": args.micro_batch,
        "offload": "none",
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
