"""Record forward ops and backward nodes without altering what they compute.

Two instruments, both allowed by the design's "observe, never alter" rule:

* :class:`Recorder` is a ``TorchFunctionMode`` that calls every torch function
  through unchanged and reports the ones that returned tensors; when an op
  creates a new ``grad_fn`` it captures the node's structure and the metadata
  of its saved tensors *now*, before backward frees them.
* For each backward call it registers a post hook on every node of the graph
  being differentiated (and a pre hook on each ``AccumulateGrad``, to see ``.grad``
  before), captures each node's ledger (:mod:`app.engine.ledger`) and reports the
  node as the engine runs it, and removes the hooks when the call returns.
"""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch.overrides import TorchFunctionMode

from app.engine.ledger import Capture, GradCopy, Names, capture, saved_input
from app.engine.naming import TensorNames, operand
from app.engine.nodes import NodeRecord, NodeRegistry, is_custom_function

__all__ = ["Peek", "Program", "Recorder"]

# NOTE: these are the entry points into the autograd engine. The recorder
# hooks the graph below their roots for the duration of the call only.
_BACKWARD_FUNCS = frozenset({torch.Tensor.backward, torch.autograd.backward, torch.autograd.grad})
_ATTRIBUTE_READS = (types.GetSetDescriptorType, types.MethodWrapperType)

# NOTE: the line tracer is switched off around the recorder's own work and the ops
# it calls through, where no lesson code runs, to save the trace calls of the Python
# frames in there. That pays on 3.11, where sys.settrace costs well under a
# microsecond; from 3.12 on it re-instruments every code object (about 30 µs a call,
# measured on torch 2.11), far more than the trace calls it saves, so it stays on.
if sys.version_info < (3, 12):

    def _tracing_off() -> Any:
        """Switch the line tracer off; return it, for :func:`_tracing_on`."""
        trace = sys.gettrace()
        sys.settrace(None)
        return trace

    _tracing_on = sys.settrace
else:

    def _tracing_off() -> Any:
        return None

    def _tracing_on(trace: Any) -> None:
        pass


def _op_name(func: Any, cache: dict[Any, str]) -> str:
    name = cache.get(func)
    if name is None:
        qualname = getattr(func, "__qualname__", "") or ""
        short = getattr(func, "__name__", None) or str(func)
        if qualname.startswith(("TensorBase.", "Tensor.")):
            name = "Tensor." + short
        elif getattr(func, "__module__", "") == "torch._C._nn":
            name = "torch.nn.functional." + short
        elif isinstance(func, torch._ops.OpOverload | torch._ops.OpOverloadPacket):
            name = (
                "aten::" + str(func).split(".")[1] if str(func).startswith("aten.") else str(func)
            )
        else:
            name = "torch." + short
        cache[func] = name
    return name


def _in_place(name: str) -> bool:
    """Whether the op named ``name`` changes its first argument (``mul_``, ``__isub__``)."""
    short = name.rpartition(".")[2]
    return short.startswith("__i") or (short.endswith("_") and not short.endswith("__"))


def _first_tensor(out: Any) -> torch.Tensor | None:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, tuple | list):
        for item in out:
            if isinstance(item, torch.Tensor):
                return item
    return None


def _graph_nodes(roots: Iterable[Any]) -> list[Any]:
    seen: set[Any] = set()
    order: list[Any] = []
    stack = [r for r in roots if r is not None]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        order.append(node)
        stack.extend(child for child, _ in node.next_functions if child is not None)
    return order


def _backward_roots(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
    if func is torch.Tensor.backward:
        tensors: Any = args[0]
    elif func is torch.autograd.grad:
        tensors = kwargs.get("outputs", args[0] if args else ())
    else:
        tensors = kwargs.get("tensors", args[0] if args else ())
    if isinstance(tensors, torch.Tensor):
        tensors = (tensors,)
    roots = []
    for t in tensors:
        if t.grad_fn is not None:
            roots.append(t.grad_fn)
        elif t.requires_grad and t.is_leaf:
            # A leaf's AccumulateGrad is the whole graph; reach it through an edge.
            roots.append(torch.autograd.graph.get_gradient_edge(t).node)
    return roots


class Recorder(TorchFunctionMode):
    """Call every torch function through; report ops and backward nodes.

    ``on_op(name, record)`` runs after an op that returned a tensor, with the
    record of the ``grad_fn`` it created (or None). ``on_node(record)`` runs
    after the engine ran a node, in the engine's thread, in its order, with the
    node's ledger captured.
    """

    def __init__(self, registry: NodeRegistry, program: Program) -> None:
        super().__init__()
        self.registry = registry
        self.program = program
        self._names: dict[Any, str] = {}
        self._ledgered: list[NodeRecord] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if type(func) in _ATTRIBUTE_READS:
            return func(*args, **kwargs)  # attribute reads such as `.grad` are not ops
        if func in _BACKWARD_FUNCS:
            return self._backward(func, args, kwargs)
        # NOTE: nothing inside a forward op calls back into lesson code (an
        # autograd.Function's apply does not come through here), so the line
        # tracer is switched off for the op and for the recording: the torch
        # internals and this module's helpers then cost no trace calls.
        trace = _tracing_off()
        try:
            self.program.before_op()
            out = func(*args, **kwargs)
            tensor = _first_tensor(out)
            if tensor is not None:
                name = _op_name(func, self._names)
                grad_fn = tensor.grad_fn
                record = None
                if grad_fn is not None and self.registry.get(grad_fn) is None:
                    # A node this op made (an op that returns a tensor with the node it
                    # had, such as clamp_ with recording off, made none).
                    record = self.registry.add(grad_fn, list(tensor.shape))
                    self._label(record, name.startswith("Tensor."))
                elif tensor.requires_grad:
                    self.registry.leaf_id(tensor)  # numbered when made, not when first shown
                if _in_place(name):
                    self.program.on_in_place(tensor)
                self.program.on_op(name, record)
            return out
        finally:
            _tracing_on(trace)

    def _label(self, record: NodeRecord, method: bool) -> None:
        """Name a new node's output and arguments as the lesson's source does; forget
        the last backward call's ledgers (a new forward pass has begun)."""
        self._forget_ledgers()
        record.line = self.program.line
        label = self.program.op_label(method)
        if label is None:
            return
        record.label, record.args = label

    def _forget_ledgers(self, then: list[NodeRecord] | None = None) -> None:
        """Drop the ledgers of the last backward call; ``then``: the next call's nodes."""
        for old in self._ledgered:
            old.ledger = None
        self._ledgered = then or []

    def _backward(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        # The engine may run lesson code (a custom Function's backward), so the
        # tracer stays on for the call itself, and only for it.
        trace = _tracing_off()
        try:
            records = [
                self.registry.add(n) for n in _graph_nodes(_backward_roots(func, args, kwargs))
            ]
            self._forget_ledgers(records)
            # NOTE: a call nothing can pause in, whose ledgers no pause can show (the
            # next forward pass comes first), runs without hooks, at full speed; the
            # engine runs every node once, so its events are counted in one go. If a
            # pause does come before the next forward pass, the run says its ledgers
            # are missing and the session replays with hooks (Session._ensure_ledgers).
            if _can_batch(func, args, kwargs, records) and self.program.ledgers_unseen(
                len(records)
            ):
                for record in records:
                    record.executed = False
                _tracing_on(trace)
                out = func(*args, **kwargs)
                _tracing_off()
                for record in records:
                    record.executed = True
                self.program.skip_events(len(records))
                return out
            call = _BackwardCall(self.registry, self.program)
            handles = [handle for record in records for handle in call.hook(record)]
            try:
                _tracing_on(trace)
                return func(*args, **kwargs)
            finally:
                _tracing_off()
                for handle in handles:
                    handle.remove()
        finally:
            _tracing_on(trace)


@dataclass
class Peek:
    """One element of a gradient a node receives or sends, read when the node runs."""

    node_id: str
    side: str  # "inputs" (grad_inputs, sent) or "outputs" (grad_outputs, arrived)
    k: int
    index: tuple[int, ...]
    value: float | None = None

    def read(self, grad_inputs: tuple[Any, ...], grad_outputs: tuple[Any, ...]) -> None:
        grads = grad_inputs if self.side == "inputs" else grad_outputs
        grad = grads[self.k] if self.k < len(grads) else None
        if isinstance(grad, torch.Tensor):
            self.value = float(grad.detach()[self.index])


def _can_batch(
    func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], records: list[NodeRecord]
) -> bool:
    """Whether the engine will run every node below the roots, once, without error and
    without lesson code: a plain ``backward()`` (no ``inputs=``) through a graph of
    built-in nodes whose saved tensors are intact and that has not run yet."""
    if func is torch.autograd.grad or kwargs.get("inputs") is not None:
        return False
    if func is torch.Tensor.backward and len(args) > 4:
        return False
    for record in records:
        if is_custom_function(record.node) or (
            record.executed and not record.id.startswith("acc:")
        ):
            return False
        for saved in record.saved:
            if saved.version_now != saved.version_saved:
                return False
    return True


class Program(Protocol):
    """The run's side of recording: where the program is, and what happens there."""

    cursor: int
    peek: Peek | None  # one element of a gradient to read as it passes

    @property
    def line(self) -> int: ...

    @property
    def source_lines(self) -> list[str]: ...

    def op_label(self, method: bool) -> tuple[str, tuple[str, ...]] | None: ...

    def scope_tensors(self) -> dict[str, Any]: ...

    def before_op(self) -> None: ...

    def on_in_place(self, tensor: torch.Tensor) -> None: ...

    def ledgers_unseen(self, nodes: int) -> bool: ...

    def skip_events(self, count: int) -> None: ...

    def on_op(self, name: str, record: NodeRecord | None) -> None: ...

    def on_node(self, record: NodeRecord) -> None: ...

    def on_accumulate(self, leaf: torch.Tensor, share: torch.Tensor | None) -> None: ...


def _short_name(node_name: str) -> str:
    """The op a node type differentiates: ``MulBackward0`` -> ``mul``."""
    return re.sub(r"Backward\d*$", "", node_name).lower()


class _BackwardCall:
    """The hooks of one backward call: each node's ledger, in the lesson's names.

    NOTE: hooks only read: they copy small blocks of the gradients and return None.
    The copy of a gradient that ``AccumulateGrad`` received (the share of this
    call, for gradcheck) is made only when ``.grad`` already held one, where the
    engine adds into ``.grad`` instead of stealing the incoming buffer anyway.
    """

    def __init__(self, registry: NodeRegistry, program: Program) -> None:
        self.registry = registry
        self.program = program
        self.names = TensorNames(program.scope_tensors())
        self._outputs: dict[Any, str] = {}
        self._sent: dict[str, list[tuple[str, Any]]] = {}

    def output_name(self, record: NodeRecord) -> str:
        node = record.node
        name = self._outputs.get(node)
        if name is None:
            if hasattr(node, "variable"):
                name = self.names.of_tensor(node.variable) or self.registry.leaf_id(node.variable)
            else:
                name = self.names.of_node(node)
                if name is None and record.label is not None:
                    name = record.label
                    later = self.names.node_of_name(name)
                    if later is not None and later is not node:
                        # The variable was changed in place since: this is it before.
                        op = getattr(later, "_forward_cls", None)
                        short = op.__name__ if op is not None else _short_name(later.name())
                        name = f"{name} before {short}"
                if name is None:
                    first = self.input_name(record, 0)
                    short = _short_name(record.name)
                    name = f"{operand(first)}ᵀ" if short == "t" else f"{short}({first})"
            self._outputs[node] = name
        return name

    def names_of(self, record: NodeRecord) -> Names:
        """The node's output and inputs, as the lesson calls them."""
        count = len(record.node.next_functions)
        return Names(self.output_name(record), [self.input_name(record, i) for i in range(count)])

    def input_name(self, record: NodeRecord, index: int) -> str:
        node = record.node
        nexts = node.next_functions
        child = nexts[index][0] if index < len(nexts) else None
        if child is not None:
            return self.output_name(self.registry.add(child))
        name = self.names.of_tensor(saved_input(node, record.name, index))
        if name is not None:
            return name
        if index < len(record.args):
            return record.args[index]
        return f"input{index}"

    def _accumulated(
        self,
        captured: Capture,
        leaf: torch.Tensor,
        before: GradCopy | None,
        uses: list[tuple[str, GradCopy]],
        grad_outputs: tuple[Any, ...],
    ) -> None:
        """Complete an AccumulateGrad's capture: .grad before + incoming = after."""
        incoming = captured.grad_outputs[0] if captured.grad_outputs else None
        zero = before is None or (before.norm is not None and float(before.norm) == 0)
        # Added to nothing (or to zeros), .grad now holds exactly what arrived.
        after = incoming if zero and incoming is not None else GradCopy.of(leaf.grad)
        if after is not None:
            captured.accumulate = (before, after)
        captured.contributions = uses if len(uses) > 1 else []
        share = None  # None: .grad holds just this call's gradient
        if not zero and grad_outputs and isinstance(grad_outputs[0], torch.Tensor):
            share = grad_outputs[0].detach().clone()  # this call's part of .grad (gradcheck)
        self.program.on_accumulate(leaf, share)

    def hook(self, record: NodeRecord) -> list[Any]:
        record.executed = False
        node = record.node
        leaf = getattr(node, "variable", None)
        before: list[GradCopy | None] = [None]

        def prehook(grad_outputs: tuple[Any, ...]) -> None:
            trace = _tracing_off()
            before[0] = GradCopy.of(leaf.grad) if leaf is not None else None
            _tracing_on(trace)

        def hook(grad_inputs: tuple[Any, ...], grad_outputs: tuple[Any, ...]) -> None:
            record.executed = True
            trace = _tracing_off()  # the capture runs no lesson code
            try:
                nexts = node.next_functions
                targets = [
                    self.registry.add(child).id if child is not None else None for child, _ in nexts
                ]
                sent = [GradCopy.of(g, to) for g, to in zip(grad_inputs, targets, strict=False)]
                uses = self._sent.get(record.id, []) if leaf is not None else []
                # One use sent AccumulateGrad what it received: copied once, not twice.
                arrived = uses[0][1].sent_to(None) if len(uses) == 1 else None
                captured = capture(
                    node_id=record.id,
                    name=record.name,
                    node=node,
                    names=self.names_of(record),
                    grad_inputs=grad_inputs,
                    sent=sent,
                    grad_outputs=grad_outputs,
                    arrived=arrived,
                    custom=is_custom_function(node),
                    source=self.program.source_lines,
                )
                captured.cursor = self.program.cursor + 1  # the node event, emitted below
                peek = self.program.peek
                if peek is not None and peek.node_id == record.id:
                    peek.read(grad_inputs, grad_outputs)
                for grad, to in zip(sent, targets, strict=False):
                    if grad is not None and to is not None:
                        self._sent.setdefault(to, []).append((record.id, grad))
                if leaf is not None:
                    self._accumulated(captured, leaf, before[0], uses, grad_outputs)
                record.ledger = captured
            except Exception:  # a ledger must never break the program it describes
                record.ledger = None
            finally:
                # A reference kept while the program pauses below would stop
                # AccumulateGrad from stealing the gradient (see _BackwardCall).
                del grad_inputs, grad_outputs
                _tracing_on(trace)
            self.program.on_node(record)

        handles = [node.register_hook(hook)]
        if leaf is not None:
            handles.append(node.register_prehook(prehook))
        return handles
