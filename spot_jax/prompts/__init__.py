"""Soft prompts: the [P, D] parameter, its initializers and prompt files on disk."""
