"""restora.traces."""
