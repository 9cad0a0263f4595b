"""restora.trainer."""
