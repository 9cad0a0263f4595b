"""restora.agent."""
