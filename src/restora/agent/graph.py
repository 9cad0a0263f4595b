"""The agent loop as a LangGraph StateGraph, top to bottom:

    START -> perceive -> plan -> act -> score -> decide -> plan ... -> END
         \\-> plan  (a later turn: the state already has a current image)

``plan`` ends the turn when the planner says stop or the turn's budget is spent; ``decide``
accepts the step or rolls it back and bans that (tool, params). Nodes return their trace records
as data (``emitted``); :class:`restora.agent.Run` writes them.

Examples:
    >>> graph = build_graph()
    >>> sorted(graph.get_graph().nodes)
    ['__end__', '__start__', 'act', 'decide', 'perceive', 'plan', 'score']
"""

from __future__ import annotations

from typing import Literal

from langgraph.graph import END, START, StateGraph

from restora.agent import nodes
from restora.agent.context import AgentContext
from restora.agent.state import AgentState


def begin(state: AgentState) -> Literal["perceive", "plan"]:
    if state.get("current_ref"):
        return "plan"  # a later turn (or a Run that assessed the input): continue from the state
    return "perceive"  # a new run given only its input_ref


def after_plan(state: AgentState) -> Literal["act", "plan", "__end__"]:
    if state.get("stop_reason"):
        return END
    if state.get("pending"):
        return "act"
    return "plan"  # the planner's answer was invalid and recorded; ask again (bounded)


def build_graph():
    """The compiled agent graph; run it with ``context=AgentContext(...)``.

    Examples:
        >>> build_graph().invoke({"input_ref": ref}, context=ctx)["stop_reason"]  # doctest: +SKIP
        'no degradation found: the image looks clean'
    """
    graph = StateGraph(AgentState, context_schema=AgentContext)
    graph.add_node("perceive", nodes.perceive)
    graph.add_node("plan", nodes.plan)
    graph.add_node("act", nodes.act)
    graph.add_node("score", nodes.score)
    graph.add_node("decide", nodes.decide)
    graph.add_conditional_edges(START, begin, ["perceive", "plan"])
    graph.add_edge("perceive", "plan")
    graph.add_conditional_edges("plan", after_plan, ["act", "plan", END])
    graph.add_edge("act", "score")
    graph.add_edge("score", "decide")
    graph.add_edge("decide", "plan")
    return graph.compile()
