"""The page's layout of the graph: stable slots, laid out once per structure.

The page draws the graph itself from this layout and the Graph JSON, so that a
node keeps its place from step to step and can glide to a new one (FLIP). A node's
*slot* is its place in the structure: a signature of what it is (kind, name, line)
and of the slots it takes its inputs from, so the same op of the next iteration (a
new node, a new id) takes the slot of its twin of the previous iteration. While the
previous iteration's nodes are still in scope (until the loss is rebound), the
layout is theirs: a new node fills its twin's slot (the twin is hidden), and a node
with no twin (the dynamic net grew deeper) is placed beside the laid-out structure,
so that nothing laid out moves before the iteration's graph is complete. Where the
session's host could look the iteration ahead on a copy of its program (a fork: see
``Session.ahead``), that structure is laid out instead, from the iteration's first node
on: then nothing moves within any iteration, the first and the dynamic net's included.

:func:`layout` gives places for the iteration's whole structure (``dot -Tplain``, one
run per structure, in-process through libgvc where it loads), kept while that
structure stands.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.engine.render import GraphTooLarge, _clean, _run_dot, _shape

__all__ = ["EDGE_FONT_PX", "NODE_FONT_PX", "cache_clear", "layout", "node_label", "structure"]

#: Text sizes the page draws with (SVG user units, 1 unit = 1 CSS px at zoom 1).
NODE_FONT_PX = 14
EDGE_FONT_PX = 12
_CHAR_W = 0.6 * NODE_FONT_PX  # a monospace advance
_LINE_H = 1.25 * NODE_FONT_PX
_PAD_X, _PAD_Y = 10.0, 6.0
#: Room kept on every edge for its label: a shape or a gradient norm (≤ 12 chars).
_EDGE_LABEL = "0" * 12
_LAYOUT_DEFAULTS = (
    "graph [ranksep=0.3 nodesep=0.25 margin=0]\n"
    '  node [shape=box fixedsize=true label=""]\n'
    f'  edge [fontsize={EDGE_FONT_PX} fontname=monospace label="{_EDGE_LABEL}"]'
)


def node_label(node: dict[str, Any]) -> list[str]:
    """The lines the page writes in a node (the same as graph.svg's label)."""
    kind, name = node["kind"], _clean(str(node["name"]))
    if kind == "function":
        lines = [name.removeprefix("torch::autograd::")]
        if (node.get("grad_count") or 0) > 1:
            lines.append(f"×{node['grad_count']}")
        return lines
    if node.get("shape") is not None:
        return [name, _shape(node["shape"])]
    return [name]


#: What a node's slot and box depend on (see _signatures and node_label).
_STRUCTURAL = ("id", "kind", "name", "line", "shape", "grad_count")


def structure(graph: dict[str, Any]) -> dict[str, Any]:
    """The part of a Graph its layout depends on: nodes' identities and labels, edges."""
    return {
        "kind": graph.get("kind"),
        "nodes": [{k: n.get(k) for k in _STRUCTURAL} for n in graph.get("nodes") or []],
        "edges": [{"source": e["source"], "target": e["target"]} for e in graph.get("edges") or []],
    }


def _old(node: dict[str, Any]) -> bool:
    """Run by an earlier backward call (ledger gone, buffers freed): a past iteration's."""
    return (
        node["kind"] == "function"
        and bool(node.get("executed"))
        and not node.get("ledger")
        and not str(node["id"]).startswith("acc:")
    )


def _number(node_id: str) -> tuple[int, str]:
    digits = re.sub(r"\D", "", node_id)
    return (int(digits) if digits else -1, node_id)


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _signatures(graph: dict[str, Any]) -> dict[str, str]:
    """Node id -> its structural signature (a digest; the same op of another iteration
    gets the same one)."""
    nodes = {n["id"]: n for n in graph.get("nodes") or []}
    inputs: dict[str, list[str]] = {node_id: [] for node_id in nodes}
    for edge in graph.get("edges") or []:
        if edge["target"] in inputs and edge["source"] in nodes:
            inputs[edge["target"]].append(edge["source"])
    sigs: dict[str, str] = {}

    def sig(node_id: str) -> str:
        # iterative post-order: chains of hundreds of nodes stay off the C stack
        stack = [(node_id, False)]
        while stack:
            current, ready = stack.pop()
            if current in sigs:
                continue
            if not ready:
                stack.append((current, True))
                stack.extend((s, False) for s in inputs[current] if s not in sigs)
                continue
            node = nodes[current]
            if node["kind"] == "output":
                text = f"out|{node['name']}"
            elif graph.get("kind") == "static":
                text = f"static|{current}"
            else:
                parts = [node["kind"], str(node["name"]), str(node.get("line")), str(node["shape"])]
                if node["kind"] != "leaf" or not inputs[current]:
                    parts += [sigs[s] for s in inputs[current]]
                text = "|".join(parts)
            sigs[current] = _digest(text)
        return sigs[node_id]

    for node_id in nodes:
        sig(node_id)
    return sigs


def _size(lines: list[str]) -> tuple[float, float]:
    width = max(len(line) for line in lines) * _CHAR_W + 2 * _PAD_X
    return round(max(width, 40.0), 1), round(len(lines) * _LINE_H + 2 * _PAD_Y, 1)


#: Structures up to this many nodes and edges are laid out in-process (libgvc).
_IN_PROCESS_MAX = 400


class _LibGvc:
    """Graphviz's library in this process: a layout without starting ``dot``.

    NOTE: starting ``dot`` costs ~15 ms on a busy machine, more than laying out a
    lesson's graph (~4 ms); a layout miss sits on a step's critical path, so small
    structures (our own DOT: fixed-size boxes, no user text) are laid out here, one at
    a time (libgvc is not thread-safe). Anything that goes wrong falls back to ``dot``,
    which keeps its timeout; the SVG endpoint always uses ``dot``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lib: Any = None
        self._graph: Any = None
        self._context: Any = None
        self._failed = False

    def _load(self) -> bool:
        import ctypes
        import ctypes.util

        gvc_name, cgraph_name = ctypes.util.find_library("gvc"), ctypes.util.find_library("cgraph")
        if not gvc_name or not cgraph_name:
            return False
        gvc, cgraph = ctypes.CDLL(gvc_name), ctypes.CDLL(cgraph_name)
        pointer, text = ctypes.c_void_p, ctypes.c_char_p
        gvc.gvContext.restype = pointer
        cgraph.agmemread.restype = pointer
        cgraph.agmemread.argtypes = [text]
        gvc.gvLayout.argtypes = [pointer, pointer, text]
        gvc.gvRenderData.argtypes = [
            pointer,
            pointer,
            text,
            ctypes.POINTER(pointer),
            ctypes.POINTER(ctypes.c_uint),
        ]
        gvc.gvFreeRenderData.argtypes = [pointer]
        gvc.gvFreeLayout.argtypes = [pointer, pointer]
        cgraph.agclose.argtypes = [pointer]
        context = gvc.gvContext()
        if not context:
            return False
        self._lib, self._graph, self._context = gvc, cgraph, context
        return True

    def plain(self, source: str) -> str | None:
        """``dot -Tplain`` of ``source``, or None when the library cannot do it here."""
        import ctypes

        with self._lock:
            if self._failed:
                return None
            try:
                if self._lib is None and not self._load():
                    self._failed = True
                    return None
                gvc, cgraph = self._lib, self._graph
                graph = cgraph.agmemread(source.encode("utf-8"))
                if not graph:
                    return None
                try:
                    if gvc.gvLayout(self._context, graph, b"dot") != 0:
                        return None
                    data, length = ctypes.c_void_p(), ctypes.c_uint()
                    status = gvc.gvRenderData(
                        self._context, graph, b"plain", ctypes.byref(data), ctypes.byref(length)
                    )
                    if status != 0 or not data:
                        return None
                    text = ctypes.string_at(data, length.value).decode("utf-8", "replace")
                    gvc.gvFreeRenderData(data)
                    gvc.gvFreeLayout(self._context, graph)
                    return text
                finally:
                    cgraph.agclose(graph)
            except OSError:
                self._failed = True
                return None


_LIBGVC = _LibGvc()


class _LayoutLRU:
    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.hits = self.misses = 0

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.hits = self.misses = 0

    def get(self, key: str, timeout_s: float) -> dict[str, Any]:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return found
            self.misses += 1
        text = (
            _LIBGVC.plain(key) if key.count("->") + key.count("[width") <= _IN_PROCESS_MAX else None
        )
        if text is None:
            stdout, _ = _run_dot(["-Tplain"], key.encode("utf-8"), timeout_s)
            text = stdout.decode("utf-8", "replace")
        parsed = _parse_plain(text)
        with self._lock:
            self._entries[key] = parsed
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)
        return parsed


_LAYOUTS = _LayoutLRU(maxsize=256)


def _parse_plain(text: str) -> dict[str, Any]:
    """``dot -Tplain``: positions in points, y down (the page's SVG coordinates)."""
    nodes: dict[str, list[float]] = {}
    edges: list[dict[str, Any]] = []
    height = width = 0.0
    for line in text.splitlines():
        parts = shlex.split(line)
        if not parts:
            continue
        if parts[0] == "graph":
            width, height = float(parts[2]) * 72, float(parts[3]) * 72
        elif parts[0] == "node":
            x, y, w, h = (float(v) * 72 for v in parts[2:6])
            nodes[parts[1]] = [round(x, 1), round(height - y, 1), round(w, 1), round(h, 1)]
        elif parts[0] == "edge":
            count = int(parts[3])
            coords = [float(v) * 72 for v in parts[4 : 4 + 2 * count]]
            points = [
                [round(coords[i], 1), round(height - coords[i + 1], 1)]
                for i in range(0, len(coords), 2)
            ]
            rest = parts[4 + 2 * count :]
            label = None
            if len(rest) >= 5:
                label = [round(float(rest[1]) * 72, 1), round(height - float(rest[2]) * 72, 1)]
            edges.append({"tail": parts[1], "head": parts[2], "points": points, "label": label})
    return {"width": round(width, 1), "height": round(height, 1), "nodes": nodes, "edges": edges}


def _spline(points: list[list[float]]) -> str:
    """An SVG path of a Graphviz B-spline (1 + 3n points)."""
    if not points:
        return ""
    d = [f"M{points[0][0]},{points[0][1]}"]
    rest = points[1:]
    for i in range(0, len(rest) - 2, 3):
        (x1, y1), (x2, y2), (x3, y3) = rest[i : i + 3]
        d.append(f"C{x1},{y1} {x2},{y2} {x3},{y3}")
    return "".join(d)


def _clip(source: list[float], target: list[float]) -> tuple[list[float], list[float]]:
    """A straight edge between two boxes' borders, leaving room for the arrowhead."""
    (sx, sy, sw, sh), (tx, ty, tw, th) = source, target
    dx, dy = tx - sx, ty - sy
    length = (dx * dx + dy * dy) ** 0.5 or 1.0

    def border(w: float, h: float) -> float:
        # how far along the unit direction the box's border lies
        fx = (w / 2) / abs(dx / length) if dx else float("inf")
        fy = (h / 2) / abs(dy / length) if dy else float("inf")
        return min(fx, fy)

    a, b = border(sw, sh), border(tw, th) + 10
    ux, uy = dx / length, dy / length
    return (
        [round(sx + a * ux, 1), round(sy + a * uy, 1)],
        [round(tx - b * ux, 1), round(ty - b * uy, 1)],
    )


def _arrow(points: list[list[float]], tip: list[float] | None = None) -> list[list[float]]:
    """An arrowhead triangle at the end of an edge, as Graphviz draws it (10 pt)."""
    (x0, y0), (x1, y1) = points[-2], points[-1]
    dx, dy = x1 - x0, y1 - y0
    length = (dx * dx + dy * dy) ** 0.5 or 1.0
    ux, uy = dx / length, dy / length
    tx, ty = tip if tip is not None else (x1 + 10 * ux, y1 + 10 * uy)
    bx, by = tx - 10 * ux, ty - 10 * uy
    return [
        [round(tx, 1), round(ty, 1)],
        [round(bx - 3.5 * uy, 1), round(by + 3.5 * ux, 1)],
        [round(bx + 3.5 * uy, 1), round(by - 3.5 * ux, 1)],
    ]


def _slot_names(
    nodes: list[dict[str, Any]], sigs: dict[str, str], is_old: Callable[[dict[str, Any]], bool]
) -> tuple[dict[str, str], list[str]]:
    """Each node's slot (twins share one: a past iteration's node gives way to its
    current twin), and the past nodes hidden that way."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for node in nodes:
        groups.setdefault(sigs[node["id"]], []).append(node)
    slot_of: dict[str, str] = {}
    hidden: list[str] = []
    for sig, members in groups.items():
        current = sorted((m["id"] for m in members if not is_old(m)), key=_number)
        old = sorted((m["id"] for m in members if is_old(m)), key=_number)
        for i, member in enumerate(current):
            slot_of[member] = sig if i == 0 else f"{sig}#{i}"
        for i, member in enumerate(old):
            slot_of[member] = sig if i == 0 else f"{sig}#{i}"
            if i < len(current):
                hidden.append(member)
    return slot_of, hidden


@dataclass
class _Slots:
    """The slots' structure: labels, source lines, inputs in order."""

    label: dict[str, list[str]] = field(default_factory=dict)
    line: dict[str, int] = field(default_factory=dict)
    inputs: dict[str, list[str]] = field(default_factory=dict)

    def add(self, graph: dict[str, Any], slot_of: dict[str, str]) -> None:
        """Add ``graph``'s nodes and edges (a slot already described keeps its label)."""
        ids = set(slot_of)
        for node in graph.get("nodes") or []:
            slot = slot_of[node["id"]]
            label = node_label(node)
            if str(node["id"]).startswith("acc:"):
                # room for "×N" (uses of the leaf) whether or not it shows at this step
                label = [label[0], "×00"]
            self.label.setdefault(slot, label)
            self.line.setdefault(slot, int(node.get("line") or 0))
        for edge in graph.get("edges") or []:
            if edge["source"] in ids and edge["target"] in ids:
                ins = self.inputs.setdefault(slot_of[edge["target"]], [])
                if slot_of[edge["source"]] not in ins:
                    ins.append(slot_of[edge["source"]])


def layout(
    graph: dict[str, Any],
    *,
    ahead: dict[str, Any] | None = None,
    timeout_s: float = 5.0,
    max_nodes: int = 400,
) -> dict[str, Any]:
    """Where the page draws each node and edge of ``graph`` (see the note above).

    ``ahead``, the :func:`structure` of the graph as the current iteration will leave
    it (looked ahead on a copy of the program), is the structure laid out, when given:
    then no node moves within the iteration, the first included.

    Returns ``{"key", "width", "height", "nodes": {id: [cx, cy, w, h]}, "hidden": [id],
    "edges": [{"source", "target", "d", "arrow", "label": [x, y]|null}]}`` in SVG
    units, y down. ``key`` names the laid-out structure: the same key, the same places.
    """
    nodes = graph.get("nodes") or []
    if len(nodes) > max_nodes:
        raise GraphTooLarge(f"The graph has {len(nodes)} nodes; at most {max_nodes} can be drawn.")
    if not nodes:
        return {"key": "", "width": 0, "height": 0, "nodes": {}, "hidden": [], "edges": []}
    by_id = {n["id"]: n for n in nodes}
    autograd = graph.get("kind") == "autograd"

    def _is_old(node: dict[str, Any]) -> bool:
        return autograd and _old(node)

    edges = [e for e in graph.get("edges") or [] if e["source"] in by_id and e["target"] in by_id]
    slot_of, hidden = _slot_names(nodes, _signatures(graph), _is_old)
    shown = {m for m in by_id if m not in set(hidden)}
    slots = _Slots()
    ahead_base: set[str] | None = None
    if ahead is not None and autograd and len(ahead.get("nodes") or []) <= max_nodes:
        # Its labels first: the fuller ones (a node's "×N" once backward has run).
        ahead_nodes = ahead.get("nodes") or []
        ahead_slot_of, _ = _slot_names(ahead_nodes, _signatures(ahead), lambda _: False)
        slots.add(ahead, ahead_slot_of)
        ahead_base = {ahead_slot_of[n["id"]] for n in ahead_nodes if n["kind"] != "output"}
    slots.add(graph, slot_of)
    slot_label, slot_line, slot_inputs = slots.label, slots.line, slots.inputs
    # A named result is drawn as an output node only while nothing consumes it: it sits
    # at the right of the node that made it, outside the laid-out structure, so that
    # it appearing or going moves nothing.
    satellites = {
        slot_of[n["id"]]: slot_inputs[slot_of[n["id"]]][0]
        for n in nodes
        if n["kind"] == "output" and slot_inputs.get(slot_of[n["id"]])
    }
    base: set[str]
    if ahead_base is not None:
        base = ahead_base - set(satellites)
    elif any(_is_old(node) for node in nodes):
        # The previous iteration's structure: its nodes and everything they take in.
        base = set()
        stack = [slot_of[m] for m in by_id if _is_old(by_id[m])]
        while stack:
            slot = stack.pop()
            if slot in base:
                continue
            base.add(slot)
            stack.extend(slot_inputs.get(slot, []))
        base -= set(satellites)
    else:
        base = set(slot_label) - set(satellites)
    extras = sorted(
        (s for s in set(slot_of.values()) if s not in base and s not in satellites),
        key=lambda s: min((_number(m) for m in by_id if slot_of[m] == s), default=(1 << 30, s)),
    )

    order = sorted(base, key=lambda s: (slot_line.get(s, 0), s))
    refs = {slot: f"s{i}" for i, slot in enumerate(order)}
    lines = [f"digraph L {{\n  {_LAYOUT_DEFAULTS}"]
    for slot in order:
        w, h = _size(slot_label[slot])
        lines.append(f"  {refs[slot]} [width={w / 72:.4f} height={h / 72:.4f}]")
    for slot in order:
        for source in slot_inputs.get(slot, []):
            if source in refs:
                lines.append(f"  {refs[source]} -> {refs[slot]}")
    lines.append("}")
    key = "\n".join(lines) + "\n"
    placed = _LAYOUTS.get(key, timeout_s)

    boxes: dict[str, list[float]] = {slot: placed["nodes"][refs[slot]] for slot in order}
    width, height = placed["width"], placed["height"]
    # Slots with no place in the laid-out structure: a column at its right, in the
    # order their nodes were made, so that one appearing moves no other.
    x = width + 40.0
    y = 0.0
    column = 0.0
    for slot in extras:
        w, h = _size(slot_label[slot])
        if y + h > max(height, 400.0) and y > 0:
            x += column + 30.0
            y, column = 0.0, 0.0
        boxes[slot] = [round(x + w / 2, 1), round(y + h / 2, 1), w, h]
        y += h + 30.0
        column = max(column, w)
    for slot, producer in satellites.items():
        w, h = _size(slot_label[slot])
        px, py, pw, _ = boxes[producer]
        boxes[slot] = [round(px + pw / 2 + 14 + w / 2, 1), py, w, h]
    if extras or satellites:
        width = max(width, max(b[0] + b[2] / 2 for b in boxes.values()))
        height = max(height, max(b[1] + b[3] / 2 for b in boxes.values()))

    splines: dict[tuple[str, str], dict[str, Any]] = {}
    for edge in placed["edges"]:
        splines.setdefault((edge["tail"], edge["head"]), edge)
    slot_ref = {slot: ref for slot, ref in refs.items()}
    drawn = []
    for edge in edges:
        if edge["source"] not in shown or edge["target"] not in shown:
            continue
        s_slot, t_slot = slot_of[edge["source"]], slot_of[edge["target"]]
        spline = None
        if s_slot in slot_ref and t_slot in slot_ref:
            spline = splines.get((slot_ref[s_slot], slot_ref[t_slot]))
        if spline is not None and len(spline["points"]) >= 2:
            points = spline["points"]
            at = spline["label"]
        else:
            start, end = _clip(boxes[s_slot], boxes[t_slot])
            points = [start, start, end, end]
            at = [round((start[0] + end[0]) / 2, 1), round((start[1] + end[1]) / 2, 1)]
        drawn.append(
            {
                "source": edge["source"],
                "target": edge["target"],
                "d": _spline(points),
                "arrow": _arrow(points),
                "label": at,
            }
        )
    return {
        "key": hashlib.sha1(key.encode()).hexdigest()[:12],
        "width": round(width, 1),
        "height": round(height, 1),
        "nodes": {m: boxes[slot_of[m]] for m in shown},
        "hidden": hidden,
        "edges": drawn,
    }


def cache_clear() -> None:
    """Forget every layout laid out."""
    _LAYOUTS.clear()
