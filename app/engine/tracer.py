"""Run a lesson in a worker thread that pauses at events, like a debugger.

The lesson file is executed under ``sys.settrace`` restricted to its own
frames (``line`` events) and under the :class:`~app.engine.recorder.Recorder`
(``op`` and ``node`` events). At every event the worker checks the current
:class:`Goal`; when it is reached the worker parks inside the trace function
or hook, so the program stays paused mid-line and the next step costs only
the events it runs.
"""

from __future__ import annotations

import gc
import inspect
import os
import random
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.fx._symbolic_trace import Tracer as _FxTracer
from torch.fx.experimental.proxy_tensor import _MakefxTracer

from app.engine.allowed import guarded_builtins
from app.engine.copies import CopyFailed, answer_of, answer_with, die_with_parent
from app.engine.hooks import Peek
from app.engine.naming import module_paths, modules_between, storage_key
from app.engine.nodes import NodeRecord, NodeRegistry
from app.engine.output import Output, bounded_text
from app.engine.program import LessonProgram
from app.engine.recorder import Recorder
from app.engine.snapshot import scope_tensors
from app.engine.stops import Stop
from app.engine.workers import WorkerPool

__all__ = [
    "STEP_KINDS",
    "Event",
    "Goal",
    "IterationStart",
    "Run",
]

STEP_KINDS = ("event", "line", "phase", "iteration", "end")

# Code that holds process-wide state while it runs: torch.fx's tracers (symbolic_trace,
# make_fx) patch torch.nn.Module and module globals and set module-level "current"
# tracers, each restoring what it found when it returns. A program paused inside one
# must be the only one there until it leaves (see Run.keepable).
_TRACER_CODE = frozenset({_FxTracer.trace.__code__, _MakefxTracer._trace_inner.__code__})


class Event(NamedTuple):
    kind: str  # "line" | "op" | "node" | "end"
    line: int | None
    name: str | None
    node_id: str | None


@dataclass
class IterationStart:
    """What the program had when the training loop's body last began (for gradcheck)."""

    torch_rng: tuple[torch.Tensor, list[torch.Tensor] | None]
    randoms: dict[str, Any]  # scope name -> random.Random / numpy Generator state
    hand_grads: dict[str, Any]  # the `grad_*` values in scope then (hand-written lessons)


class EventLimit(BaseException):
    """An edited program ran as many events as it may (not an Exception: a bare
    ``except Exception`` in the program does not swallow it)."""


class _Abort(BaseException):
    """Unwinds a parked program when its session is closed."""


class Goal:
    """Where a run should pause next: after ``count`` matches of ``by``.

    ``limit`` is the cursor of an ``event`` goal (unbounded otherwise); the
    other kinds are matched on ``line`` events only, by :meth:`on_line`, which
    also stops any goal where the body of iteration ``until_iteration`` (or a
    later one) of the training loop starts.
    """

    def __init__(
        self, by: str, count: int, run: Run, until_iteration: int | None, stop: Stop | None
    ) -> None:
        self.by = by
        self.stop = stop
        self.remaining = count
        self.limit = run.cursor + count if by == "event" else _NEVER
        self.phase = run.phase
        self.until_iteration = _NEVER if until_iteration is None else until_iteration

    def on_line(self, run: Run) -> bool:
        by = self.by
        at_loop_body = run.event.line == run.program.loop_body_line and run.in_module_frame
        if at_loop_body and run.iteration >= self.until_iteration:
            return True
        if by == "line":
            hit = True
        elif by == "phase":
            hit = run.phase != self.phase
            self.phase = run.phase
        elif by == "iteration":
            hit = at_loop_body
        else:
            return False
        if hit:
            self.remaining -= 1
        return hit and self.remaining <= 0


_NEVER = 1 << 62


_WORKERS = WorkerPool()
os.register_at_fork(after_in_child=_WORKERS.forget)


def _rng_state() -> tuple[torch.Tensor, list[torch.Tensor] | None]:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    return torch.get_rng_state(), cuda


def _set_rng_state(state: tuple[torch.Tensor, list[torch.Tensor] | None]) -> None:
    cpu, cuda = state
    torch.set_rng_state(cpu)
    if cuda is not None:
        torch.cuda.set_rng_state_all(cuda)


_frozen = False


def _freeze_startup_objects() -> None:
    # NOTE: the recorder allocates a few small objects per op. With the ~150k
    # objects torch brings at import, that triggers full collections that cost
    # more than the recording itself; objects alive before the first run
    # (modules, the app) are moved out of the collector's sight, once.
    global _frozen
    if not _frozen:
        _frozen = True
        gc.freeze()


def _fork() -> int | None:
    """os.fork(), or None where it fails; the pool's threads do not exist in a child."""
    with warnings.catch_warnings():
        # Python 3.12+ warns of fork in a process with threads: the forking thread is
        # the only one a child of a session host needs (see Run.copy's note).
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return os.fork()
        except OSError:
            return None


def _child_main(child: Callable[[], None]) -> None:
    """Run ``child`` in a forked process, which ends with it (whatever it raised)."""
    code = 0
    try:
        child()
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        os._exit(code)


def _error(exc: BaseException, line: int | None) -> dict[str, Any]:
    """The program's own error, as State.error shows it."""
    return {"type": type(exc).__name__, "message": bounded_text(exc), "line": line}


class Run:
    """One execution of a lesson program, advanced by :meth:`advance`."""

    def __init__(self, program: LessonProgram, scope: dict[str, Any]) -> None:
        _freeze_startup_objects()
        self.program = program
        self.scope = scope
        self.output: Output | None = None
        self.max_events: int | None = None  # the most events an edited program may run
        if program.edited:
            self.output = Output()
            scope["print"] = self.output.print
            scope["__builtins__"] = guarded_builtins()
        self.registry = NodeRegistry()
        self.cursor = 0
        self.event = Event("line", program.first_line, None, None)
        self._line = program.first_line
        self.phase = program.phases.get(program.first_line, "setup")
        self.iteration = -1
        self.error: dict[str, Any] | None = None
        self.done = False
        self.frames: list[FrameType] = []
        self.node: NodeRecord | None = None  # the node of the current op/node event
        # Nodes the current line's ops created: in the graph before the line binds them.
        self.line_nodes: list[NodeRecord] = []
        self.static_focus: str | None = None  # the fx node of the current op, if any
        self._fx_calls: list[str] | None = None
        self._fx_index = 0
        self._pending_error: BaseException | None = None
        self._goal: Goal | None = None
        self._closing = False
        self._cv = threading.Condition()
        self._started = False
        self._rng: tuple[torch.Tensor, list[torch.Tensor] | None] | None = None
        self._finished = threading.Event()
        # A fork asked for (fork_child) while parked: what the child runs in a thread of
        # its own; then the child's process id (None: fork failed), for the controller.
        self._fork: Callable[[], None] | None = None
        self._forked: int | None = None
        # Forks of the program as it passes (Session: forked checkpoints): at each event
        # from cursor ``pass_at`` on, ``passing(run)`` runs in the program's thread.
        self.pass_at: int | None = None
        self.passing: Callable[[Run], None] | None = None
        self.parked = False
        # Parked in a thread not its own: the autograd engine's device thread (CUDA),
        # which no other backward on that device can use meanwhile.
        self.parked_elsewhere = False
        # Parked inside a call of _TRACER_CODE (see keepable).
        self.tracing = False
        self._thread_id: int | None = None
        # Since the loop body last began: where it began, the gradients AccumulateGrad
        # received (by leaf id; None: .grad holds just that), whether weights changed.
        self.iteration_start: IterationStart | None = None
        self.iteration_grads: dict[str, torch.Tensor | None] = {}
        self.updated = False
        self._modules: dict[int, tuple[Any, str]] = {}
        # Ledgers: captured on every backward call (capture_all), or on those whose
        # ledgers a pause may show; missing_since is the cursor where a call that ran
        # without hooks began, while its ledgers would still be on show.
        self.capture_all = False
        self.peek: Peek | None = None  # an element of a gradient to read (Session.grad_element)
        self.missing_since: int | None = None
        self._backward_end: int | None = None
        self._gap: int | None = None  # events from a backward call to the next node
        # The cursor of the op event that last changed each tensor in place, by where
        # its values live (a saved output comes back from its node as another object).
        self.changed_at: dict[tuple[Any, ...], int] = {}
        # A custom Function's forward that returned: (output, op name, label, args).
        self._applied: tuple[Any, str, str | None, tuple[str, ...]] | None = None
        self._code = compile(program.source, program.path, "exec")
        self._filename = self._code.co_filename

    # -- controller side -------------------------------------------------

    def advance(
        self,
        by: str,
        count: int,
        *,
        until_iteration: int | None = None,
        stop: Stop | None = None,
    ) -> int:
        """Run until the goal is reached or the program ends (or, given
        ``until_iteration``, the body of that iteration of the training loop starts,
        or ``stop`` is reached); return how many of the ``count`` steps are left."""
        if self.done:
            return 0
        goal = Goal(by, count, self, until_iteration, stop)
        with self._own_rng(), self._cv:
            self._goal = goal
            if not self._started:
                self._started = True
                _WORKERS.run(self._main)
            else:
                self._cv.notify_all()
            while self._goal is not None and not self.done:
                self._cv.wait()
        if self.done:
            return 0
        return max(0, goal.limit - self.cursor) if by == "event" else goal.remaining

    @contextmanager
    def _own_rng(self) -> Iterator[None]:
        """Give this run the process's random generators while it is in setup.

        NOTE: torch's default generators are global: the runs of one session (its
        program and its checkpoints) share them. Lessons draw random numbers in setup
        only (tests check this), so a run swaps its own saved state in for any move
        that starts before its training loop does. Sessions do not share a process
        (each has its own host), and a host runs one move at a time.
        """
        if self.iteration >= 0:
            yield
            return
        if self._rng is not None:
            _set_rng_state(self._rng)
        try:
            yield
        finally:
            self._rng = _rng_state()

    def close(self) -> None:
        """Stop a paused program and wait for its thread to end."""
        with self._cv:
            self._closing = True
            self._cv.notify_all()
        if not self._started or self._finished.wait(timeout=10):
            self._release()

    def copy(self, work: Callable[[Run], Any], timeout_s: float) -> Any:
        """``work(copy)`` on a copy of this paused run, at its cursor: the program's own
        thread forks, so the child process holds the program exactly as it stands here
        (copy-on-write) and ``work`` moves it there, leaving this run as it is. Returns
        what ``work`` returned (JSON); CopyFailed if it raised, or gave no answer within
        ``timeout_s`` (the copy is then killed).

        NOTE: fork copies the forking thread only, so only a process where nothing
        else matters can be forked: a session host on CPU, whose program thread is the
        only one that computes (one intra-op thread, DESIGN.md §7). Not while parked in
        a thread not its own (a CUDA backward), nor under the edited-code sandbox
        (fork is denied there).
        """
        if self.done or not self.parked or self.parked_elsewhere:
            raise CopyFailed("the program is not paused in its own thread")
        reader, writer = os.pipe()
        parent = os.getpid()

        def child() -> None:
            os.close(reader)
            die_with_parent(parent)
            answer_with(lambda: work(self), writer)

        try:
            pid = self.fork_child(child)
        finally:
            os.close(writer)
        try:
            if pid is None:
                raise CopyFailed("the program's thread could not fork")
            return answer_of(pid, reader, timeout_s)
        finally:
            os.close(reader)

    def fork_child(self, child: Callable[[], None]) -> int | None:
        """Fork this process with the program as it stands; the child runs ``child``
        (which must end the process: os._exit) while its program stays paused there.
        Returns the child's pid in the parent (None: fork failed), never in the child.

        Paused, the program's own thread forks (the only thread a child has is the one
        that forked), so the child's program can go on; called in the program's thread
        as it runs (``passing``), it forks there and, in the child, parks until the
        child is given a goal. A run with no thread (not started, or done) forks here.
        """
        own = threading.get_ident() == self._thread_id
        if own or self.done or not self._started:
            pid = _fork()
            if pid != 0:
                return pid
            if not own:
                _child_main(child)
            threading.Thread(target=_child_main, args=(child,), name="fork-controller").start()
            self._park()  # as a paused program: the controller gives it goals
            return None
        if not self.parked or self.parked_elsewhere:
            return None
        with self._cv:
            self._fork = child
            self._cv.notify_all()
            while self._fork is not None:
                self._cv.wait()
            pid, self._forked = self._forked, None
        return pid

    def _release(self) -> None:
        """Drop the program's variables once nothing will read them again.

        NOTE: lessons leave reference cycles behind (a custom Function's ctx, an
        exception's traceback through the lesson's frames); without this, their
        tensors would wait for the cycle collector after a session is closed.
        """
        self.scope.clear()
        self.frames.clear()
        self._pending_error = None

    @property
    def keepable(self) -> bool:
        """May this paused run be kept while other runs of the process move?

        Not while parked in the autograd engine's device thread (CUDA): it would hold
        that thread, and with it every other backward on the device. Not while inside
        a torch.fx tracer: another run through one would restore the process state it
        found there, this run's, after this run had left (make_fx then fails, and
        torch.nn.Module.__call__ stays patched for good). See checkpoints.settle.
        """
        return self.done or not (self.parked_elsewhere or self.tracing)

    @property
    def frame(self) -> FrameType | None:
        """The innermost lesson frame that is running (None before and after)."""
        return self.frames[-1] if self.frames else None

    @property
    def in_module_frame(self) -> bool:
        return len(self.frames) == 1

    # -- worker side -----------------------------------------------------

    def _main(self) -> bool:
        """Run the program; True if it ran to its end (the thread can be reused)."""
        self._thread_id = threading.get_ident()
        try:
            with self._cv:
                self._set_out()
            return self._execute()
        finally:
            if self._closing:
                self._release()
            self._finished.set()

    def _execute(self) -> bool:
        recorder = Recorder(self.registry, self)
        self.registry.begin()
        sys.settrace(self._trace_call)
        try:
            with recorder:
                exec(self._code, self.scope)
        except _Abort:
            return False
        except BaseException as exc:  # the lesson's own error is its outcome
            self.error = _error(exc, self._line)
        finally:
            sys.settrace(None)
            self.frames.clear()
        with self._cv:
            if self._closing:
                return False
            self.node = None
            self.phase = "done"
            self._emit(Event("end", None, None, None))
            self.done = True
            self._goal = None
            self._cv.notify_all()
        return True

    def _trace_call(self, frame: FrameType, event: str, arg: Any) -> Callable[..., Any] | None:
        code = frame.f_code
        if code.co_filename is not self._filename:
            return None
        if self.frames and not code.co_flags & inspect.CO_NEWLOCALS:
            # A class body: its lines define methods, which are stepped when they run;
            # stepping over a `class` statement is one step.
            return None
        self.frames.append(frame)
        return self._trace_local

    def _trace_local(self, frame: FrameType, event: str, arg: Any) -> Callable[..., Any] | None:
        if event == "line":
            line = frame.f_lineno
            if self._quiet(line):
                return self._trace_local
            if self.max_events is not None and self.cursor >= self.max_events:
                raise EventLimit(
                    f"the program ran {self.cursor} events, the most an edited program may "
                    "run here (AGX_CODE_MAX_EVENTS): give it fewer iterations or a shorter loop"
                )
            self._flush_apply()
            self.error = None
            if self._pending_error is not None:
                exc = self._pending_error
                self.error = _error(exc, self._line)
                self._pending_error = None
            if len(self.frames) == 1:
                if self._line in self.program.update_lines and self.iteration >= 0:
                    self.updated = True
                self.phase = self.program.phases.get(line, self.phase)
                if line == self.program.loop_body_line:
                    self.iteration = self.scope.get("t", self.iteration)
                    self._begin_iteration()
            self.node = None
            self.line_nodes = []
            self.static_focus = None
            self._fx_index = 0
            self._line = line
            self._emit(Event("line", line, None, None))
        elif event == "exception":
            self._pending_error = arg[1]
        elif event == "return" and self.frames and self.frames[-1] is frame:
            if frame.f_code.co_name == "forward":
                self._note_apply(frame, arg)
            self.frames.pop()
            if self.frames:
                # Back in the caller: later ops and nodes belong to its line.
                self._line = self.frames[-1].f_lineno
        return self._trace_local

    def _quiet(self, line: int) -> bool:
        """Whether a line event is none of the program's steps (see LessonProgram)."""
        if len(self.frames) == 1 and line in self.program.quiet_lines:
            return True
        end = self.program.with_bodies.get(line)
        return end is not None and line < self._line <= end

    def _note_apply(self, frame: FrameType, output: Any) -> None:
        """A custom Function's forward returns: its node exists once apply returns.

        NOTE: ``Function.apply`` does not come through the recorder's mode, so the node
        it makes is reported by the next event in lesson code (:meth:`_flush_apply`),
        named as the caller's expression is now, while the caller is at the call.
        """
        ctx = frame.f_locals.get("ctx")
        if not isinstance(ctx, torch.autograd.function.BackwardCFunction) or len(self.frames) < 2:
            return
        caller = self.frames[-2]
        expressions = self.program.expressions
        expression = expressions.at(caller) if expressions is not None else None
        name = "torch.autograd.Function.apply"  # what ran: MyReLU.apply is inherited
        label = expression.name if expression is not None else None
        args = expression.operands(False) if expression is not None else ()
        self._applied = (output, name, label, args)

    def _flush_apply(self) -> None:
        """Report the node of the custom Function that last returned, as an op event."""
        if self._applied is None:
            return
        output, name, label, args = self._applied
        self._applied = None
        tensor = output if isinstance(output, torch.Tensor) else None
        if isinstance(output, tuple | list):
            tensor = next((t for t in output if isinstance(t, torch.Tensor)), None)
        grad_fn = tensor.grad_fn if tensor is not None else None
        if grad_fn is None or self.registry.get(grad_fn) is not None:
            return
        record = self.registry.add(grad_fn, list(tensor.shape))  # type: ignore[union-attr]
        record.line, record.label, record.args = self._line, label, args
        self.on_op(name, record)

    def before_op(self) -> None:
        self._flush_apply()

    def on_in_place(self, tensor: torch.Tensor) -> None:
        self.changed_at[storage_key(tensor)] = self.cursor + 1  # the op event to come

    def _begin_iteration(self) -> None:
        randoms: dict[str, Any] = {}
        for name, value in self.scope.items():
            if isinstance(value, random.Random):
                randoms[name] = value.getstate()
            elif isinstance(value, np.random.Generator):
                randoms[name] = value.bit_generator.state
        hand = {n: v for n, v in self.scope.items() if n.startswith("grad_")}
        self.iteration_start = IterationStart(_rng_state(), randoms, hand)
        self.iteration_grads = {}
        self.updated = False

    # -- the recorder's side (app.engine.recorder.Program) -------------------

    @property
    def line(self) -> int:
        return self._line

    @property
    def source_lines(self) -> list[str]:
        return self.program.source_lines

    def scope_tensors(self) -> dict[str, Any]:
        return scope_tensors(self)

    def op_label(self, method: bool) -> tuple[str, tuple[str, ...]] | None:
        """What the lesson calls the result and the arguments of the op running now."""
        frame = self.frame
        expressions = self.program.expressions
        if frame is None or expressions is None:
            return None
        expression = expressions.at(frame)
        inner, outer, first = modules_between(frame)
        if inner is None:
            return None if expression is None else (expression.name, expression.operands(method))
        if inner is outer and expression is not None:
            return expression.name, ()  # the lesson calls this module itself
        return f"{self._module_path(inner)}({self._tensor_label(first)})", ()

    def _module_path(self, module: Any) -> str:
        known = self._modules.get(id(module))
        if known is None or known[0] is not module:
            self._modules = {id(m): (m, path) for path, m in module_paths(self.scope).items()}
            known = self._modules.get(id(module), (module, type(module).__name__))
        return known[1]

    def _tensor_label(self, tensor: Any) -> str:
        if isinstance(tensor, torch.Tensor):
            record = self.registry.get(tensor.grad_fn) if tensor.grad_fn is not None else None
            if record is not None and record.label is not None:
                return record.label
            for name, value in self.scope.items():
                if value is tensor:
                    return name
        return "input"

    def on_accumulate(self, leaf: torch.Tensor, share: torch.Tensor | None) -> None:
        self.iteration_grads[self.registry.leaf_id(leaf)] = share

    def on_op(self, name: str, record: NodeRecord | None) -> None:
        self.node = record
        if record is not None:
            self.line_nodes.append(record)
            # A new forward pass: the last backward's ledgers are gone, seen or not.
            self.missing_since = None
            if self._backward_end is not None:
                self._gap = self.cursor - self._backward_end
                self._backward_end = None
        node_id = record.id if record else None
        if record is None and self.program.static_name is not None:
            node_id = self.static_focus = self._static_node()
        self._emit(Event("op", self._line, name, node_id))
        if record is not None:
            self.registry.maybe_prune(self._roots)

    @property
    def static_executed(self) -> frozenset[str]:
        """The fx nodes the current line's run of the static graph has executed."""
        if self._fx_calls is None or self.static_focus is None:
            return frozenset()
        return frozenset(self._fx_calls[: self._fx_index])

    def _static_node(self) -> str | None:
        """The fx node of this op when the line runs the captured static graph.

        A GraphModule runs its call nodes in order, one op each, so the k-th
        op of the line is the k-th call node.
        """
        if self._fx_calls is None:
            module = self.scope.get(self.program.static_name or "")
            if not isinstance(module, torch.fx.GraphModule):
                return None
            self._fx_calls = [
                f"fx:{n.name}"
                for n in module.graph.nodes
                if n.op in ("call_function", "call_method")
            ]
        index = self._fx_index
        self._fx_index += 1
        return self._fx_calls[index] if index < len(self._fx_calls) else None

    def on_node(self, record: NodeRecord) -> None:
        self.node = record
        self._emit(Event("node", self._line, record.name, record.id))
        self._backward_end = self.cursor

    def ledgers_unseen(self, nodes: int) -> bool:
        """Whether no pause can show the ledgers of a backward call of ``nodes`` nodes
        starting now: the goal lies past the next forward pass, which replaces them.

        For a step by events, the next forward pass is expected within twice the
        events that last came between a backward call and a forward op; for a run to
        the end, in the next iteration. A wrong guess costs a replay, never a wrong view.
        """
        goal = self._goal
        if goal is None or self.capture_all or goal.until_iteration <= self.iteration + 1:
            return False  # (it stops where the next iteration starts, before its forward)
        if goal.by == "end":
            return self.iteration < int(self.scope.get("iterations", 0)) - 1
        if goal.by != "event" or self._gap is None:
            return False
        return goal.limit > self.cursor + nodes + 2 * self._gap + 1

    def skip_events(self, count: int) -> None:
        """Count ``count`` node events that ran without hooks (so without ledgers)."""
        if self.missing_since is None:
            self.missing_since = self.cursor
        self.cursor += count
        self._backward_end = self.cursor

    def _roots(self) -> list[Any]:
        roots = [record.node for record in self.line_nodes]
        for tensor in scope_tensors(self).values():
            grad_fn = getattr(tensor, "grad_fn", None)
            if grad_fn is not None:
                roots.append(grad_fn)
        return roots

    def _emit(self, event: Event) -> None:
        self.cursor += 1
        self.event = event
        if self.pass_at is not None and self.cursor >= self.pass_at and event.kind != "end":
            self.pass_at = None
            if self.passing is not None:
                self.passing(self)  # it may fork (fork_child) and set pass_at again
        goal = self._goal
        if goal is None or event.kind == "end":
            return
        reached = self.cursor >= goal.limit or (event.kind == "line" and goal.on_line(self))
        if reached or (goal.stop is not None and goal.stop.reached()):
            self._park()

    def _park(self) -> None:
        with self._cv:
            self._goal = None
            self.parked = True
            self.parked_elsewhere = threading.get_ident() != self._thread_id
            self.tracing = self._in_tracer()
            self._cv.notify_all()
            while self._goal is None and not self._closing:
                if self._fork is not None:
                    self._fork_here()
                    continue
                self._cv.wait()
            self.parked = self.parked_elsewhere = self.tracing = False
            if self._closing:
                raise _Abort
            self._set_out()

    def _in_tracer(self) -> bool:
        """Is the program's thread inside a torch.fx tracer (_TRACER_CODE)?"""
        if self._thread_id is None:
            return False
        frame = sys._current_frames().get(self._thread_id)  # its thread, parked or not
        while frame is not None:
            if frame.f_code in _TRACER_CODE:
                return True
            frame = frame.f_back
        return False

    def _set_out(self) -> None:
        """The program's thread sets out on a new goal."""
        stop = self._goal.stop if self._goal is not None else None
        if stop is not None:
            stop.begin()

    def _fork_here(self) -> None:
        """Fork, in the program's thread (the controller waits in :meth:`fork_child`)."""
        child, self._fork = self._fork, None
        assert child is not None
        pid = _fork()
        if pid == 0:  # this thread is the child's only one, paused as before
            threading.Thread(target=_child_main, args=(child,), name="fork-controller").start()
            return
        self._forked = pid
        self._cv.notify_all()
