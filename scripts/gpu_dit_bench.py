"""Time the all-in-one DiT restorer's diffusers path at a real configuration size, random weights.

Builds FLUX.1-Kontext's transformer (19 double + 38 single blocks, 3072 wide; ~12B parameters) and
its 16-channel VAE from their published configurations with random weights (no hub here), in
bf16 directly on the GPU, and runs FluxKontextPipeline image-to-image at 1024x1024 with
precomputed prompt embeddings (restora encodes each task's fixed prompt once and caches it, so the
text encoders are not in the per-image path). Prints JSON: seconds per image and per step, and the
peak GPU memory.

    python scripts/gpu_dit_bench.py [--size 1024] [--steps 28] [--tiny]   # --tiny: a CPU smoke run
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=28)
    ap.add_argument("--tiny", action="store_true", help="tiny config on the CPU (smoke test)")
    args = ap.parse_args()
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxKontextPipeline, FluxTransformer2DModel

    device = "cpu" if args.tiny or not torch.cuda.is_available() else "cuda"
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    if args.tiny:
        tcfg = dict(patch_size=1, in_channels=64, num_layers=1, num_single_layers=1, attention_head_dim=16,
                    num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32, guidance_embeds=True,
                    axes_dims_rope=(4, 6, 6))
        vcfg = dict(in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 2,
                    up_block_types=["UpDecoderBlock2D"] * 2, block_out_channels=[8, 16], layers_per_block=1,
                    latent_channels=16, norm_num_groups=8, scaling_factor=0.3611, shift_factor=0.1159,
                    use_quant_conv=False, use_post_quant_conv=False)
        text_len, text_dim, pooled_dim = 16, 32, 32
    else:  # black-forest-labs/FLUX.1-Kontext-dev transformer/config.json and vae/config.json
        tcfg = dict(patch_size=1, in_channels=64, num_layers=19, num_single_layers=38, attention_head_dim=128,
                    num_attention_heads=24, joint_attention_dim=4096, pooled_projection_dim=768, guidance_embeds=True,
                    axes_dims_rope=(16, 56, 56))
        vcfg = dict(in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 4,
                    up_block_types=["UpDecoderBlock2D"] * 4, block_out_channels=[128, 256, 512, 512],
                    layers_per_block=2, latent_channels=16, norm_num_groups=32, scaling_factor=0.3611,
                    shift_factor=0.1159, use_quant_conv=False, use_post_quant_conv=False, sample_size=1024)
        text_len, text_dim, pooled_dim = 512, 4096, 768
    t0 = time.perf_counter()
    torch.manual_seed(0)
    with torch.device(device):
        prev = torch.get_default_dtype()
        torch.set_default_dtype(dtype)
        try:
            transformer = FluxTransformer2DModel(**tcfg)
            vae = AutoencoderKL(**vcfg)
        finally:
            torch.set_default_dtype(prev)
    transformer.eval()
    vae.eval()
    build = time.perf_counter() - t0
    params = sum(p.numel() for p in transformer.parameters())
    pipe = FluxKontextPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15),
        vae=vae, text_encoder=None, tokenizer=None, text_encoder_2=None, tokenizer_2=None, transformer=transformer,
    )
    g = torch.Generator(device=device).manual_seed(1)
    embeds = torch.randn(1, text_len, text_dim, generator=g, device=device, dtype=dtype)
    pooled = torch.randn(1, pooled_dim, generator=g, device=device, dtype=dtype)
    from PIL import Image
    import numpy as np

    image = Image.fromarray((np.random.default_rng(0).random((args.size, args.size, 3)) * 255).astype(np.uint8))

    def run(steps: int) -> float:
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        out = pipe(image=image, prompt_embeds=embeds, pooled_prompt_embeds=pooled, height=args.size, width=args.size,
                   num_inference_steps=steps, guidance_scale=2.5, generator=torch.Generator(device=device).manual_seed(0),
                   max_area=args.size * args.size, _auto_resize=False, output_type="np")
        if device == "cuda":
            torch.cuda.synchronize()
        assert out.images[0].shape == (args.size, args.size, 3), out.images[0].shape
        return time.perf_counter() - t

    run(2)  # warm-up: kernels, allocator
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    seconds = run(args.steps)
    one = run(1)
    result = {
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "size": args.size, "steps": args.steps, "dtype": str(dtype), "transformer_params": params,
        "build_seconds": round(build, 2), "seconds_per_image": round(seconds, 3),
        "seconds_per_step": round((seconds - one) / max(args.steps - 1, 1), 4),
        "seconds_fixed": round(one - (seconds - one) / max(args.steps - 1, 1), 3),
        "peak_gpu_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if device == "cuda" else None,
        "torch": torch.__version__,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
