"""A plain run of a lesson file with hooks on the nodes of its backward calls: what the
explorer's node events and ledgers are compared with."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from app.lessons.plain import run_plain

__all__ = ["run_plain_hooked"]

NodeHook = Callable[[Any, tuple[Any, ...], tuple[Any, ...]], None]


def run_plain_hooked(
    lesson_id: str, config: dict[str, object], on_node: NodeHook, *, calls: int | None = None
) -> None:
    """Run the lesson plainly; ``on_node(node, grad_inputs, grad_outputs)`` runs for every
    node of the first ``calls`` backward calls (all: None), in the engine's order."""
    original = torch.Tensor.backward
    hooked = 0

    def backward(self: torch.Tensor, *args: object, **kwargs: object) -> None:
        nonlocal hooked
        if calls is not None and hooked >= calls:
            return original(self, *args, **kwargs)
        hooked += 1
        stack, nodes = [self.grad_fn], []
        while stack:
            node = stack.pop()
            if node is not None and node not in nodes:
                nodes.append(node)
                stack.extend(child for child, _ in node.next_functions)
        handles = [
            n.register_hook(lambda gi, go, n=n: on_node(n, gi, go))  # type: ignore[misc]
            for n in nodes
        ]
        try:
            return original(self, *args, **kwargs)
        finally:
            for handle in handles:
                handle.remove()

    torch.Tensor.backward = backward  # type: ignore[method-assign]
    try:
        run_plain(lesson_id, config)
    finally:
        torch.Tensor.backward = original  # type: ignore[method-assign]
