"""Where weights come from: model cards (:mod:`~restora.model_zoo.cards`), resolved to checked local
files (:mod:`~restora.model_zoo.resolver`), and the models loaded from them, placed on a device
within one memory budget (:mod:`~restora.model_zoo.loaded`, the one owner of device and memory).
``tiny/`` writes random-weight checkpoints of the real architectures, for tests.

Examples:
    >>> from restora.model_zoo import list_cards, resolve, resolve_device
    >>> [c.id for c in list_cards()][:3]                         # doctest: +SKIP
    ['fbcnn-color', 'flux-kontext-dev', 'pyiqa-clipiqa']
    >>> paths = resolve("srmd")                                  # doctest: +SKIP
    >>> paths["srmd_x2.param"].name                              # doctest: +SKIP
    'srmd_x2.param'
    >>> resolve_device("auto")                                   # doctest: +SKIP
    'cuda'
"""

from restora.model_zoo.cards import CardDefaults, ModelCard
from restora.model_zoo.loaded import (
    LoadedModels,
    loaded_models,
    placement,
    resolve_device,
    tool_device,
    tool_placement,
)
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
    torch_hub_dir,
    write_lock,
    zoo_dirs,
)

__all__ = [
    "CARD_NAME",
    "LOCK_NAME",
    "ZOO_ENV",
    "CardDefaults",
    "LoadedModels",
    "ModelCard",
    "Resolved",
    "availability",
    "card_dir",
    "clear_cache",
    "convert_pickle_to_safetensors",
    "fetch",
    "get_card",
    "list_cards",
    "loaded_models",
    "placement",
    "resolve",
    "resolve_card",
    "resolve_device",
    "sha256_file",
    "tool_device",
    "tool_placement",
    "torch_hub_dir",
    "write_lock",
    "zoo_dirs",
]
