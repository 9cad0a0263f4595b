"""``restora zoo tiny OUTDIR``: a zoo of tiny random-weight checkpoints, with their cards.

Weights cannot be downloaded here, yet the DiT and spandrel tools must run their real loading and
inference code. This writes, under ``OUTDIR``, one folder per card with the files and a
``card.json`` that pins every file's sha256:

* ``tiny-flux-kontext/``: a complete diffusers ``FluxKontextPipeline`` (tiny transformer, VAE,
  CLIP and T5 encoders, offline tokenizers), saved with ``save_pretrained``; native size 128 x 128
  so that larger images exercise the tiled path;
* ``tiny-flux-kontext-lora/``: a LoRA adapter for it, switched on for ``denoise``;
* ``tiny-nafnet/``: a NAFNet (width 8) in the layout spandrel's detector expects, as the tool
  ``denoise_tiny_nafnet``, with 64-pixel tiles.

With ``RESTORA_ZOO=OUTDIR`` these cards join the built-in ones, so ``restora run IMG --allow
dit_restore`` (or ``--allow denoise_tiny_nafnet``) runs end to end on a CPU. Their outputs are
noise-like (random weights): they test the machinery, not restoration.

Examples:
    >>> from restora.model_zoo.tiny import write_tiny_zoo
    >>> cards = write_tiny_zoo("out/zoo")                          # doctest: +SKIP
    >>> sorted(cards)                                              # doctest: +SKIP
    ['tiny-flux-kontext', 'tiny-flux-kontext-lora', 'tiny-nafnet']
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from restora.model_zoo import CARD_NAME, sha256_file
from restora.model_zoo.cards import ModelCard
from restora.taxonomy import Task

DIT_ID = "tiny-flux-kontext"
LORA_ID = "tiny-flux-kontext-lora"
NAFNET_ID = "tiny-nafnet"
NAFNET_TOOL = "denoise_tiny_nafnet"
_LICENCE = "Apache-2.0 (random weights written by restora zoo tiny)"


def _card_fields() -> dict[str, dict]:
    return {
        DIT_ID: dict(
            kind="diffusers",
            format="safetensors",
            pipeline_class="FluxKontextPipeline",
            task=Task.DENOISE,
            tasks=tuple(Task),
            memory_mb=64,
            defaults={
                "steps": 2,
                "guidance": 2.5,
                "native_pixels": 128 * 128,
                "multiple": 16,
                "preference": 0,
                "cost": 2.0,
                "needs_device": False,
            },
            source="restora zoo tiny",
            description="tiny random-weight FLUX.1 Kontext pipeline (tests the DiT path; output is noise)",
        ),
        LORA_ID: dict(
            kind="lora",
            format="safetensors",
            base=DIT_ID,
            task=Task.DENOISE,
            memory_mb=1,
            source="restora zoo tiny",
            description="tiny random LoRA adapter for tiny-flux-kontext, used for denoise",
        ),
        NAFNET_ID: dict(
            kind="spandrel",
            format="safetensors",
            tool=NAFNET_TOOL,
            task=Task.DENOISE,
            memory_mb=16,
            defaults={"tile": 64, "cost": 0.5},
            source="restora zoo tiny",
            description="tiny random-weight NAFNet (width 8) loaded by spandrel (output is noise)",
        ),
    }


def write_tiny_zoo(outdir: str | os.PathLike, seed: int = 0, overwrite: bool = False) -> dict[str, ModelCard]:
    """Write the tiny checkpoints and their cards under ``outdir``; return the cards by id.

    Each card's folder is built in a temporary folder and moved into place whole, so a crash
    never leaves a half-written card. An existing card folder is an error unless ``overwrite``.
    """
    from restora.model_zoo.tiny import dit as tiny

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    fields = _card_fields()
    existing = [i for i in fields if (outdir / i).exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{', '.join(str(outdir / i) for i in existing)} already exist(s) (use --overwrite)")
    cards: dict[str, ModelCard] = {}
    with tempfile.TemporaryDirectory(dir=outdir, prefix=".tiny-") as tmp:
        tmp_dir = Path(tmp)
        dit = tmp_dir / DIT_ID
        built = {
            DIT_ID: tiny.write_tiny_flux_kontext(dit, seed=seed),
            LORA_ID: tiny.write_tiny_flux_lora(tmp_dir / LORA_ID, pipeline_folder=dit, seed=seed),
            NAFNET_ID: tiny.write_tiny_nafnet(tmp_dir / NAFNET_ID, seed=seed),
        }
        for card_id, files in built.items():
            folder = tmp_dir / card_id
            names = sorted(files)
            card = ModelCard.model_validate(
                {
                    "id": card_id,
                    "files": names,
                    "sha256": {n: sha256_file(folder / n) for n in names},
                    "licence": _LICENCE,
                    **fields[card_id],
                }
            )
            (folder / CARD_NAME).write_text(json.dumps(card.model_dump(mode="json", exclude_defaults=True), indent=2) + "\n")
            cards[card_id] = card
        for card_id in built:
            target = outdir / card_id
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp_dir / card_id, target)
    return cards
