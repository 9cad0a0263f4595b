"""The tool registry: every public module of :mod:`restora.tools` holds one tool, keyed by its
module name, and every spandrel model card (built in, or a ``card.json`` in the zoo folder) is
one more tool, named by the card's ``tool`` field. Looking a name up imports only that module;
listing imports them all (modules keep heavy imports inside ``_load`` so this stays cheap).

Examples:
    >>> from restora.tools import list_tools, get_tool, create_tool
    >>> sorted(list_tools())[:2]                      # doctest: +SKIP
    ['deblur_defocus_wiener', 'deblur_motion_rl']
    >>> get_tool("denoise_nlm").task                  # doctest: +SKIP
    <Task.DENOISE: 'denoise'>
    >>> get_tool("denoise_nlmm")                      # doctest: +SKIP
    UnknownToolError: unknown tool 'denoise_nlmm'; did you mean 'denoise_nlm'?
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import pkgutil
import warnings
from functools import cache

from restora.errors import ToolError, UnknownToolError
from restora.taxonomy import Task
from restora.tools.base import Tool

_PACKAGE = "restora.tools"
_NOT_TOOLS = {"base", "registry"}


@cache
def _module_names() -> tuple[str, ...]:
    pkg = importlib.import_module(_PACKAGE)
    names = [
        m.name
        for m in pkgutil.iter_modules(pkg.__path__)
        if not m.name.startswith("_") and m.name not in _NOT_TOOLS and not m.ispkg
    ]
    return tuple(sorted(names))


def _card_tools() -> dict[str, object]:
    """Spandrel model cards by tool name (cards are re-read: the zoo folder may change)."""
    from restora.model_zoo import list_cards

    return {c.tool: c for c in list_cards() if c.kind == "spandrel" and c.tool and c.tool not in _module_names()}


def tool_names() -> list[str]:
    """Every registered tool name: modules, then spandrel cards.

    Examples:
        >>> "denoise_nlm" in tool_names()
        True
    """
    return sorted({*_module_names(), *_card_tools()})


def get_tool(name: str) -> type[Tool]:
    """The tool class registered under ``name`` (its module name, or a spandrel card's tool).

    Examples:
        >>> get_tool("denoise_nlm").task
        <Task.DENOISE: 'denoise'>
    """
    if name in _module_names():
        return _module_tool(name)
    card = _card_tools().get(name)
    if card is not None:
        from restora.tools._spandrel import spandrel_tool

        return spandrel_tool(card)  # type: ignore[arg-type]
    close = difflib.get_close_matches(name, tool_names(), n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownToolError(f"unknown tool {name!r}{hint} (see `restora tools`)")


@cache
def _module_tool(name: str) -> type[Tool]:
    module = importlib.import_module(f"{_PACKAGE}.{name}")
    found = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, Tool)
        and obj is not Tool
        and not inspect.isabstract(obj)
        and obj.__module__ == module.__name__
    ]
    if len(found) != 1:
        raise ToolError(f"module {module.__name__} must define exactly one Tool, found {len(found)}")
    cls = found[0]
    cls.name = name
    return cls


def list_tools(task: Task | str | None = None) -> dict[str, type[Tool]]:
    """All registered tools (optionally only those for ``task``), by name.

    Examples:
        >>> "dehaze_dcp" in list_tools("dehaze")
        True
    """
    tools = {n: get_tool(n) for n in tool_names()}
    if task is not None:
        task = Task(task)
        tools = {n: t for n, t in tools.items() if task in t.handles()}
    return tools


def create_tool(name: str, device: str = "cpu") -> Tool:
    """A new instance of the tool registered under ``name``.

    Examples:
        >>> create_tool("denoise_nlm").device
        'cpu'
    """
    return get_tool(name)(device=device)


_COMPAT_BUDGET_MB = 8192


class ToolBox:
    """The tools one process may run, on one device.

    Tool instances are made on first use and kept; their models are loaded lazily into the
    process-wide cache :func:`restora.model_zoo.loaded.loaded_models`, whose one memory budget
    (``RESTORA_MODEL_MEMORY_MB``, else 90% of the GPU / half the RAM) governs every loaded model:
    the least recently used are dropped when room is needed, and come back on their next use.
    ``device``: ``"auto"``/None resolves with :func:`restora.model_zoo.loaded.resolve_device`;
    the default ``"cpu"`` follows ``RESTORA_DEVICE`` when set (:func:`~restora.model_zoo.loaded.tool_device`).
    ``memory_budget_mb`` is accepted for compatibility only: it no longer sets a budget of its own.

    Examples:
        >>> box = ToolBox(device="cpu", allow=["denoise_nlm", "denoise_srmd"])
        >>> sorted(box.catalogue())
        ['denoise_nlm', 'denoise_srmd']
        >>> out = box.run("denoise_srmd", image, {"sigma": 15})   # doctest: +SKIP
    """

    def __init__(
        self,
        device: str = "cpu",
        memory_budget_mb: int = _COMPAT_BUDGET_MB,
        allow: list[str] | None = None,
    ) -> None:
        from restora.model_zoo.loaded import resolve_device

        self.device = resolve_device(device)
        if memory_budget_mb != _COMPAT_BUDGET_MB:
            warnings.warn(
                "ToolBox(memory_budget_mb=...) is ignored: one budget governs every loaded model; "
                "set RESTORA_MODEL_MEMORY_MB or loaded_models().set_budget(mb)",
                DeprecationWarning,
                stacklevel=2,
            )
        self.memory_budget_mb = memory_budget_mb
        self._instances: dict[str, Tool] = {}
        if allow is not None:
            for name in allow:
                get_tool(name)  # unknown names fail here, with suggestions
        self.allow = None if allow is None else list(allow)

    def catalogue(self) -> dict[str, type[Tool]]:
        """The tools this box may run: allowed, and runnable on this device with their weights.

        Examples:
            >>> "denoise_nlm" in ToolBox().catalogue()
            True
        """
        from restora.model_zoo.loaded import tool_device

        tools = list_tools()
        if self.allow is not None:
            tools = {n: t for n, t in tools.items() if n in self.allow}
        on_cpu = tool_device(self.device) == "cpu"
        return {n: t for n, t in tools.items() if t.availability() is None and not (t.needs_device and on_cpu)}

    def get_class(self, name: str) -> type[Tool]:
        """The class of an allowed tool (no instance, no loading).

        Examples:
            >>> ToolBox().get_class("denoise_nlm").learned
            False
        """
        self._check_allowed(name)
        return get_tool(name)

    def get(self, name: str) -> Tool:
        """The instance of an allowed tool, loaded (its models go to the shared cache).

        Examples:
            >>> ToolBox().get("denoise_nlm").loaded
            True
        """
        self._check_allowed(name)
        tool = self._instances.get(name)
        if tool is None:
            tool = self._instances[name] = create_tool(name, device=self.device)
        if not tool.loaded:
            tool.load()
        return tool

    def run(self, name: str, image, params=None):
        """Run tool ``name`` on ``image`` with ``params`` (a dict or its Params; None: defaults).

        Examples:
            >>> out = ToolBox().run("denoise_nlm", image, {"strength": 0.6})   # doctest: +SKIP
        """
        return self.get(name)(image, params)

    def last_info(self, name: str) -> dict:
        """What the last call of tool ``name`` decided (its ``last_info``), or {}.

        Examples:
            >>> ToolBox().last_info("denoise_nlm")
            {}
        """
        tool = self._instances.get(name)
        return dict(tool.last_info) if tool is not None else {}

    def loaded_mb(self) -> int:
        """Memory of the models loaded in this process now, MB (a report: the shared cache of
        :func:`~restora.model_zoo.loaded.loaded_models` holds them, for every box and metric).

        Examples:
            >>> ToolBox().loaded_mb() >= 0
            True
        """
        from restora.model_zoo.loaded import loaded_models

        return loaded_models().used_mb()

    def _check_allowed(self, name: str) -> None:
        if self.allow is not None and name not in self.allow:
            raise ToolError(f"tool {name!r} is not allowed here (allowed: {', '.join(self.allow)})")
