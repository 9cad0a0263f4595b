"""restora.model_zoo."""
