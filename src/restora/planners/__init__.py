"""Planners: choose the next restoration step (see :mod:`restora.planners.base`)."""

from restora.planners.base import Action, HistoryItem, Observation, Planner, choice_key
from restora.planners.heuristic import HeuristicPlanner
from restora.planners.scripted import ScriptedPlanner

__all__ = [
    "Action",
    "HeuristicPlanner",
    "HistoryItem",
    "Observation",
    "Planner",
    "ScriptedPlanner",
    "choice_key",
]
