"""Draw the Graph data of DESIGN.md §5 as DOT and SVG, in torchviz's colours.

Function nodes (``AccumulateGrad`` too) are lightgrey boxes, leaf tensors
lightblue, outputs darkolivegreen1 and saved tensors orange, as
``torchviz.make_dot`` draws them; static (fx) graphs use the same colours.
Each node also carries CSS classes (``function|leaf|output|saved`` plus
``executed``, ``stale`` and ``focus``) and, in the SVG, its JSON id as the
``id`` of its ``<g>`` group.

:func:`layout` is what the page draws from instead: places for the iteration's whole
structure (``dot -Tplain``, one run per structure), kept while that structure stands.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import os
import re
import shlex
import shutil
import signal
import subprocess
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, NamedTuple

__all__ = [
    "CacheInfo",
    "GraphTooLarge",
    "RenderError",
    "RenderTimeout",
    "cache_clear",
    "cache_info",
    "dot_version",
    "layout",
    "node_label",
    "to_dot",
    "to_svg",
]


class RenderError(Exception):
    """Graphviz could not draw the graph (missing, crashed, or printed an error)."""


class RenderTimeout(RenderError):
    """``dot`` ran past its timeout and was killed."""


class GraphTooLarge(Exception):
    """The graph has more nodes than may be drawn."""


class CacheInfo(NamedTuple):
    """Layout cache counters: ``misses`` is the number of ``dot`` runs."""

    hits: int
    misses: int
    maxsize: int
    currsize: int


# The attributes torchviz.make_dot gives every node (its `ranksep` there is a no-op).
_NODE_DEFAULTS = (
    "node [style=filled shape=box align=left fontsize=10 height=0.2 fontname=monospace]"
)
_FILL = {
    "function": "lightgrey",
    "leaf": "lightblue",
    "output": "darkolivegreen1",
    "saved": "orange",
}
_BAD_CATEGORIES = frozenset({"Cc", "Cs", "Cn"})  # controls, lone surrogates, non-characters


def _clean(text: str) -> str:
    """``text`` with newlines normalised and characters XML cannot carry replaced."""
    if text.isprintable():
        return text
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    return "".join(
        "\ufffd" if ch != "\n" and unicodedata.category(ch) in _BAD_CATEGORIES else ch
        for ch in text
    )


def _quote(text: str) -> str:
    """A DOT double-quoted string showing ``text`` literally (``text`` already cleaned).

    ``&`` is escaped too: Graphviz decodes HTML entities in labels.
    """
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return '"' + escaped.replace("&", "&amp;") + '"'


def _attr(text: str) -> str:
    """``text`` as an XML attribute value; newlines kept (XML would read them as spaces)."""
    return html.escape(text).replace("\n", "&#10;")


def _shape(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(int(d)) for d in shape) + ")"


@dataclass(frozen=True, slots=True)
class _Model:
    """The graph reduced to what is drawn: structure (positional) and per-node state."""

    name: str  # quoted: the graph's kind
    ids: list[str]
    labels: list[str]  # quoted
    fills: list[str]
    classes: list[str]
    titles: list[str]
    edges: list[tuple[int, int]]
    undirected: list[bool]


def _model(graph: dict[str, Any], max_nodes: int) -> _Model:
    nodes = graph.get("nodes") or []
    if len(nodes) > max_nodes:
        raise GraphTooLarge(f"The graph has {len(nodes)} nodes; at most {max_nodes} can be drawn.")
    focus = graph.get("focus")
    index: dict[str, int] = {}
    ids, kinds, labels, classes, titles = [], [], [], [], []
    for position, node in enumerate(nodes):
        node_id, kind, name = node["id"], node["kind"], _clean(str(node["name"]))
        if node_id in index:
            raise ValueError(f"graph node id {node_id!r} is not unique")
        if kind not in _FILL:
            raise ValueError(f"graph node {node_id!r} has unknown kind {kind!r}")
        index[node_id] = position
        if kind == "function":
            label = name.removeprefix("torch::autograd::")
            grad_count = node.get("grad_count") or 0
            if grad_count > 1:
                label += f"\n×{grad_count}"
        elif node.get("shape") is not None:
            label = f"{name}\n{_shape(node['shape'])}"
        else:
            label = name
        saved = node.get("saved") or []
        stale = any(s.get("stale") for s in saved)
        css = kind
        if node.get("executed"):
            css += " executed"
            if not node.get("ledger") and not str(node_id).startswith("acc:"):
                css += " freed"  # run by an earlier backward call
        if stale:
            css += " stale"
        if node_id == focus:
            css += " focus"
        title = [label]
        for s in saved:
            line = (
                f"saved {_clean(str(s['name']))} {_shape(s['shape'])} version {s['version_saved']}"
            )
            if s.get("stale"):
                line += f", now {s['version_now']} (stale)"
            title.append(line)
        ids.append(_clean(str(node_id)))
        kinds.append(kind)
        labels.append(_quote(label))
        classes.append(css)
        titles.append("\n".join(title))
    edges, undirected = [], []
    for edge in graph.get("edges") or []:
        try:
            source, target = index[edge["source"]], index[edge["target"]]
        except KeyError as exc:
            raise ValueError(f"graph edge {edge!r} names an unknown node") from exc
        edges.append((source, target))
        # torchviz draws a saved tensor's link to its function without an arrow head.
        undirected.append("saved" in (kinds[source], kinds[target]))
    name = _quote(_clean(str(graph.get("kind", "none"))))
    fills = [_FILL[kind] for kind in kinds]
    return _Model(name, ids, labels, fills, classes, titles, edges, undirected)


def _dot(
    model: _Model, refs: Sequence[str], node_extra: Sequence[str], edge_extra: Sequence[str]
) -> str:
    lines = [f"digraph {model.name} {{", "  " + _NODE_DEFAULTS]
    for ref, label, fill, extra in zip(refs, model.labels, model.fills, node_extra, strict=True):
        lines.append(f"  {ref} [label={label} fillcolor={fill} {extra}]")
    for (source, target), undirected, extra in zip(
        model.edges, model.undirected, edge_extra, strict=True
    ):
        arrow = " dir=none" if undirected else ""
        lines.append(f"  {refs[source]} -> {refs[target]} [{extra}{arrow}]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _edge_ids(model: _Model) -> list[str]:
    """``edge:<source>-><target>``, with ``:2``, ``:3``… on repeats (``x * x``)."""
    seen: dict[str, int] = {}
    result = []
    for source, target in model.edges:
        edge_id = f"edge:{model.ids[source]}->{model.ids[target]}"
        count = seen[edge_id] = seen.get(edge_id, 0) + 1
        result.append(edge_id if count == 1 else f"{edge_id}:{count}")
    return result


def _layout_key(model: _Model) -> str:
    """The DOT Graphviz lays out: positional ids, no per-step state; the cache key."""
    refs = [f"c{i}" for i in range(len(model.ids))]
    node_extra = [f'id="{ref}"' for ref in refs]
    edge_extra = [f'id="e{k}"' for k in range(len(model.edges))]
    return _dot(model, refs, node_extra, edge_extra)


def to_dot(graph: dict[str, Any], *, max_nodes: int = 400) -> str:
    """Return the graph as DOT, with its real node ids and CSS classes."""
    model = _model(graph, max_nodes)
    refs = [_quote(node_id) for node_id in model.ids]
    node_extra = [
        f"id={ref} class={_quote(css)}" for ref, css in zip(refs, model.classes, strict=True)
    ]
    edge_extra = [f"id={_quote(edge_id)}" for edge_id in _edge_ids(model)]
    return _dot(model, refs, node_extra, edge_extra)


# -- running dot -------------------------------------------------------------


def _run_dot(args: Sequence[str], source: bytes, timeout_s: float) -> tuple[bytes, bytes]:
    """Run ``dot`` (looked up on PATH now) and return its stdout and stderr."""
    dot = shutil.which("dot")
    if dot is None:
        raise RenderError("Graphviz is not installed: no `dot` on PATH.")
    # NOTE: a session of its own, so that a timeout kills dot and anything it
    # started (a wrapper script's children too), not only the direct child.
    try:
        process = subprocess.Popen(
            [dot, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        raise RenderError(f"Could not start Graphviz's dot: {exc}") from exc
    try:
        stdout, stderr = process.communicate(source, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill(process)
        raise RenderTimeout(f"Graphviz took longer than {timeout_s:g} s and was stopped.") from None
    except BaseException:
        _kill(process)
        raise
    if process.returncode != 0:
        message = stderr.decode("utf-8", "replace").strip()
        raise RenderError(f"Graphviz failed (exit {process.returncode}): {message}")
    return stdout, stderr


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    for pipe in (process.stdin, process.stdout, process.stderr):
        if pipe is not None:
            pipe.close()


def dot_version(*, timeout_s: float = 5.0) -> str:
    """Return ``dot -V`` as printed, e.g. "dot - graphviz version 2.43.0 (0)"."""
    stdout, stderr = _run_dot(["-V"], b"", timeout_s)
    version = (stderr or stdout).decode("utf-8", "replace").strip()
    if not version:
        raise RenderError("`dot -V` printed nothing.")
    return version


# -- the layout cache ----------------------------------------------------------

_PROLOG = re.compile(r"\A.*?(?=<svg\b)", re.S)
_COMMENT = re.compile(r"<!--.*?-->\n?", re.S)
_SLOT = re.compile(r'<g id="([ce])(\d+)" class="(?:node|edge)">\n<title>[^<]*</title>')


@dataclass(frozen=True, slots=True)
class _Template:
    """A laid-out SVG cut at each node's and edge's group head (``<g>`` and ``<title>``)."""

    literals: tuple[str, ...]
    slots: tuple[int, ...]  # node i -> i, edge k -> node count + k

    @classmethod
    def parse(cls, svg: str, nodes: int, edges: int) -> _Template:
        svg = _COMMENT.sub("", _PROLOG.sub("", svg, count=1))
        literals, slots, start = [], [], 0
        for match in _SLOT.finditer(svg):
            literals.append(svg[start : match.start()])
            number = int(match.group(2))
            slots.append(number if match.group(1) == "c" else nodes + number)
            start = match.end()
        literals.append(svg[start:])
        if sorted(slots) != list(range(nodes + edges)):
            raise RenderError("Graphviz's SVG does not contain every node and edge once.")
        return cls(tuple(literals), tuple(slots))

    def fill(self, heads: list[str]) -> str:
        parts = [self.literals[0]]
        for slot, literal in zip(self.slots, self.literals[1:], strict=True):
            parts.append(heads[slot])
            parts.append(literal)
        return "".join(parts)


class _LayoutCache:
    """LRU of laid-out structures; concurrent misses on one key run ``dot`` once."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _Template] = OrderedDict()
        self._pending: dict[str, Future[_Template]] = {}
        self.hits = 0
        self.misses = 0

    def get(self, key: str, model: _Model, timeout_s: float) -> _Template:
        with self._lock:
            template = self._entries.get(key)
            if template is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return template
            pending = self._pending.get(key)
            if pending is None:
                self.misses += 1
                future: Future[_Template] = Future()
                self._pending[key] = future
            else:
                self.hits += 1
        if pending is not None:
            try:
                return pending.result(timeout=timeout_s)
            except TimeoutError:
                raise RenderTimeout(f"Graphviz took longer than {timeout_s:g} s.") from None
        try:
            stdout, _ = _run_dot(["-Tsvg"], key.encode("utf-8"), timeout_s)
            svg = stdout.decode("utf-8", "replace")
            template = _Template.parse(svg, len(model.ids), len(model.edges))
        except BaseException as exc:
            with self._lock:
                del self._pending[key]
            future.set_exception(exc)
            raise
        with self._lock:
            del self._pending[key]
            self._entries[key] = template
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)
        future.set_result(template)
        return template

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.hits = self.misses = 0


_CACHE = _LayoutCache(maxsize=256)


def cache_info() -> CacheInfo:
    """Return the layout cache's counters."""
    with _CACHE._lock:
        return CacheInfo(_CACHE.hits, _CACHE.misses, _CACHE.maxsize, len(_CACHE._entries))


def cache_clear() -> None:
    """Forget every cached layout and reset the counters."""
    _CACHE.clear()
    _LAYOUTS.clear()


def to_svg(graph: dict[str, Any], *, timeout_s: float = 5.0, max_nodes: int = 400) -> str:
    """Return the graph as an inline-ready ``<svg>`` (no XML prolog).

    NOTE: Graphviz lays out each structure once. A later iteration's graph has
    the same ops under new ids, and executed/focus/stale change at every step,
    so the cache key is DOT with positional ids and no state; the real ids,
    classes and titles are written into the cached SVG's group heads.
    """
    model = _model(graph, max_nodes)
    template = _CACHE.get(_layout_key(model), model, timeout_s)
    escape = html.escape
    heads = [
        f'<g id="{_attr(node_id)}" class="node {css}">\n<title>{escape(title)}</title>'
        for node_id, css, title in zip(model.ids, model.classes, model.titles, strict=True)
    ]
    for edge_id, (source, target) in zip(_edge_ids(model), model.edges, strict=True):
        title = escape(f"{model.ids[source]}->{model.ids[target]}")
        heads.append(f'<g id="{_attr(edge_id)}" class="edge">\n<title>{title}</title>')
    return template.fill(heads)


# -- the page's layout: stable slots, laid out once per structure ---------------------
#
# NOTE: the page draws the graph itself from this layout and the Graph JSON, so that a
# node keeps its place from step to step and can glide to a new one (FLIP). A node's
# *slot* is its place in the structure: a signature of what it is (kind, name, line)
# and of the slots it takes its inputs from, so the same op of the next iteration (a
# new node, a new id) takes the slot of its twin of the previous iteration. While the
# previous iteration's nodes are still in scope (until the loss is rebound), the
# layout is theirs: a new node fills its twin's slot (the twin is hidden), and a node
# with no twin (the dynamic net grew deeper) is placed beside the laid-out structure,
# so that nothing laid out moves before the iteration's graph is complete.

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


def layout(
    graph: dict[str, Any], *, timeout_s: float = 5.0, max_nodes: int = 400
) -> dict[str, Any]:
    """Where the page draws each node and edge of ``graph`` (see the note above).

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

    sigs = _signatures(graph)
    edges = [e for e in graph.get("edges") or [] if e["source"] in by_id and e["target"] in by_id]

    # Slots: twins share one; a past iteration's node gives way to its current twin.
    groups: dict[str, list[str]] = {}
    for node in nodes:
        groups.setdefault(sigs[node["id"]], []).append(node["id"])
    slot_of: dict[str, str] = {}
    hidden: list[str] = []
    for sig, members in groups.items():
        current = sorted((m for m in members if not _is_old(by_id[m])), key=_number)
        old = sorted((m for m in members if _is_old(by_id[m])), key=_number)
        for i, member in enumerate(current):
            slot_of[member] = sig if i == 0 else f"{sig}#{i}"
        for i, member in enumerate(old):
            slot_of[member] = sig if i == 0 else f"{sig}#{i}"
            if i < len(current):
                hidden.append(member)
    shown = {m for m in by_id if m not in set(hidden)}

    # The slots' structure: inputs in order, labels, reserved output slots.
    slot_inputs: dict[str, list[str]] = {}
    slot_label: dict[str, list[str]] = {}
    slot_line: dict[str, int] = {}
    for node in nodes:
        slot = slot_of[node["id"]]
        label = node_label(node)
        if str(node["id"]).startswith("acc:"):
            # room for "×N" (uses of the leaf) whether or not it shows at this step
            label = [label[0], "×00"]
        slot_label.setdefault(slot, label)
        slot_line.setdefault(slot, int(node.get("line") or 0))
    for edge in edges:
        source, target = slot_of[edge["source"]], slot_of[edge["target"]]
        ins = slot_inputs.setdefault(target, [])
        if source not in ins:
            ins.append(source)
    # A named result is drawn as an output node only while nothing consumes it: it sits
    # at the right of the node that made it, outside the laid-out structure, so that
    # it appearing or going moves nothing.
    satellites = {
        slot_of[n["id"]]: slot_inputs[slot_of[n["id"]]][0]
        for n in nodes
        if n["kind"] == "output" and slot_inputs.get(slot_of[n["id"]])
    }
    old_present = any(_is_old(node) for node in nodes)
    if old_present:
        # The previous iteration's structure: its nodes and everything they take in.
        base: set[str] = set()
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
        (s for s in slot_label if s not in base and s not in satellites),
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
