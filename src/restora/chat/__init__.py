"""Chat-style restoration sessions: what a person types, turned into constraints on the planner,
and a session with exact undo that outlives the process.

Examples:
    >>> from restora.chat.instructions import parse
    >>> parse("remove the rain but keep the grain").keep_grain
    0.3
    >>> from restora.chat import ChatSession       # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

__all__ = ["ChatSession", "SessionServices", "Reply"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from restora.chat import session

        return getattr(session, name)
    raise AttributeError(name)
