"""The Graph data of DESIGN.md §5: plain dicts, walked once, rendered elsewhere."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

from app.engine.naming import TensorNames, storage_key
from app.engine.nodes import NodeRecord
from app.engine.snapshot import scope_tensors

if TYPE_CHECKING:
    from app.engine.tracer import Run

__all__ = ["GraphFreedError", "autograd_graph", "build_graph", "static_graph", "torchviz_dot"]


def _function_node(
    record: NodeRecord, names: TensorNames, changed_at: Mapping[Any, int]
) -> dict[str, Any]:
    ledger = record.ledger.ledger() if record.ledger is not None else None
    freed = record.executed and not record.id.startswith("acc:")
    return {
        "id": record.id,
        "kind": "function",
        "name": record.name,
        "shape": record.shape,
        "saved": [
            {
                "name": s.name,
                "shape": s.shape,
                "version_saved": s.version_saved,
                "version_now": s.version_now,
                # Backward fails on a saved tensor changed since it was saved; one whose
                # node already ran was freed, and a later change harms nothing.
                "stale": not record.executed and s.version_now != s.version_saved,
                "freed": freed,
                "of": names.of_tensor(s.tensor),
                # the op event that changed it since it was saved (see it: seek there)
                "changed_at": changed_at.get(storage_key(s.tensor))
                if s.version_now != s.version_saved
                else None,
            }
            for s in record.saved
        ],
        "executed": record.executed,
        "tensors": [],
        "grad_inputs": ledger["grad_inputs"] if ledger else [],
        "grad_outputs": ledger["grad_outputs"] if ledger else [],
        "ledger": ledger,
        "line": record.line,
        "label": record.label,
    }


def _tensor_node(node_id: str, kind: str, name: str, tensor: torch.Tensor) -> dict[str, Any]:
    return {
        "id": node_id,
        "kind": kind,
        "name": name,
        "shape": list(tensor.shape),
        "saved": [],
        "executed": False,
        "tensors": [name],
    }


def autograd_graph(run: Run) -> dict[str, Any]:
    """The autograd graph below every tensor in scope and every node the current line
    created so far, from the capture-time records."""
    registry = run.registry
    tensors = scope_tensors(run)
    names = TensorNames(tensors)
    nodes: dict[str, dict[str, Any]] = {}
    edges: list[dict[str, str]] = []
    seen: set[Any] = set()
    by_tensor: dict[int, str] = {}

    def visit(root: Any) -> None:
        stack = [root]
        while stack:
            fn = stack.pop()
            if fn in seen:
                continue
            seen.add(fn)
            record = registry.add(fn)
            nodes[record.id] = _function_node(record, names, run.changed_at)
            if hasattr(fn, "variable"):
                leaf = fn.variable
                leaf_id = registry.leaf_id(leaf)
                if leaf_id not in nodes:
                    nodes[leaf_id] = _tensor_node(leaf_id, "leaf", "leaf", leaf)
                edges.append({"source": leaf_id, "target": record.id})
            for child, _ in fn.next_functions:
                if child is not None:
                    edges.append({"source": registry.add(child).id, "target": record.id})
                    stack.append(child)

    for name, tensor in tensors.items():
        if not isinstance(tensor, torch.Tensor) or not tensor.requires_grad:
            continue
        if id(tensor) in by_tensor:
            continue
        if tensor.grad_fn is None:
            leaf_id = registry.leaf_id(tensor)
            by_tensor[id(tensor)] = leaf_id
            nodes[leaf_id] = _tensor_node(leaf_id, "leaf", name, tensor)
        else:
            visit(tensor.grad_fn)
            fn_id = registry.add(tensor.grad_fn).id
            nodes[fn_id]["tensors"].append(name)
            by_tensor[id(tensor)] = fn_id

    # The nodes the current line's ops created before it binds their results to names:
    # the graph grows op by op, and an op event's node is always there to focus.
    for record in run.line_nodes:
        visit(record.node)

    # Leaves reached only through AccumulateGrad get their scope name.
    for name, tensor in tensors.items():
        if isinstance(tensor, torch.Tensor) and tensor.requires_grad and tensor.grad_fn is None:
            node = nodes.get(registry.leaf_id(tensor))
            if node is not None and node["name"] == "leaf":
                node["name"] = name
                node["tensors"] = [name]

    # An output node for each tensor whose grad_fn nothing in the graph consumes.
    consumed = {e["source"] for e in edges}
    for name, tensor in tensors.items():
        if not isinstance(tensor, torch.Tensor) or tensor.grad_fn is None:
            continue
        fn_id = registry.add(tensor.grad_fn).id
        if fn_id in consumed:
            continue
        consumed.add(fn_id)
        # The node that made it is part of its id: a name rebound to another node's
        # result (an in-place op rebases h onto its own node) is another output node.
        out_id = f"out:{name}@{fn_id}"
        nodes[out_id] = _tensor_node(out_id, "output", name, tensor)
        edges.append({"source": fn_id, "target": out_id})

    # What each function node holds (its saved tensors) and accumulates into (its leaf),
    # besides what it produced: the variables a view links to it.
    for node in nodes.values():
        if node["kind"] != "function":
            continue
        held = [saved["of"] for saved in node["saved"] if saved["of"]]
        if node["id"].startswith("acc:"):
            leaf = nodes.get(node["id"].removeprefix("acc:"))
            held += leaf["tensors"] if leaf is not None else []
        node["tensors"] += [name for name in dict.fromkeys(held) if name not in node["tensors"]]

    out_degree: dict[str, int] = {}
    for edge in edges:
        out_degree[edge["source"]] = out_degree.get(edge["source"], 0) + 1
    for node in nodes.values():
        if node["id"].startswith("acc:"):
            # Gradients the AccumulateGrad receives in one pass: one per use of the leaf.
            node["grad_count"] = out_degree.get(node["id"], 0)

    focus = run.node.id if run.node is not None and run.node.id in nodes else None
    kind = "autograd" if nodes else "none"
    return {"kind": kind, "nodes": list(nodes.values()), "edges": edges, "focus": focus}


_UPDATE_OPS = frozenset({"mul", "sub", "add", "div", "sub_", "add_", "mul_"})


def _roles(graph: torch.fx.Graph) -> dict[str, str]:
    """What each op of a captured training step does: ``forward`` (the loss depends on
    it), ``update`` (the arithmetic that turns a gradient into new parameters: the ops
    the step returns and their scalar-scaled inputs), ``gradient`` (the rest: the
    backward pass that make_fx traced)."""
    output = next((n for n in graph.nodes if n.op == "output"), None)
    calls = [n for n in graph.nodes if n.op in ("call_function", "call_method")]
    if output is None:
        return {n.name: "forward" for n in calls}
    first = output.args[0] if output.args else ()
    values = first if isinstance(first, tuple | list) else [first]
    returned = [n for n in values if isinstance(n, torch.fx.Node)]

    def scalar(node: torch.fx.Node) -> bool:
        value = node.meta.get("val")
        return isinstance(value, torch.Tensor) and value.dim() == 0

    # The loss: the scalar the step returns (all returned values when none is).
    losses = [n for n in returned if scalar(n)] or returned
    forward: set[str] = set()
    stack = list(losses)
    while stack:
        node = stack.pop()
        if node.name in forward:
            continue
        forward.add(node.name)
        stack.extend(node.all_input_nodes)

    def op_name(node: torch.fx.Node) -> str:
        target = node.target
        packet = getattr(target, "_overloadpacket", None)
        return str(getattr(packet or target, "__name__", target))

    update: set[str] = set()
    stack = [n for n in returned if n.name not in forward and n.op != "placeholder"]
    while stack:
        node = stack.pop()
        if node.name in update or node.op not in ("call_function", "call_method"):
            continue
        update.add(node.name)
        for source in node.all_input_nodes:
            scaled = op_name(source) in _UPDATE_OPS and any(
                not isinstance(a, torch.fx.Node) for a in source.args
            )
            users_update = all(u.name in update or u is output for u in source.users)
            if source.name not in forward and scaled and users_update:
                stack.append(source)
    return {
        n.name: "forward" if n.name in forward else "update" if n.name in update else "gradient"
        for n in calls
    }


def static_graph(
    module: torch.fx.GraphModule,
    focus: str | None = None,
    executed: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The captured fx graph: placeholders as leaves, calls as functions, the output."""
    kinds = {"placeholder": "leaf", "output": "output"}
    roles = _roles(module.graph)
    nodes = []
    edges = []
    for fx_node in module.graph.nodes:
        meta = fx_node.meta.get("val")
        shape = list(meta.shape) if isinstance(meta, torch.Tensor) else None
        if fx_node.op in ("call_function", "call_method"):
            target = fx_node.target
            name = str(getattr(target, "__name__", target))
            overload = getattr(target, "_overloadpacket", None)
            if overload is not None:
                name = f"aten::{overload.__name__}"
        else:
            name = fx_node.name
        nodes.append(
            {
                "id": f"fx:{fx_node.name}",
                "kind": kinds.get(fx_node.op, "function"),
                "name": name,
                "shape": shape,
                "saved": [],
                "executed": f"fx:{fx_node.name}" in executed,
                "tensors": [fx_node.name],
                "role": roles.get(fx_node.name),
            }
        )
        for source in fx_node.all_input_nodes:
            edges.append({"source": f"fx:{source.name}", "target": f"fx:{fx_node.name}"})
    return {"kind": "static", "nodes": nodes, "edges": edges, "focus": focus}


def build_graph(run: Run) -> dict[str, Any]:
    """The static graph if the lesson captured one, else the autograd graph in scope."""
    for value in run.scope.values():
        if isinstance(value, torch.fx.GraphModule):
            return static_graph(value, run.static_focus, run.static_executed)
    return autograd_graph(run)


class GraphFreedError(Exception):
    """The autograd graph in scope has been run by backward and its buffers freed."""


def torchviz_dot(run: Run) -> str:
    """``torchviz.make_dot`` of the tensors in ``run``'s scope, while their graph is intact
    (GraphFreedError once backward has freed it)."""
    import torchviz

    tensors = scope_tensors(run)
    roots = {
        name: t
        for name, t in tensors.items()
        if isinstance(t, torch.Tensor) and t.grad_fn is not None
    }
    stack = [t.grad_fn for t in roots.values()]
    seen: set[Any] = set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        record = run.registry.get(node)
        if record is not None and record.executed:
            raise GraphFreedError(
                "backward has already run this graph and freed its saved tensors; "
                "step to the next forward pass to draw it with torchviz"
            )
        stack.extend(child for child, _ in node.next_functions)
    params = {
        name: t
        for name, t in tensors.items()
        if isinstance(t, torch.Tensor) and t.requires_grad and t.is_leaf
    }
    return str(torchviz.make_dot(tuple(roots.values()), params=params).source)
