"""``restora degrade``: seeded synthetic degradations of a clean photo, with their labels.

Examples:
    restora degrade kodim01.png -o out/ --combo rain+haze --seed 0
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from restora.cli.common import app, out, user_errors
from restora.imageio import load_image, save_image, write_text_atomic


@app.command()
def degrade(
    clean: Annotated[Path, typer.Argument(help="a clean image")],
    dest: Annotated[Path, typer.Option("--out", "-o", help="output .png file, or a folder")],
    combo: Annotated[str, typer.Option(help="degradations joined by '+', e.g. rain+haze")],
    seed: Annotated[int, typer.Option(help="random seed: same seed, same bytes")] = 0,
    severity: Annotated[
        str | None,
        typer.Option(help="one severity in [0, 1] for all, or name=value pairs (rain=0.6,haze=0.3); default: drawn from the seed"),
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option("--option", help="a degradation's option as name.key=value, e.g. noise.model=granular, jpeg.model=web, rain.splashes=true (repeat)"),
    ] = None,
) -> None:
    """Make a degraded copy of a clean image (seeded); writes the image and a .json of its labels.

    Examples:
        restora degrade kodim01.png -o out/ --combo rain+haze --seed 0
        restora degrade kodim01.png -o out/k1_dark.png --combo dark+noise --severity dark=0.7,noise=0.3
        restora degrade kodim01.png -o out/ --combo noise+jpeg --option noise.model=granular --option jpeg.model=web
    """
    from restora.degrade import compose, parse_combo

    with user_errors():
        names = parse_combo(combo)
        severities = _parse_severities(severity, names)
        loaded = load_image(clean)
        options = _parse_options(option or [], names)
        image, labels = compose(loaded.pixels, names, seed=seed, severities=severities, options=options or None)
    target = dest if dest.suffix.lower() == ".png" else dest / f"{clean.stem}_{'+'.join(names)}_s{seed}.png"
    save_image(target, image)
    meta = {"source": str(clean), "combo": names, "seed": seed, "options": options, "labels": labels}
    write_text_atomic(target.with_suffix(".json"), json.dumps(meta, indent=2, sort_keys=True) + "\n")
    out.print(f"{target}  " + ", ".join(f"{k} {v['severity']:.2f}" for k, v in labels.items()), highlight=False)


def _parse_options(items: list[str], names: list[str]) -> dict[str, dict]:
    options: dict[str, dict] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        name, dot, field = key.strip().partition(".")
        if not sep or not dot or not field:
            raise ValueError(f"--option {item!r}: expected name.key=value, e.g. noise.model=granular")
        if name not in names:
            raise ValueError(f"--option {item!r}: {name!r} is not in --combo {'+'.join(names)}")
        value: object = raw.strip()
        low = str(value).lower()
        if low in ("true", "false"):
            value = low == "true"
        else:
            try:
                value = float(low) if any(c in low for c in ".e") else int(low)
            except ValueError:
                pass
        options.setdefault(name, {})[field] = value
    return options


def _parse_severities(value: str | None, names: list[str]) -> dict[str, float] | None:
    if value is None:
        return None
    if "=" not in value:
        return {n: float(value) for n in names}
    pairs = dict(item.split("=", 1) for item in value.split(",") if item.strip())
    unknown = set(pairs) - set(names)
    if unknown:
        raise ValueError(f"--severity names {sorted(unknown)} are not in --combo {'+'.join(names)}")
    return {k: float(v) for k, v in pairs.items()}
