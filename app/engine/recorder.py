"""Record forward ops and backward nodes without altering what they compute.

Two instruments, both allowed by the design's "observe, never alter" rule:

* :class:`Recorder` is a ``TorchFunctionMode`` that calls every torch function
  through unchanged and reports the ones that returned tensors; when an op
  creates a new ``grad_fn`` it captures the node's structure and the metadata
  of its saved tensors *now*, before backward frees them.
* For each backward call it registers a post hook on every node of the graph
  being differentiated, reports each node as the engine runs it, and removes
  the hooks when the call returns.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import torch
from torch.overrides import TorchFunctionMode

from app.engine.nodes import GradBrief, NodeRecord, NodeRegistry, is_custom_function

__all__ = ["Pacer", "Recorder", "grad_brief"]

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


def grad_brief(grads: tuple[Any, ...]) -> list[GradBrief | None]:
    """Shape and norm of each gradient a node received or produced (None: no gradient).

    NOTE: a record keeps these summaries, never the gradients themselves: a
    reference held past the hook makes AccumulateGrad copy into a new `.grad`
    instead of stealing the incoming buffer, which changes version counters
    from what a plain run shows.
    """
    brief: list[GradBrief | None] = []
    with torch.no_grad():
        for g in grads:
            if not isinstance(g, torch.Tensor):
                brief.append(None)
            elif torch._C._functorch.is_functorch_wrapped_tensor(g):
                brief.append((list(g.shape), None))  # no value to read
            else:
                # In the gradient's own precision (half ones in float32): 6x cheaper
                # than in float64 at seed sizes, and exact to display precision.
                low = g.dtype in (torch.float16, torch.bfloat16)
                norm = torch.linalg.vector_norm(g.detach(), dtype=torch.float32 if low else None)
                brief.append((list(g.shape), norm))
    return brief


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


class Pacer(Protocol):
    """The run's side of batching: may it pause within the next events?"""

    def may_pause_within(self, events: int, lines: bool) -> bool: ...

    def skip_events(self, count: int) -> None: ...


def _can_batch(
    func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], records: list[NodeRecord]
) -> bool:
    """Whether the engine will run every node below the roots, once, without error.

    That holds for a plain ``backward()`` (no ``inputs=``) through a graph of
    built-in nodes whose saved tensors are intact and that has not run yet.
    """
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


class Recorder(TorchFunctionMode):
    """Call every torch function through; report ops and backward nodes.

    ``on_op(name, record)`` runs after an op that returned a tensor, with the
    record of the ``grad_fn`` it created (or None). ``on_node(record)`` runs
    after the engine ran a node, in the engine's thread, in its order.
    """

    def __init__(
        self,
        registry: NodeRegistry,
        on_op: Callable[[str, NodeRecord | None], None],
        on_node: Callable[[NodeRecord], None],
        pacer: Pacer,
    ) -> None:
        super().__init__()
        self.registry = registry
        self.on_op = on_op
        self.on_node = on_node
        self.pacer = pacer
        self._names: dict[Any, str] = {}

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
            out = func(*args, **kwargs)
            tensor = _first_tensor(out)
            if tensor is not None:
                grad_fn = tensor.grad_fn
                record = None
                if grad_fn is not None:
                    record = self.registry.add(grad_fn, list(tensor.shape))
                elif tensor.requires_grad:
                    self.registry.leaf_id(tensor)  # numbered when made, not when first shown
                self.on_op(_op_name(func, self._names), record)
            return out
        finally:
            _tracing_on(trace)

    def _backward(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        # The engine may run lesson code (a custom Function's backward), so the
        # tracer stays on for the call itself, and only for it.
        trace = _tracing_off()
        try:
            records = [
                self.registry.add(n) for n in _graph_nodes(_backward_roots(func, args, kwargs))
            ]
            # NOTE: when no pause can fall inside this call, node hooks would only
            # count events; the engine runs every node exactly once, so count them
            # in one go and keep backward at full speed (checked against hooks in
            # tests/engine/test_session.py).
            if _can_batch(func, args, kwargs, records) and not self.pacer.may_pause_within(
                len(records), lines=False
            ):
                for record in records:
                    record.executed = False
                _tracing_on(trace)
                out = func(*args, **kwargs)
                _tracing_off()
                for record in records:
                    record.executed = True
                    record.grad_inputs, record.grad_outputs = [], []
                self.pacer.skip_events(len(records))
                return out
            handles = [self._hook(record) for record in records]
            try:
                _tracing_on(trace)
                return func(*args, **kwargs)
            finally:
                _tracing_off()
                for handle in handles:
                    handle.remove()
                # NOTE: gradient summaries are shown while their backward call runs,
                # and forgotten when it returns, as a batched call never has them: what
                # a cursor shows must not depend on how the run got there.
                for record in records:
                    record.grad_inputs, record.grad_outputs = [], []
        finally:
            _tracing_on(trace)

    def _hook(self, record: NodeRecord) -> Any:
        record.executed = False

        def hook(grad_inputs: tuple[Any, ...], grad_outputs: tuple[Any, ...]) -> None:
            record.executed = True
            record.grad_inputs = grad_brief(grad_inputs)
            record.grad_outputs = grad_brief(grad_outputs)
            del grad_inputs, grad_outputs
            self.on_node(record)

        return record.node.register_hook(hook)
