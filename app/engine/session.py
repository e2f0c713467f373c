"""A session: one lesson run under the explorer, stepped and seeked by cursor."""

from __future__ import annotations

import math
import os
import time
from collections import OrderedDict
from typing import Any

from app.engine.checkpoints import CHECKPOINTS, REPLAY_WINDOW, Checkpoints, Freezes
from app.engine.copies import CopyFailed
from app.engine.family import Frozen, MoveTo
from app.engine.gradcheck import checked_on_copy
from app.engine.graph import build_graph, torchviz_dot
from app.engine.hooks import Peek
from app.engine.lookahead import LookAhead
from app.engine.program import program_for
from app.engine.snapshot import (
    SummaryCache,
    arrays,
    bounded_state,
    optimizer_state,
    scalars,
    scope_tensors,
    tensor_detail,
)
from app.engine.stops import Stop
from app.engine.tracer import STEP_KINDS, Run
from app.lessons.plain import lesson_globals
from app.lessons.registry import Lesson

__all__ = ["Session", "StepUnavailable"]


class StepUnavailable(Exception):
    """A step the program cannot take: an edit without the training loop or phase tags."""


def _loss(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


class _Losses:
    """The program's `losses` list as JSON numbers, each entry converted once.

    Lessons only append Python floats to it, so a State costs a list copy, not a
    conversion of every iteration so far.
    """

    def __init__(self) -> None:
        self._source: list[Any] | None = None
        self._values: list[float | None] = []

    def of(self, scope: dict[str, Any]) -> list[float | None]:
        source = scope.get("losses")
        if not isinstance(source, list):
            return []
        if source is not self._source or len(source) < len(self._values):
            self._source, self._values = source, []
        self._values.extend(_loss(v) for v in source[len(self._values) :])
        return list(self._values)


def _event(run: Run) -> dict[str, Any]:
    event = run.event._asdict()
    if event["kind"] == "node":
        record = run.node
        event["ledger"] = record.ledger.ledger() if record and record.ledger else None
    return event


def peek_args(peek: Peek) -> list[Any]:
    return [peek.node_id, peek.side, peek.k, list(peek.index)]


def peeked(run: Run, peek: Peek, target: int) -> float | None:
    """Move ``run`` to ``target`` with ``peek`` on (and every ledger captured): the
    element it read (Session.grad_element)."""
    run.capture_all, run.peek = True, peek
    run.advance("event", target - run.cursor)
    run.capture_all, run.peek = False, None
    return peek.value


class _Recent:
    """A small LRU of values by cursor (states and graphs seen recently)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[int, dict[str, Any]] = OrderedDict()

    def get(self, cursor: int) -> dict[str, Any] | None:
        item = self._items.get(cursor)
        if item is not None:
            self._items.move_to_end(cursor)
        return item

    def put(self, cursor: int, value: dict[str, Any]) -> None:
        self._items[cursor] = value
        self._items.move_to_end(cursor)
        if len(self._items) > self._size:
            self._items.popitem(last=False)


# A replay walks the last REPLAY_WINDOW events before its target one at a time, keeping
# their states, graphs and watched tensor details, for as long as that costs less than
# REPLAY_SHARE of the replay itself (but at least REPLAY_FLOOR_S).
REPLAY_SHARE = 0.25
REPLAY_FLOOR_S = 0.02
_TIMED_EVENTS = 256  # a walk at least this long measures the program's pace
_WATCHED = 2  # details kept for the last names asked for (the inspector shows one)


def _stopped(stop: Stop | None) -> bool:
    return stop is not None and stop.reason is not None


class Session:
    """A lesson run whose ``cursor`` can move forward (step) and anywhere (seek).

    Forward moves continue the paused program. A move back replays the program
    to the target cursor without pausing on the way, from the nearest checkpoint
    before it or from the start: the run is deterministic, so the replayed state
    is the state that was there before.

    NOTE: the states, graphs and tensor details of recently shown cursors are
    kept, so that "Step back" and the "Step" after it answer from them: the
    session then shows an earlier cursor (its *view*) while the program stays
    paused ahead. A replay also keeps those of the events just before its
    target (see :meth:`_replay`), so the presses of "Step back" that follow a
    jump cost one replay between them, not one each. Anything else that needs
    the program itself at the view (a step of another kind, a detail not kept)
    replays to it first.

    NOTE: a paused program cannot be copied, but a second run of it paused at an
    earlier cursor is as good as a copy (runs are deterministic). Such *checkpoints*
    are built by whoever has time to spare (:meth:`checkpoint_target`,
    :meth:`new_run`, :meth:`add_checkpoint`: the session's host does it while idle),
    and a program left behind by a move back is kept as one too. A move to a
    cursor goes on from the nearest checkpoint at or before it rather than from the
    start, and the checkpoints kept are those that leave the shortest walks.
    """

    def __init__(
        self,
        *,
        id: str,
        lesson: Lesson,
        config: dict[str, Any],
        recent: int = 128,
        checkpoints: int = CHECKPOINTS,
        max_events: int | None = None,
    ) -> None:
        self.id = id
        self.max_events = max_events if lesson.edited else None
        self.lesson = lesson
        self.config = dict(config)
        self._program = program_for(lesson)
        self._summaries = SummaryCache()
        self._losses = _Losses()
        self._states = _Recent(recent)
        self._graphs = _Recent(recent)
        self._details = _Recent(recent)  # cursor -> {name: TensorDetail}
        self._watched: list[str] = []  # tensors whose details were asked for lately
        self._view: int | None = None
        self._run = self.new_run()
        self.kept = Checkpoints(checkpoints, live=lambda: self._run.cursor)
        self.pace = 0.0  # seconds per event of the last long walk (0: none yet)
        self.replays = 0  # moves back that had to start the program afresh
        # May the program be copied by a fork (Run.copy)? Only a CPU session host's,
        # unconfined: set by the host.
        self.can_copy = False
        self.lookahead = LookAhead()
        self._freezes = Freezes(0.0, checkpoints)

    def new_run(self) -> Run:
        """A run of this session's program, not started (a checkpoint to be)."""
        run = Run(self._program, lesson_globals(self.lesson, self.config))
        run.max_events = self.max_events
        return run

    def _walk(self, run: Run, by: str, count: int, stop: Stop | None = None) -> int:
        """Advance ``run``, timing long walks to know what a checkpoint saves; return
        how many of the ``count`` steps are left (``stop`` reached before the goal).

        A long ``event`` walk (over more than REPLAY_WINDOW events: the page runs to
        the end in such steps) that enters the training loop's last iteration goes
        through it event by event, keeping what each event shows for as long as that
        costs less than REPLAY_SHARE of a replay to there: "Step back" after "Run to
        end" then answers without a replay. A step ``by="end"`` walks straight there.
        """
        before, started = run.cursor, time.perf_counter()
        if self.kept.freeze is not None:
            self._freezes = Freezes(started, self.kept.cap)
            run.passing, run.pass_at = self._passing, run.cursor + Freezes.EVERY
        try:
            return self._walk_on(run, by, count, stop, before, started)
        finally:
            run.passing = run.pass_at = None

    def _passing(self, run: Run) -> None:
        """As a long walk passes (in the program's thread): keep a fork of the program
        where a seek back would otherwise walk far (see Freezes)."""
        freeze = self.kept.freeze
        if freeze is not None and run is self._run and self._freezes.due(time.perf_counter()):
            me = os.getpid()
            frozen = freeze(run)
            if os.getpid() != me:
                return  # the fork, given a goal as a successor: it is not walking here
            if frozen is not None:
                self.kept.hold(frozen)
        run.pass_at = run.cursor + Freezes.EVERY

    def _walk_on(
        self, run: Run, by: str, count: int, stop: Stop | None, before: int, started: float
    ) -> int:
        last = int(self.config.get("iterations", 0)) - 1
        if by == "event" and count > REPLAY_WINDOW and run.iteration <= last:
            target = run.cursor + count
            if run.iteration < last:
                run.advance(by, count, until_iteration=last, stop=stop)
            if run.iteration >= last and run.cursor < target and not _stopped(stop):
                self._keep_last(run, target, time.perf_counter() - started, stop)
            left = 0 if self._run.done else max(0, target - self._run.cursor)
        else:
            left = run.advance(by, count, stop=stop)
        events = run.cursor - before
        if events >= _TIMED_EVENTS:
            self.pace = (time.perf_counter() - started) / events
        return left

    def _keep_last(self, run: Run, target: int, walked: float, stop: Stop | None) -> None:
        """Walk on to ``target``, keeping views within a share of what a replay to here
        costs (or of the ``walked`` seconds, if more): what they save."""
        replay = max(walked, run.cursor * self.pace)
        deadline = time.perf_counter() + max(REPLAY_FLOOR_S, REPLAY_SHARE * replay)
        while run.cursor < target and not run.done and time.perf_counter() < deadline:
            self._keep()
            run = self._run  # keeping may have replayed it (see _ensure_ledgers)
            run.advance("event", 1)
            if _stopped(stop):
                return
        if run.cursor < target:
            run.advance("event", target - run.cursor, stop=stop)

    # -- checkpoints (app.engine.checkpoints.Checkpoints) ------------------

    @property
    def checkpoints(self) -> list[int]:
        """The cursors of the checkpoints kept."""
        return self.kept.cursors

    def checkpoint_target(self) -> int | None:
        """The cursor where one more checkpoint would shorten seeks back the most."""
        return self.kept.target(self.pace)

    def add_checkpoint(self, run: Run | Frozen) -> bool:
        """Keep ``run`` (a paused run of this program); False if it was not worth keeping."""
        return self.kept.add(run)

    def drop_checkpoint(self) -> bool:
        """Close the least useful checkpoint (to free memory); False if there is none."""
        return self.kept.drop()

    def adopt(self, run: Run, left: Frozen, view: int | None) -> None:
        """In a successor (app.engine.family): go on with the request its predecessor
        handed over, which stood at ``left`` (now a checkpoint) showing ``view``, from
        ``run``, the program this process was forked with. The move that wanted it
        takes it (Checkpoints.nearest); see :meth:`adopted`."""
        self._run, self.kept.adopted, self._view = left, run, view  # type: ignore[assignment]

    def adopted(self) -> None:
        """After the request handed over: where it did not move the program (a view it
        found kept here), go on with the program this process was forked with."""
        run, self.kept.adopted = self.kept.adopted, None
        if run is None:
            return
        self._switch(run)
        if self._view is not None and self._view >= run.cursor:
            run.advance("event", self._view - run.cursor)
            self._view = None

    def _switch(self, run: Run) -> None:
        """Go on with ``run``; the program left behind becomes a checkpoint."""
        left: Run | Frozen = self._run
        self._run = run
        self.add_checkpoint(left)

    def left_behind(self) -> dict[str, Any]:
        """What a successor needs to know of the program here (see adopt)."""
        run = self._run
        return {"cursor": run.cursor, "done": run.done, "missing_since": run.missing_since}

    @property
    def program(self) -> Run:
        """The paused program itself."""
        return self._run

    @property
    def view(self) -> int | None:
        """The earlier cursor shown, while the program stands ahead (None: none)."""
        return self._view

    @property
    def keepable(self) -> bool:
        """May other runs of the program move while it stands where it does (Run.keepable)?"""
        return self._run.keepable

    @property
    def cursor(self) -> int:
        return self._run.cursor if self._view is None else self._view

    @property
    def done(self) -> bool:
        return self._run.done and self._view is None

    def step(self, *, by: str, count: int = 1, stop: Stop | None = None) -> dict[str, Any] | None:
        """Advance ``count`` steps of kind ``by``; past the end is the end.

        Given ``stop``, the step may end early, between two events: the answer is then
        State.interrupted (the reason, the steps left of ``count``), else None. A move
        to a cursor already seen (from a view) is a seek, never interrupted.
        """
        if by not in STEP_KINDS:
            raise ValueError(f"by must be one of {', '.join(STEP_KINDS)}")
        if by == "iteration" and not self.lesson.has_loop:
            raise StepUnavailable(
                "this program has no training loop (`for t in range(iterations):` at the top "
                "level), so there is no next iteration; step by event, line or to the end"
            )
        if by == "phase" and not self.lesson.has_phases:
            raise StepUnavailable(
                "this program tags no phases (comments such as `# [forward]`), so there is "
                "no next phase; step by event, line or to the end"
            )
        if self._view is not None and by == "event":
            self.seek(cursor=self._view + count)
            return None
        finished = self.kept.finished() if by == "end" else None
        if finished is not None:  # the end was reached before: go on there
            self._switch(finished)
            self._view = None
            return None
        self._materialize()
        left = self._walk(self._run, by, count, stop)
        if stop is None or stop.reason is None or self._run.done:
            return None
        return {
            "reason": stop.reason,
            "remaining": None if by == "end" else left,
            "detail": stop.detail,
        }

    def seek(self, *, cursor: int) -> None:
        """Move to ``cursor`` (past the end: the end), replaying when moving back."""
        run = self._run
        if cursor >= run.cursor:
            ahead = self.kept.nearest(cursor, after=run.cursor)
            self._view = None
            if ahead is not None:
                self._switch(ahead)
                run = ahead
            if cursor > run.cursor:
                self._walk(run, "event", cursor - run.cursor)
        elif self._states.get(cursor) is not None:
            self._view = cursor
        else:
            self._replay(cursor)

    def _replay(self, cursor: int) -> None:
        """Run the program up to ``cursor`` from the nearest checkpoint before it (or
        afresh), keeping the views just before it.

        The run pauses REPLAY_WINDOW events early and keeps the state, graph and
        watched details of as many of the last events as fit a share of the time a
        replay from the start takes (the second keep is timed to know), then goes on
        to ``cursor``.
        """
        started = time.perf_counter()
        run = self.kept.nearest(cursor)
        self._view = None
        if run is None:
            run = self.new_run()
            self.replays += 1
        self._switch(run)
        early = max(run.cursor, cursor - REPLAY_WINDOW)
        if early > run.cursor:
            self._walk(run, "event", early - run.cursor)
        if early == cursor or run.done:
            return
        replayed = time.perf_counter() - started
        self._keep()  # not timed: the first one also fills the summary cache
        run = self._run  # keeping may have replayed it (see _ensure_ledgers)
        run.advance("event", 1)
        kept = time.perf_counter()
        self._keep()
        run = self._run
        each = time.perf_counter() - kept
        # Measured against a replay from the start: a move back past the views kept
        # may find no checkpoint before it.
        budget = max(REPLAY_FLOOR_S, REPLAY_SHARE * max(replayed, early * self.pace))
        first = max(run.cursor + 1, cursor - int(budget / max(each, 1e-6)))
        if first > run.cursor + 1:
            run.advance("event", first - 1 - run.cursor)
        while run.cursor < cursor - 1 and not run.done:
            run.advance("event", 1)
            self._keep()
            run = self._run
        if run.cursor < cursor:
            run.advance("event", cursor - run.cursor)

    def _keep(self) -> None:
        """Keep the state, graph and watched details at the program's cursor."""
        self.state()
        self.graph()
        for name in self._watched:
            try:
                self._detail(name)
            except KeyError:
                continue

    def _materialize(self) -> None:
        """Bring the program itself to the cursor on view, its ledgers captured."""
        if self._view is not None:
            self._replay(self._view)
        self._ensure_ledgers()

    def _ensure_ledgers(self) -> None:
        """If the program stands where the ledgers of a backward call that ran without
        hooks are on show, replay to here with hooks on every backward call.

        NOTE: a backward call no pause was expected to show runs without hooks (see
        Run.ledgers_unseen); this makes a wrong guess cost a replay, not a wrong view.
        """
        run = self._run
        if run.missing_since is None:
            return
        target = run.cursor
        fresh = self.kept.nearest(run.missing_since)
        if fresh is None:
            fresh = self.new_run()
            self.replays += 1
        fresh.capture_all = True
        self._switch(fresh)
        if target > fresh.cursor:
            fresh.advance("event", target - fresh.cursor)
        fresh.capture_all = False

    def close(self) -> None:
        """End the paused program, its checkpoints and their threads."""
        self._run.close()
        while self.drop_checkpoint():
            pass

    def state(self) -> dict[str, Any]:
        """The contract's State at the cursor (shared with the cache: read-only)."""
        if self._view is not None:
            cached = self._states.get(self._view)
            if cached is not None:
                return cached
        self._materialize()
        run = self._run
        event = run.event
        state = {
            "id": self.id,
            "lesson": self.lesson.id,
            "config": dict(self.config),
            "cursor": run.cursor,
            "done": run.done,
            "iteration": run.iteration,
            "phase": run.phase,
            "line": None if run.done else event.line,
            "event": _event(run),
            "losses": self._losses.of(run.scope),
            "variables": self._summaries.summaries(scope_tensors(run)),
            "optimizer": optimizer_state(run),
            "error": dict(run.error) if run.error else None,
            "interrupted": None,
            "edited": self.lesson.edited,
            "output": None if run.output is None else run.output.text,
            "scalars": scalars(run.scope, exclude=self.lesson.fields),
            "frames": [
                {
                    "function": frame.f_code.co_qualname,
                    "line": frame.f_lineno,
                    "variables": self._summaries.summaries(arrays(frame.f_locals), keep=True),
                    "scalars": scalars(frame.f_locals),
                }
                for frame in run.frames[1:]
            ],
        }
        if self.lesson.edited:  # a program may bind thousands of names, or huge ones
            state = bounded_state(state)
        self._states.put(run.cursor, state)
        return state

    def graph(self) -> dict[str, Any]:
        """The Graph at the cursor (shared with the cache: read-only)."""
        if self._view is not None:
            cached = self._graphs.get(self._view)
            if cached is not None:
                return cached
        self._materialize()
        graph = build_graph(self._run)
        self._graphs.put(self._run.cursor, graph)
        return graph

    def ahead(self, *, next_one: bool = False) -> dict[str, Any] | None:
        """The structure of the graph as the current iteration (or, ``next_one``, the
        one after it) will leave it, when the iteration after begins or at the
        program's end: what a layout of the whole iteration needs to place every node
        before it appears (see :class:`LookAhead`; None where it finds none)."""
        if not self.looks_ahead:
            return None
        if self._view is not None:  # a view kept: what is known, never a replay for it
            view = self._states.get(self._view)
            if view is None or view["done"]:
                return None
            return self.lookahead.found(max(view["iteration"], 0) + int(next_one))
        self._ensure_ledgers()
        return self.lookahead.structure(self._run, next_one=next_one)

    @property
    def looks_ahead(self) -> bool:
        """Does this session look its iterations ahead (see :meth:`ahead`)?"""
        return self.can_copy and self.lookahead.on

    def ahead_known(self, *, next_one: bool = False) -> bool:
        """Is there nothing (more) to look ahead for that iteration?"""
        if not self.looks_ahead or self._view is not None:
            return True
        return self.lookahead.known(self._run, next_one=next_one)

    def torchviz_dot(self) -> str:
        """``torchviz.make_dot`` of the tensors in scope, while their graph is intact."""
        self._materialize()
        return torchviz_dot(self._run)

    def gradcheck(self, tensor: str, index: list[int]) -> dict[str, Any]:
        """Check one element of this iteration's gradient numerically (see
        :func:`checked_on_copy`); the session stays where and as it is."""
        self._materialize()
        return checked_on_copy(self._run, tensor, index, copy=self.can_copy)

    def grad_element(self, node_id: str, side: str, k: int, index: list[int]) -> dict[str, Any]:
        """Any element of a gradient in the ledger of node ``node_id`` (at the cursor).

        A ledger keeps a top-left block, never the gradient itself: a copy of the run,
        replayed to the node event with a reader on that node, looks the element up. The
        replayed run becomes the session's (it is the same program at the same cursor).
        Raises KeyError for a node with no ledger here, ValueError for what it has not.
        """
        self._materialize()
        record = next((r for r in self._run.registry.records.values() if r.id == node_id), None)
        if record is None or record.ledger is None:
            raise KeyError(node_id)
        ledger = record.ledger.ledger()
        grads = ledger["grad_inputs"] if side == "inputs" else ledger["grad_outputs"]
        if side not in ("inputs", "outputs") or not 0 <= k < len(grads) or grads[k] is None:
            raise ValueError(f"grad_{side}[{k}] of {record.name} holds no gradient")
        shape = grads[k]["shape"]
        if len(index) != len(shape) or not all(
            0 <= i < n for i, n in zip(index, shape, strict=True)
        ):
            raise ValueError(f"index {index} is not an element of a gradient of shape {shape}")
        target = self._run.cursor
        peek = Peek(node_id, side, k, tuple(index))
        while True:
            try:
                fresh = self.kept.nearest(record.ledger.cursor - 1)
            except MoveTo as move:  # a checkpoint forked: a copy of it reads the element
                try:
                    value = move.frozen.copy(
                        {"op": "peek", "target": target, "peek": peek_args(peek)}
                    )
                except (CopyFailed, OSError):
                    move.frozen.close()
                    continue
                self.add_checkpoint(move.frozen)
                break
            if fresh is None:
                fresh = self.new_run()
                self.replays += 1
            self._switch(fresh)
            value = peeked(fresh, peek, target)
            break
        return {
            "node_id": node_id,
            "side": side,
            "k": k,
            "index": index,
            "shape": shape,
            "value": value if value is not None and math.isfinite(value) else None,
        }

    def tensor(self, name: str) -> dict[str, Any]:
        """TensorDetail of a variable in scope (``w1``, ``model.0.weight``, ``w1.grad``)."""
        if self._view is not None:
            kept = self._details.get(self._view)
            if kept is not None and name in kept:
                return kept[name]
            self._materialize()
        detail = self._detail(name)
        if name not in self._watched:  # the inspector shows it: keep it on replays
            self._watched = [name, *self._watched[: _WATCHED - 1]]
        return detail

    def _detail(self, name: str) -> dict[str, Any]:
        """TensorDetail of ``name`` at the program's cursor, kept for views (KeyError: none)."""
        tensors = scope_tensors(self._run)
        tensor = tensors.get(name)
        base, _, attr = name.rpartition(".")
        if tensor is None and attr == "grad" and base in tensors:
            tensor = getattr(tensors[base], "grad", None)
        if tensor is None:
            raise KeyError(name)
        detail = tensor_detail(tensor)
        kept = self._details.get(self._run.cursor)
        if kept is None:
            self._details.put(self._run.cursor, {name: detail})
        else:
            kept[name] = detail
        return detail
