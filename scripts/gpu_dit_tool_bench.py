"""Run the ``dit_restore`` tool at FLUX.1-Kontext's real size (random weights) and measure it.

No hub can be reached, so this builds FLUX.1-Kontext-dev's pipeline from its published
configurations with random weights: the 12B transformer (19 double + 38 single blocks, 3072 wide),
the 16-channel VAE, the T5-XXL encoder (4.7B) and the CLIP-L text encoder, in bf16, with offline
tokenizers. It saves the pipeline with ``save_pretrained`` into a zoo folder with a pinned
``card.json``, frees it, and then goes through restora itself: ``ToolBox(device="cuda")`` loads
the card through model_zoo (sha256 checks, ``from_pretrained``) and runs the tool on a 1024 x 1024
image (native resolution) twice, then on a 2048 x 2048 one (tiled). Prints JSON: build, save,
hash and load seconds, seconds per image and per step, peak GPU memory, and the tool's info.

    python scripts/gpu_dit_tool_bench.py --zoo /tmp/zoo [--steps 28] [--no-tiles] [--offload model]
    python scripts/gpu_dit_tool_bench.py --zoo /tmp/zoo --tiny     # CPU smoke run of the same path
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

CARD_ID = "flux-kontext-random"


def build(tiny: bool, device: str, dtype: torch.dtype):
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxKontextPipeline, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    from restora.model_zoo.tiny import _clip_tokenizer, _t5_tokenizer

    tok, tok2 = _clip_tokenizer(), _t5_tokenizer()
    if tiny:
        t = dict(num_layers=1, num_single_layers=1, attention_head_dim=16, num_attention_heads=2,
                 joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=(4, 4, 8))
        v = dict(block_out_channels=(8, 8, 16, 16), layers_per_block=1, norm_num_groups=4)
        clip = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, projection_dim=32)
        t5 = dict(d_model=32, d_kv=16, d_ff=64, num_layers=1, num_heads=2)
    else:  # black-forest-labs/FLUX.1-Kontext-dev: transformer, vae, text_encoder (CLIP-L), text_encoder_2 (T5-XXL)
        t = dict(num_layers=19, num_single_layers=38, attention_head_dim=128, num_attention_heads=24,
                 joint_attention_dim=4096, pooled_projection_dim=768, axes_dims_rope=(16, 56, 56))
        v = dict(block_out_channels=(128, 256, 512, 512), layers_per_block=2, norm_num_groups=32)
        clip = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12, projection_dim=768)
        t5 = dict(d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64)
    torch.manual_seed(0)
    prev = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            transformer = FluxTransformer2DModel(patch_size=1, in_channels=64, guidance_embeds=True, **t)
            vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
                                up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=16, sample_size=1024,
                                scaling_factor=0.3611, shift_factor=0.1159, use_quant_conv=False,
                                use_post_quant_conv=False, **v)
            text_encoder = CLIPTextModel(CLIPTextConfig(
                vocab_size=max(len(tok), 49408 if not tiny else len(tok)), max_position_embeddings=77,
                hidden_act="quick_gelu", bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                pad_token_id=tok.pad_token_id, **clip))
            text_encoder_2 = T5EncoderModel(T5Config(
                vocab_size=max(len(tok2), 32128 if not tiny else len(tok2)), relative_attention_num_buckets=32,
                feed_forward_proj="gated-gelu", is_encoder_decoder=False, use_cache=False,
                pad_token_id=tok2.pad_token_id, eos_token_id=tok2.eos_token_id,
                decoder_start_token_id=tok2.pad_token_id, **t5))
    finally:
        torch.set_default_dtype(prev)
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=True,
                                                base_shift=0.5, max_shift=1.15, base_image_seq_len=256,
                                                max_image_seq_len=4096)
    return FluxKontextPipeline(scheduler=scheduler, vae=vae.eval(), text_encoder=text_encoder.eval(), tokenizer=tok,
                               text_encoder_2=text_encoder_2.eval(), tokenizer_2=tok2, transformer=transformer.eval())


def params_of(pipe) -> dict[str, float]:
    return {name: sum(p.numel() for p in getattr(pipe, name).parameters()) / 1e9
            for name in ("transformer", "text_encoder_2", "text_encoder", "vae")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--zoo", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=28)
    ap.add_argument("--tiny", action="store_true", help="tiny configuration on the CPU (smoke test)")
    ap.add_argument("--no-tiles", action="store_true", help="skip the 2048 x 2048 tiled run")
    ap.add_argument("--offload", choices=["none", "model", "sequential"], default="none",
                    help="diffusers CPU offload for the tool (RESTORA_DIT_OFFLOAD)")
    args = ap.parse_args()
    device = "cpu" if args.tiny else "cuda"
    dtype = torch.float32 if args.tiny else torch.bfloat16
    native = 128 if args.tiny else 1024
    report: dict = {"device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu", "torch": torch.__version__}
    import diffusers

    report["diffusers"] = diffusers.__version__

    t0 = time.perf_counter()
    pipe = build(args.tiny, device, dtype)
    report["params_billion"] = {k: round(v, 3) for k, v in params_of(pipe).items()}
    report["build_s"] = round(time.perf_counter() - t0, 1)

    folder = args.zoo / CARD_ID
    t0 = time.perf_counter()
    pipe.save_pretrained(folder, safe_serialization=True, max_shard_size="10GB")
    report["save_s"] = round(time.perf_counter() - t0, 1)
    del pipe
    if device == "cuda":
        torch.cuda.empty_cache()

    from restora.model_zoo import sha256_file
    from restora.model_zoo.cards import ModelCard

    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.name != "card.json")
    t0 = time.perf_counter()
    with ThreadPoolExecutor(8) as ex:  # hashlib releases the GIL: hash the shards in parallel
        digests = dict(zip(files, ex.map(lambda n: sha256_file(folder / n), files)))
    report["hash_s"] = round(time.perf_counter() - t0, 1)
    report["bytes_gb"] = round(sum((folder / n).stat().st_size for n in files) / 1e9, 2)
    card = ModelCard.model_validate(dict(
        id=CARD_ID, kind="diffusers", pipeline_class="FluxKontextPipeline", files=files, sha256=digests,
        licence="random weights (FLUX.1-Kontext-dev configuration)", task="denoise",
        tasks=["denoise", "motion_deblur", "defocus_deblur", "dehaze", "derain", "low_light", "dejpeg", "super_resolution"],
        memory_mb=34_000 if not args.tiny else 64, format="safetensors",
        defaults={"steps": args.steps, "guidance": 2.5, "native_pixels": native * native, "multiple": 16,
                  "preference": 100, "needs_device": not args.tiny}))
    (folder / "card.json").write_text(card.model_dump_json(indent=2, exclude_defaults=True))

    os.environ["RESTORA_ZOO"] = str(args.zoo)
    os.environ["RESTORA_DIT"] = CARD_ID
    os.environ["RESTORA_DIT_OFFLOAD"] = args.offload
    report["offload"] = args.offload
    from restora.tools import ToolBox

    box = ToolBox(device=device, allow=["dit_restore"], memory_budget_mb=200_000)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    box.get("dit_restore")
    report["load_s"] = round(time.perf_counter() - t0, 1)
    if device == "cuda":
        report["loaded_gpu_gb"] = round(torch.cuda.memory_allocated() / 2**30, 2)

    rng = np.random.default_rng(0)
    runs = []
    sizes = [(native, native), (native, native)] + ([] if args.no_tiles else [(2 * native, 2 * native)])
    for i, (h, w) in enumerate(sizes):
        img = rng.random((h, w, 3), dtype=np.float32)
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        out = box.run("dit_restore", img, {"task": "denoise" if i != 1 else "derain", "seed": i})
        if device == "cuda":
            torch.cuda.synchronize()
        sec = time.perf_counter() - t0
        info = box.last_info("dit_restore")
        row = {"size": [h, w], "seconds": round(sec, 2), "resolution": info["resolution"], "tiles": info["tiles"],
               "run_size": info["run_size"], "steps": info["steps"],
               "seconds_per_step": round(sec / (info["steps"] * info["tiles"]), 3), "shape_ok": out.shape == img.shape}
        if device == "cuda":
            row["peak_gpu_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        runs.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    report["runs"] = runs
    report["note"] = "run 1 includes encoding the task's prompt (T5 + CLIP); run 2 is another task, also encoded once"
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
