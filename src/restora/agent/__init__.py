"""The agent: perceive -> plan -> act -> score -> decide, as a LangGraph StateGraph.

Examples:
    >>> from restora.agent import restore
    >>> result = restore(image, max_steps=6)     # doctest: +SKIP
"""

from restora.agent.context import AgentContext
from restora.agent.graph import build_graph
from restora.agent.run import RestoreResult, restore

__all__ = ["AgentContext", "RestoreResult", "build_graph", "restore"]
