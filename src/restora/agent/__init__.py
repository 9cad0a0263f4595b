"""The agent: perceive -> plan -> act -> score -> decide, as a LangGraph StateGraph.

Examples:
    >>> from restora.agent import Run, restore
    >>> result = restore(image, max_steps=6)     # doctest: +SKIP
    >>> with Run.open(image) as run:             # doctest: +SKIP
    ...     run.turn()
    ...     run.turn("brighter, please", max_steps=2)
"""

from restora.agent.context import AgentContext
from restora.agent.graph import build_graph
from restora.agent.run import RestoreResult, Run, restore

__all__ = ["AgentContext", "RestoreResult", "Run", "build_graph", "restore"]
