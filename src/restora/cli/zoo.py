"""``restora zoo``: model cards, fetching and pinning their files, tiny test checkpoints.

Examples:
    restora zoo list
    restora zoo fetch scunet-color-real-psnr
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from restora.cli.common import app, fail, out, print_rows, short_reason, user_errors


zoo_app = typer.Typer(help="Model files: cards, and tiny random-weight checkpoints for tests.", no_args_is_help=True)
app.add_typer(zoo_app, name="zoo")


@zoo_app.command("list")
def zoo_list(as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False) -> None:
    """Every model card: kind, tasks, source, licence, memory, and whether its files are here
    (on a terminal a table, otherwise one line per card)."""
    from restora.model_zoo import availability, card_dir, list_cards

    rows = []
    for card in list_cards():
        reason = availability(card)
        folder, origin = card_dir(card)
        rows.append(
            {
                **card.model_dump(mode="json"),
                "available": reason is None,
                "where": str(folder) if folder is not None else None,
                "found_in": origin if folder is not None else None,
                "unavailable_reason": reason,
            }
        )
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    header = ["card", "kind", "tasks / tool", "source", "licence", "memory", "here"]
    table = []
    for r in rows:
        if r["kind"] == "pyiqa":
            tasks = "IQA metric " + r["id"].removeprefix("pyiqa-")
        else:
            tasks = r["tool"] or ("all tasks" if len(r["tasks"]) > 2 else ", ".join(r["tasks"] or [r["task"]]))
        source = r["package"] or r["repo"] or ("/".join(r["url"].split("/")[3:5]) if r["url"] else "local")
        here = f"yes ({r['found_in']})" if r["available"] else f"no: {short_reason(r['unavailable_reason'])}"
        table.append([r["id"], r["kind"], tasks, source, r["licence"].split(" (")[0], f"{r['memory_mb'] / 1024:.1f} GB", here])
    print_rows("restora model cards", header, table, wrap=["source", "licence", "here"], plain=["card", "kind", "tasks / tool", "memory", "here"])


@zoo_app.command("fetch")
def zoo_fetch(
    card: Annotated[str, typer.Argument(help="model card id (see `restora zoo list`)")],
    to: Annotated[Path | None, typer.Option(help="also copy the checked files to TO/<card>/ with a lock file")] = None,
) -> None:
    """Download a card's files (online machines), check them, and say where they are."""
    from restora.model_zoo import fetch

    with user_errors():
        resolved = fetch(card, to=to)
    size = sum(p.stat().st_size for p in resolved.files.values())
    out.print(f"{resolved.card.id}: {len(resolved.files)} files, {size / 2**20:.1f} MiB, checked, in {resolved.folder}", highlight=False)


@zoo_app.command("pin")
def zoo_pin(card: Annotated[str, typer.Argument(help="model card id whose files you placed yourself")]) -> None:
    """Trust the files you put under $RESTORA_ZOO/<card>/ yourself: write their sha256 to a lock
    file, which later runs check them against."""
    from restora.model_zoo import card_dir, get_card, write_lock

    with user_errors():
        c = get_card(card)
        folder, origin = card_dir(c)
    if folder is None or origin != "zoo" or not c.files or not all((folder / n).is_file() for n in c.files):
        raise fail(f"put {', '.join(c.files) or 'the files'} under $RESTORA_ZOO/{c.id}/ first")
    path = write_lock(folder, c)
    out.print(f"wrote {path}", highlight=False)


@zoo_app.command("tiny")
def zoo_tiny(
    outdir: Annotated[Path, typer.Argument(help="zoo folder to write the tiny cards into (use it as RESTORA_ZOO)")],
    seed: Annotated[int, typer.Option(help="weights seed: same seed, same weights")] = 0,
    overwrite: Annotated[bool, typer.Option(help="replace existing tiny card folders")] = False,
) -> None:
    """Write tiny random-weight checkpoints with their cards: a FLUX.1 Kontext DiT pipeline, a LoRA
    adapter for it and a spandrel NAFNet. With RESTORA_ZOO=OUTDIR, `restora run IMG --allow
    dit_restore` runs the real DiT path on a CPU."""
    from restora.model_zoo.tiny import write_tiny_zoo

    with user_errors():
        cards = write_tiny_zoo(outdir, seed=seed, overwrite=overwrite)
    for card in cards.values():
        out.print(f"wrote {outdir / card.id} ({card.kind}, {len(card.files)} files)", highlight=False)
    out.print(f"use it with: RESTORA_ZOO={outdir} restora run IMG --allow dit_restore", highlight=False)


@zoo_app.command("tiny-planner")
def zoo_tiny_planner(
    outdir: Annotated[Path, typer.Argument(help="folder to write the checkpoint into")],
    seed: Annotated[int, typer.Option(help="weights seed: same seed, same weights")] = 0,
    dtype: Annotated[str, typer.Option(help="float32 (CPU, vLLM --dtype float32) or bfloat16")] = "float32",
    overwrite: Annotated[bool, typer.Option(help="replace an existing folder")] = False,
) -> None:
    """Write a tiny random-weight Qwen2.5-VL planner (real Qwen vocabulary, processor files) that
    vLLM and transformers load: for tests and for trying the VLM path on a CPU."""
    from restora.model_zoo.tiny.planner import build_tiny_planner

    with user_errors():
        path = build_tiny_planner(outdir, seed=seed, dtype=dtype, overwrite=overwrite)
    out.print(f"wrote {path}", highlight=False)
