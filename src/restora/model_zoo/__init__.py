"""Where weights come from: model cards (:mod:`~restora.model_zoo.cards`), resolved to checked local
files (:mod:`~restora.model_zoo.resolver`), and the models loaded from them, placed on a device
within a memory budget (:mod:`~restora.model_zoo.loaded`). ``tiny/`` writes random-weight
checkpoints of the real architectures, for tests.

Examples:
    >>> from restora.model_zoo import list_cards, resolve
    >>> [c.id for c in list_cards()][:3]                         # doctest: +SKIP
    ['fbcnn-color', 'flux-kontext-dev', 'qwen-image-edit']
    >>> paths = resolve("srmd")                                  # doctest: +SKIP
    >>> paths["srmd_x2.param"].name                              # doctest: +SKIP
    'srmd_x2.param'
"""

from restora.model_zoo.cards import ModelCard
from restora.model_zoo.resolver import (
    CARD_NAME,
    LOCK_NAME,
    ZOO_ENV,
    Resolved,
    availability,
    card_dir,
    clear_cache,
    convert_pickle_to_safetensors,
    fetch,
    get_card,
    list_cards,
    resolve,
    resolve_card,
    sha256_file,
    write_lock,
    zoo_dirs,
)

__all__ = [
    "CARD_NAME",
    "LOCK_NAME",
    "ZOO_ENV",
    "ModelCard",
    "Resolved",
    "availability",
    "card_dir",
    "clear_cache",
    "convert_pickle_to_safetensors",
    "fetch",
    "get_card",
    "list_cards",
    "resolve",
    "resolve_card",
    "sha256_file",
    "write_lock",
    "zoo_dirs",
]
