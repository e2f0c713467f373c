"""Where a session's checkpoints go and which to drop: the policy, apart from the runs.

A checkpoint is a paused run of the session's program at an earlier cursor (see
Session), on the CPU a fork of it (app.engine.family). One more is worth building where a
seek would otherwise walk the program for longer than CHECKPOINT_GAP_S; a long walk
keeps forks as it passes (Freezes); over the cap, the one whose loss lengthens walks
least goes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import pairwise

from app.engine.family import Frozen, MoveTo
from app.engine.tracer import Run

__all__ = [
    "CHECKPOINTS",
    "CHECKPOINT_GAP_S",
    "FREEZE_GAP_S",
    "REPLAY_WINDOW",
    "Checkpoints",
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


class Checkpoints:
    """A session's checkpoints: paused runs of its program at other cursors, kept in this
    process (Run) or, where the session forks them, each in a process of its own
    (Frozen, app.engine.family), and which one a move goes on from.

    ``live`` says where the session's own program stands (what least_useful weighs).
    """

    def __init__(self, cap: int, *, live: Callable[[], int]) -> None:
        self.cap = cap
        self._live = live
        self._kept: list[Run | Frozen] = []  # by cursor
        # Given by a host whose session forks its checkpoints (see add): keep a run as a
        # checkpoint in a process of its own (None: it could not).
        self.freeze: Callable[[Run], Frozen | None] | None = None
        # A successor's program (app.engine.family), until a move takes it (nearest).
        self.adopted: Run | None = None

    def __iter__(self) -> Iterator[Run | Frozen]:
        return iter(self._kept)

    @property
    def cursors(self) -> list[int]:
        return [kept.cursor for kept in self._kept]

    def target(self, pace: float) -> int | None:
        """The cursor where one more would shorten seeks back the most (checkpoint_target)."""
        return checkpoint_target(self.cursors, self._live(), pace=pace, cap=self.cap)

    def add(self, run: Run | Frozen) -> bool:
        """Keep ``run`` (a paused run of the program); False if it was not worth keeping.

        A run that may not be kept while others move (Run.keepable: paused in the
        autograd engine's device thread, or inside a torch.fx tracer) is closed. Where
        the session forks its checkpoints (``freeze``), a run kept is a fork of it, and
        the run itself is closed.
        """
        if self.cap == 0 or run.cursor == 0 or not run.keepable:
            run.close()
            return False
        if self.freeze is not None and isinstance(run, Run):
            frozen = self.freeze(run)
            run.close()
            if frozen is None:
                return False
            run = frozen
        return self.hold(run)

    def hold(self, kept: Run | Frozen) -> bool:
        """Keep ``kept``, and drop the least useful while over the cap."""
        self._kept.append(kept)
        self._kept.sort(key=lambda entry: entry.cursor)
        while len(self._kept) > self.cap:
            self.drop()
        return kept in self._kept

    def drop(self) -> bool:
        """Close the least useful (to free memory); False if there is none."""
        if not self._kept:
            return False
        self._kept.pop(least_useful(self.cursors, self._live())).close()
        return True

    def nearest(self, cursor: int, after: int = -1) -> Run | None:
        """Take the one closest at or before ``cursor`` (and past ``after``).

        Raises MoveTo for one in another process (Frozen): the session goes on there, in
        a successor that does the request again (app.engine.family). There, the program
        it was forked with is the nearest (``adopted``).
        """
        adopted = self.adopted
        usable = adopted is not None and after < adopted.cursor <= cursor
        for index in range(len(self._kept) - 1, -1, -1):
            at = self._kept[index].cursor
            if after < at <= cursor:
                if usable and adopted.cursor >= at:  # type: ignore[union-attr]
                    break
                return self._take(index)
        if usable:
            self.adopted = None
            return adopted
        return None

    def finished(self) -> Run | None:
        """Take one at the program's end, if there is one (see nearest)."""
        if self.adopted is not None and self.adopted.done:
            run, self.adopted = self.adopted, None
            return run
        index = next((i for i, kept in enumerate(self._kept) if kept.done), None)
        return None if index is None else self._take(index)

    def _take(self, index: int) -> Run:
        taken = self._kept.pop(index)
        if isinstance(taken, Frozen):
            raise MoveTo(taken)
        return taken

    def forked(self) -> list[Frozen]:
        """Those kept in processes of their own."""
        return [kept for kept in self._kept if isinstance(kept, Frozen)]

    def nearest_fork(self, cursor: int) -> Frozen | None:
        """The one kept as a fork closest before ``cursor`` (not at the end)."""
        before = [kept for kept in self.forked() if kept.cursor < cursor and not kept.done]
        return max(before, key=lambda kept: kept.cursor, default=None)

    def forget_forked(self) -> None:
        """Forget those in processes of their own, without ending them (handed over)."""
        self._kept = [kept for kept in self._kept if not isinstance(kept, Frozen)]

    def take_over(self, kept: list[Frozen]) -> None:
        """Keep ``kept`` (handed over), in place of any known here."""
        self._kept = sorted(kept, key=lambda frozen: frozen.cursor)


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
