"""Record forward ops and backward nodes without altering what they compute.

Two instruments, both allowed by the design's "observe, never alter" rule:

* :class:`Recorder` is a ``TorchFunctionMode`` that calls every torch function
  through unchanged and reports the ones that returned tensors; when an op
  creates a new ``grad_fn`` it captures the node's structure and the metadata
  of its saved tensors *now*, before backward frees them.
* For each backward call it registers hooks on every node of the graph being
  differentiated (:mod:`app.engine.hooks`: each node's ledger, reported as the engine
  runs it), and removes them when the call returns; or, where no pause can show what
  the hooks would capture, runs the call without them.
"""

from __future__ import annotations

import types
from collections.abc import Iterable
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from app.engine.hooks import BackwardCall, Program
from app.engine.nodes import NodeRecord, NodeRegistry, is_custom_function
from app.engine.tracing import tracing_off, tracing_on

__all__ = ["Recorder"]

# NOTE: these are the entry points into the autograd engine. The recorder
# hooks the graph below their roots for the duration of the call only.
_BACKWARD_FUNCS = frozenset({torch.Tensor.backward, torch.autograd.backward, torch.autograd.grad})
_ATTRIBUTE_READS = (types.GetSetDescriptorType, types.MethodWrapperType)


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
        trace = tracing_off()
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
            tracing_on(trace)

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
        trace = tracing_off()
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
                tracing_on(trace)
                out = func(*args, **kwargs)
                tracing_off()
                for record in records:
                    record.executed = True
                self.program.skip_events(len(records))
                return out
            call = BackwardCall(self.registry, self.program)
            handles = [handle for record in records for handle in call.hook(record)]
            try:
                tracing_on(trace)
                return func(*args, **kwargs)
            finally:
                tracing_off()
                for handle in handles:
                    handle.remove()
        finally:
            tracing_on(trace)


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
