"""Chat-style restoration sessions: what a person types, turned into constraints on the planner.

Examples:
    >>> from restora.chat.instructions import parse
    >>> parse("remove the rain but keep the grain").keep_grain
    0.3
"""
