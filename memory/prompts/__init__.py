"""LLM prompts as modules with typed outputs."""
