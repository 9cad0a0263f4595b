"""Planner adapters as model cards: what ``restora train planner`` writes and how it is found again.

A trained planner is a peft LoRA adapter (``adapter_config.json`` + ``adapter_model.safetensors``)
for a Qwen-VL checkpoint. The trainer writes it to ``RUN/adapter/`` with a ``card.json`` of kind
``planner`` that pins the sha256 of both files and names the ``base`` checkpoint. So an adapter is
found

* by its folder (``RUN/adapter``) or its run folder (``RUN``): the card's sha256 are checked;
* by its card id, once the folder is copied to ``$RESTORA_ZOO/<id>/`` (:func:`restora.model_zoo.resolve_card`).

A folder with no card (a peft adapter made elsewhere) is taken as it is, if it holds safetensors
weights and no pickles.

Examples:
    >>> folder = planner_adapter("runs/planner")                 # doctest: +SKIP
    >>> folder.name                                              # doctest: +SKIP
    'adapter'
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from restora.errors import ChecksumError, WeightsNotFoundError
from restora.model_zoo.cards import ModelCard
from restora.model_zoo.resolver import CARD_NAME, resolve_card, sha256_file

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


def planner_card(card_id: str, folder: Path, base: str, description: str = "", source: str = "") -> ModelCard:
    """A pinned ``planner`` card for the adapter files in ``folder``."""
    return ModelCard(
        id=card_id,
        kind="planner",
        base=str(base),
        files=ADAPTER_FILES,
        sha256={name: sha256_file(folder / name) for name in ADAPTER_FILES},
        licence="same as the base checkpoint",
        task="denoise",  # a planner plans every task; cards name one main task
        tasks=tuple(_all_tasks()),
        memory_mb=max(1, round(sum((folder / n).stat().st_size for n in ADAPTER_FILES) / 2**20)),
        format="safetensors",
        description=description or "restora planner adapter (LoRA) from restora train planner",
        source=source,
    )


def _all_tasks() -> list[Any]:
    from restora.taxonomy import Task

    return list(Task)


def write_planner_card(folder: str | os.PathLike[str], card_id: str, base: str, description: str = "", source: str = "") -> ModelCard:
    """Write ``folder/card.json`` for the adapter files there; returns the card."""
    folder = Path(folder)
    card = planner_card(card_id, folder, base, description, source)
    tmp = folder / f".{CARD_NAME}.tmp"
    tmp.write_text(card.model_dump_json(indent=2, exclude_defaults=True) + "\n")
    os.replace(tmp, folder / CARD_NAME)
    return card


def _check_folder(folder: Path) -> Path:
    card_file = folder / CARD_NAME
    if card_file.is_file():
        card = ModelCard.model_validate_json(card_file.read_text())
        if card.kind != "planner":
            raise ValueError(f"{card_file} is a {card.kind} card, not a planner adapter")
        for name in card.files:
            path = folder / name
            if not path.is_file():
                raise WeightsNotFoundError(f"planner adapter {card.id!r}: {path} is missing")
            got = sha256_file(path)
            if got != card.sha256.get(name):
                raise ChecksumError(f"planner adapter {card.id!r}: {path} has sha256 {got[:12]}..., its card expects {card.sha256.get(name, '?')[:12]}...")
        return folder
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix in {".bin", ".pt", ".pth", ".pkl", ".ckpt"})
    if pickles:
        raise ValueError(f"{folder} holds pickle files ({', '.join(pickles)}); restora loads safetensors adapters only")
    missing = [n for n in ADAPTER_FILES if not (folder / n).is_file()]
    if missing:
        raise WeightsNotFoundError(f"{folder} is not a planner adapter: {', '.join(missing)} missing")
    return folder


def planner_adapter(ref: str | os.PathLike[str]) -> Path:
    """The checked adapter folder ``ref`` names: an adapter folder, a run folder holding
    ``adapter/``, or the id of a ``planner`` card in the zoo."""
    path = Path(ref).expanduser()
    if path.is_dir():
        if not (path / ADAPTER_FILES[0]).is_file() and (path / "adapter").is_dir():
            path = path / "adapter"
        return _check_folder(path)
    if os.sep in str(ref) or str(ref).startswith("."):
        raise WeightsNotFoundError(f"planner adapter {ref}: no such folder")
    resolved = resolve_card(str(ref))
    if resolved.card.kind != "planner":
        raise ValueError(f"card {resolved.card.id!r} is a {resolved.card.kind} card, not a planner adapter")
    return resolved.folder


def adapter_base(ref: str | os.PathLike[str]) -> str | None:
    """The base checkpoint an adapter's card names (None without a card)."""
    folder = planner_adapter(ref)
    card = folder / CARD_NAME
    return json.loads(card.read_text()).get("base") if card.is_file() else None
