"""The agent loop as a LangGraph StateGraph, top to bottom:

    perceive -> plan -> act -> score -> decide -> plan ... -> END

``plan`` ends the run when the planner says stop or a budget is spent; ``decide`` accepts the
step or rolls it back and bans that (tool, params).
"""

from __future__ import annotations

from typing import Literal

from langgraph.graph import END, START, StateGraph

from restora.agent import nodes
from restora.agent.context import AgentContext
from restora.agent.state import AgentState


def after_plan(state: AgentState) -> Literal["act", "plan", "__end__"]:
    if state.get("stop_reason"):
        return END
    if state.get("pending"):
        return "act"
    return "plan"  # the planner's answer was invalid and recorded; ask again (bounded)


def build_graph():
    graph = StateGraph(AgentState, context_schema=AgentContext)
    graph.add_node("perceive", nodes.perceive)
    graph.add_node("plan", nodes.plan)
    graph.add_node("act", nodes.act)
    graph.add_node("score", nodes.score)
    graph.add_node("decide", nodes.decide)
    graph.add_edge(START, "perceive")
    graph.add_edge("perceive", "plan")
    graph.add_conditional_edges("plan", after_plan, ["act", "plan", END])
    graph.add_edge("act", "score")
    graph.add_edge("score", "decide")
    graph.add_edge("decide", "plan")
    return graph.compile()
