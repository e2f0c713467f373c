"""Where a session's checkpoints go and which to drop: the policy, apart from the runs.

A checkpoint is a paused run of the session's program at an earlier cursor (see
Session), on the CPU a fork of it (app.engine.family). One more is worth building where a
seek would otherwise walk the program for longer than CHECKPOINT_GAP_S; a long walk
keeps forks as it passes (Freezes); over the cap, the one whose loss lengthens walks
least goes.
"""

from __future__ import annotations

from itertools import pairwise

from app.engine.tracer import Run

__all__ = [
    "CHECKPOINTS",
    "CHECKPOINT_GAP_S",
    "FREEZE_GAP_S",
    "REPLAY_WINDOW",
    "Freezes",
    "checkpoint_target",
    "least_useful",
    "settle",
]

CHECKPOINTS = 4  # kept at most, by default
CHECKPOINT_GAP_S = 0.1
# A replay walks the last REPLAY_WINDOW events before its target one at a time (see
# Session._replay): a checkpoint closer than that to the program's cursor saves nothing.
REPLAY_WINDOW = 64


def settle(run: Run) -> None:
    """Move ``run`` on, event by event, until it may be kept while other runs move
    (Run.keepable): paused in a thread of its own, not inside a backward the autograd
    engine runs in its device thread, nor inside a torch.fx tracer."""
    while not run.keepable:
        run.advance("event", 1)


def least_useful(cursors: list[int], live: int) -> int:
    """The index of the checkpoint (of those at sorted ``cursors``) whose loss would
    lengthen the walks it shortens the least, the program itself being at ``live``."""
    points = sorted({0, live, *cursors})

    def loss(cursor: int) -> int:
        if cursor == live or cursors.count(cursor) > 1:
            return 0  # another program is there already
        at = points.index(cursor)
        if points[at + 1 : at + 2] == [live] and live - cursor <= 2 * REPLAY_WINDOW:
            return 1 << 62  # the one "Step back" goes on from: kept
        # Without it, the walks it started go from the point before it.
        return (points[at + 1] if at + 1 < len(points) else cursor) - points[at - 1]

    losses = [loss(cursor) for cursor in cursors]
    return losses.index(min(losses))


def checkpoint_target(cursors: list[int], live: int, *, pace: float, cap: int) -> int | None:
    """The cursor where one more checkpoint would shorten seeks back the most, given
    those at ``cursors`` and the program at ``live`` taking ``pace`` seconds an event.

    First just before the program's cursor (so that "Step back" after a long move
    walks a few events), then in the middle of the longest stretch without one;
    None while every stretch walks in less than CHECKPOINT_GAP_S, or before the
    program's pace is known.
    """
    if cap == 0 or pace == 0.0:
        return None
    gap = max(2 * REPLAY_WINDOW, int(CHECKPOINT_GAP_S / pace))
    points = [0, *(c for c in cursors if c < live), live]
    if live - points[-2] > gap:
        target = live - REPLAY_WINDOW
    else:
        start, stop = max(pairwise(points), key=lambda pair: pair[1] - pair[0])
        if stop - start <= gap:
            return None
        target = (start + stop) // 2
    ordered = sorted([*cursors, target])
    if len(ordered) > cap and ordered[least_useful(ordered, live)] == target:
        return None  # it would be the first to go
    return target


# A long walk of a session that forks its checkpoints keeps a fork of the program as it
# passes once it has walked FREEZE_GAP_S since the last one (or since it began), and
# at least a 1/cap share of the walk so far: a walk keeps about cap·log(its length) of
# them, spread out, each a fork (6-9 ms here, then a copy of each page the walk writes).
FREEZE_GAP_S = 1.0


class Freezes:
    """When a walk keeps a fork of the program as it passes (see FREEZE_GAP_S)."""

    EVERY = 32  # events between looks at the clock

    def __init__(self, started: float, cap: int) -> None:
        self.started = self.last = started
        self.cap = max(1, cap)

    def due(self, now: float) -> bool:
        if now - self.last < max(FREEZE_GAP_S, (now - self.started) / self.cap):
            return False
        self.last = now
        return True
