"""The hooks of one backward call: each node's ledger, in the lesson's names.

:class:`BackwardCall` registers a post hook on every node of the graph a backward call
differentiates (and a pre hook on each ``AccumulateGrad``, to see ``.grad`` before),
names the node's output and inputs as the lesson does, and captures the node's ledger
(:mod:`app.engine.ledger`) before the run may pause on the node's event.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from app.engine.ledger import Capture, GradCopy, Names, capture, saved_input
from app.engine.naming import TensorNames, operand
from app.engine.nodes import NodeRecord, NodeRegistry, is_custom_function
from app.engine.tracing import tracing_off, tracing_on

__all__ = ["BackwardCall", "Peek", "Program"]


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


class BackwardCall:
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
            trace = tracing_off()
            before[0] = GradCopy.of(leaf.grad) if leaf is not None else None
            tracing_on(trace)

        def hook(grad_inputs: tuple[Any, ...], grad_outputs: tuple[Any, ...]) -> None:
            record.executed = True
            trace = tracing_off()  # the capture runs no lesson code
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
                tracing_on(trace)
            self.program.on_node(record)

        handles = [node.register_hook(hook)]
        if leaf is not None:
            handles.append(node.register_prehook(prehook))
        return handles
