"""Switching the line tracer off around work in which no lesson code runs."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["tracing_off", "tracing_on"]

# NOTE: the line tracer is switched off around the recorder's own work and the ops
# it calls through, where no lesson code runs, to save the trace calls of the Python
# frames in there. That pays on 3.11, where sys.settrace costs well under a
# microsecond; from 3.12 on it re-instruments every code object (about 30 µs a call,
# measured on torch 2.11), far more than the trace calls it saves, so it stays on.
if sys.version_info < (3, 12):

    def tracing_off() -> Any:
        """Switch the line tracer off; return it, for :func:`tracing_on`."""
        trace = sys.gettrace()
        sys.settrace(None)
        return trace

    tracing_on = sys.settrace
else:

    def tracing_off() -> Any:
        return None

    def tracing_on(trace: Any) -> None:
        pass
