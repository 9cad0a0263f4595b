"""restora.planners."""
