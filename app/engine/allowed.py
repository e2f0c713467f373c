"""The modules an edited program may import: defence in depth, never the boundary.

The boundary is the operating system (`app.engine.sandbox`): a program that reaches
`os` through torch's own modules still finds no file to read, no socket, no process.
This list only keeps honest mistakes and the obvious tries short, with a clear error.
"""

from __future__ import annotations

import builtins
from typing import Any

__all__ = ["ALLOWED_MODULES", "guarded_builtins"]

#: Top-level modules an edited program may import: torch and numpy, and standard
#: modules that need no access to the operating system.
ALLOWED_MODULES = frozenset(
    {
        "torch",
        "numpy",
        "math",
        "cmath",
        "random",
        "statistics",
        "fractions",
        "decimal",
        "numbers",
        "collections",
        "itertools",
        "functools",
        "operator",
        "heapq",
        "bisect",
        "array",
        "copy",
        "dataclasses",
        "typing",
        "enum",
        "abc",
        "string",
        "re",
        "textwrap",
        "time",
        "__future__",
    }
)


def _guarded_import(
    name: str,
    globals: Any = None,
    locals: Any = None,
    fromlist: Any = (),
    level: int = 0,
) -> Any:
    top = name.partition(".")[0]
    if level != 0 or top not in ALLOWED_MODULES:
        raise ImportError(
            f"edited code may not import {name!r}; it may import "
            f"{', '.join(sorted(m for m in ALLOWED_MODULES if not m.startswith('_')))}",
            name=name,
        )
    return builtins.__import__(name, globals, locals, fromlist, level)


def guarded_builtins() -> dict[str, Any]:
    """Python's builtins for an edited program: its `import` checks ALLOWED_MODULES."""
    guarded = dict(vars(builtins))
    guarded["__import__"] = _guarded_import
    for name in ("open", "breakpoint", "input", "exit", "quit", "help"):
        guarded.pop(name, None)  # files, debugger, console: nothing for a lesson
    return guarded
