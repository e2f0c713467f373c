"""The lesson programs, their registry and config.

Each lesson is a plain Python file in this folder, run by the explorer with its
config values and a `losses` list injected as globals (see `registry`).
"""
