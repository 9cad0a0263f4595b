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
from collections import OrderedDict
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
    """Every registered tool name: modules, then spandrel cards."""
    return sorted({*_module_names(), *_card_tools()})


def get_tool(name: str) -> type[Tool]:
    """The tool class registered under ``name`` (its module name, or a spandrel card's tool)."""
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
    """All registered tools (optionally only those for ``task``), by name."""
    tools = {n: get_tool(n) for n in tool_names()}
    if task is not None:
        task = Task(task)
        tools = {n: t for n, t in tools.items() if task in t.handles()}
    return tools


def create_tool(name: str, device: str = "cpu") -> Tool:
    """A new instance of the tool registered under ``name``."""
    return get_tool(name)(device=device)


class ToolBox:
    """Tool instances for one process, with a memory budget for loaded models.

    Model tools are loaded lazily on first use; when loading one would put the total of the
    loaded tools' ``memory_mb`` over ``memory_budget_mb``, the least recently used are unloaded
    first.

    Examples:
        >>> box = ToolBox(device="cpu", memory_budget_mb=4096)
        >>> out = box.run("denoise_srmd", image, {"sigma": 15})   # doctest: +SKIP
    """

    def __init__(
        self,
        device: str = "cpu",
        memory_budget_mb: int = 8192,
        allow: list[str] | None = None,
    ) -> None:
        self.device = device
        self.memory_budget_mb = memory_budget_mb
        self._instances: OrderedDict[str, Tool] = OrderedDict()
        if allow is not None:
            for name in allow:
                get_tool(name)  # unknown names fail here, with suggestions
        self.allow = None if allow is None else list(allow)

    def catalogue(self) -> dict[str, type[Tool]]:
        """The tools this box may run: allowed, and runnable on this device with their weights."""
        tools = list_tools()
        if self.allow is not None:
            tools = {n: t for n, t in tools.items() if n in self.allow}
        return {
            n: t
            for n, t in tools.items()
            if t.availability() is None and not (t.needs_device and self.device == "cpu")
        }

    def get_class(self, name: str) -> type[Tool]:
        """The class of an allowed tool (no instance, no loading)."""
        if self.allow is not None and name not in self.allow:
            raise ToolError(f"tool {name!r} is not allowed here (allowed: {', '.join(self.allow)})")
        return get_tool(name)

    def get(self, name: str) -> Tool:
        if self.allow is not None and name not in self.allow:
            raise ToolError(f"tool {name!r} is not allowed here (allowed: {', '.join(self.allow)})")
        tool = self._instances.get(name)
        if tool is None:
            tool = create_tool(name, device=self.device)
            self._instances[name] = tool
        self._instances.move_to_end(name)
        if not tool.loaded:
            self._make_room(tool)
            tool.load()
        return tool

    def run(self, name: str, image, params=None):
        return self.get(name)(image, params)

    def last_info(self, name: str) -> dict:
        """What the last call of tool ``name`` decided (its ``last_info``), or {}."""
        tool = self._instances.get(name)
        return dict(tool.last_info) if tool is not None else {}

    def loaded_mb(self) -> int:
        return sum(t.memory_mb for t in self._instances.values() if t.loaded)

    def _make_room(self, incoming: Tool) -> None:
        for other_name, other in list(self._instances.items()):
            if self.loaded_mb() + incoming.memory_mb <= self.memory_budget_mb:
                break
            if other is not incoming and other.loaded:
                other.unload()
