"""Configs, studies and the result store: used by the loop and the CLI, never using them."""
