"""Layout look-ahead: the structure an iteration's graph will reach, found on a copy.

A layout that places every node of an iteration before it appears never moves one
as the learner steps (`app.engine.layout`). The structure it needs is found by moving
a copy of the paused program (Run.copy, a fork) to where the iteration's loop body has
run to its end; the program itself stays where it is.
"""

from __future__ import annotations

from typing import Any

from app.engine.copies import CopyFailed, CopyTimedOut
from app.engine.graph import build_graph
from app.engine.layout import structure
from app.engine.tracer import Run

__all__ = ["AHEAD_MISSES", "LookAhead", "structure_after"]

#: Look-aheads in a row that may run out of time before a session looks ahead no more.
AHEAD_MISSES = 3


class LookAhead:
    """The structures a session's iterations reach, each looked ahead once.

    None before the program's first step, for a static graph, at the end, or once
    AHEAD_MISSES look-aheads in a row have taken longer than ``timeout_s`` (the
    program is too slow to look ahead at every iteration; 0: never look ahead). Only
    for a program that may be copied (Session.can_copy).
    """

    def __init__(self, timeout_s: float = 0.5) -> None:
        self.timeout_s = timeout_s  # a look-ahead's time limit
        self._found: dict[int, dict[str, Any] | None] = {}  # iteration -> its structure
        self._misses = 0  # look-aheads in a row that took too long

    @property
    def on(self) -> bool:
        return self._misses < AHEAD_MISSES and bool(self.timeout_s)

    def iteration(self, run: Run, *, next_one: bool) -> int | None:
        """The iteration a copy of ``run`` (the program itself) would look ahead at (the
        current one or, ``next_one``, the one after it), or None where it makes none."""
        if not self.on or run.done or not run.parked or run.program.static_name is not None:
            return None
        return max(run.iteration, 0) + int(next_one)

    def known(self, run: Run, *, next_one: bool) -> bool:
        """Is there nothing (more) to look ahead for that iteration?"""
        iteration = self.iteration(run, next_one=next_one)
        return iteration is None or iteration in self._found

    def found(self, iteration: int) -> dict[str, Any] | None:
        """What is known of ``iteration`` without looking (for a view kept)."""
        return self._found.get(iteration)

    def structure(self, run: Run, *, next_one: bool) -> dict[str, Any] | None:
        """The structure the graph of ``run``'s iteration (see :meth:`iteration`) will
        reach, looked ahead on a copy the first time it is asked for."""
        iteration = self.iteration(run, next_one=next_one)
        if iteration is None:
            return None
        if iteration not in self._found:
            try:
                found = run.copy(lambda copy: structure_after(copy, iteration), self.timeout_s)
                self._misses = 0
            except CopyTimedOut:
                # A busy machine may delay one; a program too slow for it delays them all.
                self._misses += 1
                found = None
            except CopyFailed:
                found = None
            self._found[iteration] = found
            for old in [i for i in self._found if i < iteration - 1]:
                del self._found[old]
        return self._found[iteration]


def structure_after(run: Run, iteration: int) -> dict[str, Any]:
    """Move ``run`` (a copy) to where ``iteration``'s loop body has run to its end, and
    return its graph's structure."""
    run.advance("end", 1, until_iteration=iteration + 1)
    return structure(build_graph(run))
