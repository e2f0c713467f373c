"""What the explorer knows of autograd nodes and leaves: stable ids and capture-time records.

A node's record is made when the recorder first sees the node (the op that created
it, in the usual case), with the versions its saved tensors had then: backward frees
them, and an in-place change afterwards is what the graph must show as stale.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.weak import WeakIdKeyDictionary

from app.engine.ledger import Capture

__all__ = ["NodeRecord", "NodeRegistry", "SavedRecord", "is_custom_function"]


@dataclass
class SavedRecord:
    """A tensor a node saved for backward, as it was when the node was created."""

    name: str
    shape: list[int]
    version_saved: int
    tensor: torch.Tensor  # shares the version counter, so version_now stays readable

    @property
    def version_now(self) -> int:
        return self.tensor._version


@dataclass
class NodeRecord:
    """What the explorer knows about one autograd node (a ``grad_fn``)."""

    id: str
    name: str
    node: Any
    shape: list[int] | None = None
    saved: list[SavedRecord] = field(default_factory=list)
    executed: bool = False
    # What the latest backward call did here (kept until the next forward op makes a node).
    ledger: Capture | None = None
    label: str | None = None  # what the lesson calls the node's output, if it has no name
    args: tuple[str, ...] = ()  # what the lesson calls the op's tensor arguments, in order
    line: int | None = None  # the lesson line whose op created the node


_OWN = 1 << 62  # sequence numbers beyond this are the engine's "none" (AccumulateGrad)


def _saved_attrs(node: Any, cache: dict[type, tuple[str, ...]]) -> tuple[str, ...]:
    kind = type(node)
    attrs = cache.get(kind)
    if attrs is None:
        attrs = tuple(a for a in dir(node) if a.startswith("_saved_"))
        cache[kind] = attrs
    return attrs


def is_custom_function(node: Any) -> bool:
    return isinstance(node, torch.autograd.function.BackwardCFunction)


class NodeRegistry:
    """Stable ids and capture-time records for autograd nodes and leaf tensors.

    Ids never come from ``id()``. A function node's id is its creation number in
    the program's thread (``Node._sequence_nr()``, counted from :meth:`begin`), so
    it does not depend on when the explorer first looked at the node: a replay,
    however it is stepped or shown, gives every node the same id. Leaves are
    numbered in the order ops first return or use them. The registry holds the
    node objects it has seen (a Python node wrapper cannot be weakly
    referenced); :meth:`maybe_prune` drops those no longer reachable from scope.
    """

    def __init__(self) -> None:
        self.records: dict[Any, NodeRecord] = {}
        self._leaf_ids: WeakIdKeyDictionary = WeakIdKeyDictionary()
        self._base = 0
        self._counter = itertools.count()
        self._leaf_counter = itertools.count()
        self._saved_attr_cache: dict[type, tuple[str, ...]] = {}
        self._live_after_prune = 0

    def begin(self) -> None:
        """Number nodes from here: call it in the program's thread, before the program."""
        with torch.enable_grad():
            probe = torch.zeros((), requires_grad=True).view(()).grad_fn
        assert probe is not None
        self._base = probe._sequence_nr() + 1

    def leaf_id(self, tensor: torch.Tensor) -> str:
        leaf = self._leaf_ids.get(tensor)
        if leaf is None:
            leaf = f"leaf{next(self._leaf_counter)}"
            self._leaf_ids[tensor] = leaf
        return leaf

    def get(self, node: Any) -> NodeRecord | None:
        return self.records.get(node)

    def add(self, node: Any, shape: list[int] | None = None) -> NodeRecord:
        """Record ``node`` and every unseen node below it; return its record."""
        record = self.records.get(node)
        if record is not None:
            return record
        record = self._capture(node, shape)
        stack = [node]
        while stack:
            current = stack.pop()
            for child, _ in current.next_functions:
                if child is None:
                    continue
                known = self.records.get(child)
                if known is None:
                    self._capture(child, None)
                    stack.append(child)
                else:
                    # A new forward consumes this node again (an AccumulateGrad
                    # shared across iterations): it has not run for this graph.
                    known.executed = False
        return record

    def _capture(self, node: Any, shape: list[int] | None) -> NodeRecord:
        if hasattr(node, "variable"):
            node_id = "acc:" + self.leaf_id(node.variable)
        else:
            number = node._sequence_nr() - self._base
            # A node made in another thread (CUDA's backward with create_graph) has a
            # number from that thread's count: it gets one of its own kind instead.
            node_id = f"n{number}" if 0 <= number < _OWN else f"m{next(self._counter)}"
        record = NodeRecord(id=node_id, name=node.name(), node=node, shape=shape)
        record.saved = list(self._saved(node))
        self.records[node] = record
        return record

    def _saved(self, node: Any) -> Iterator[SavedRecord]:
        if is_custom_function(node):
            for i, tensor in enumerate(node.saved_tensors):
                yield SavedRecord(
                    f"saved_tensors[{i}]", list(tensor.shape), tensor._version, tensor
                )
            return
        for attr in _saved_attrs(node, self._saved_attr_cache):
            value = getattr(node, attr)
            name = attr[len("_saved_") :]
            if isinstance(value, torch.Tensor):
                yield SavedRecord(name, list(value.shape), value._version, value)
            elif isinstance(value, tuple | list):
                for i, item in enumerate(value):
                    if isinstance(item, torch.Tensor):
                        yield SavedRecord(f"{name}[{i}]", list(item.shape), item._version, item)

    def maybe_prune(self, roots: Callable[[], Iterable[Any]]) -> None:
        """Forget nodes unreachable from ``roots()``, amortised over additions."""
        if len(self.records) <= 2 * self._live_after_prune + 64:
            return
        reachable: set[Any] = set()
        stack = list(roots())
        while stack:
            node = stack.pop()
            if node is None or node in reachable:
                continue
            reachable.add(node)
            stack.extend(child for child, _ in node.next_functions)
        self.records = {n: r for n, r in self.records.items() if n in reachable}
        self._live_after_prune = len(self.records)
