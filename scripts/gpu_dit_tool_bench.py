"""Run the ``dit_restore`` tool at FLUX.1-Kontext's real size (random weights) and measure it.

No hub can be reached, so this builds FLUX.1-Kontext-dev's pipeline from its published
configurations with random weights (``restora.model_zoo.tiny.dit.flux_kontext_pipeline(size="full")``:
the 12B transformer, 19 double + 38 single blocks, 3072 wide; the 16-channel VAE; T5-XXL, 4.7B;
CLIP-L), in bf16 on the GPU, with offline tokenizers. It saves the pipeline with ``save_pretrained`` into a zoo folder with a pinned
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
    from restora.model_zoo.tiny.dit import flux_kontext_pipeline

    pipe = flux_kontext_pipeline(0, "tiny" if args.tiny else "full", device=device, dtype=dtype)
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
