"""Draw the Graph data of DESIGN.md §5 as DOT and SVG, in torchviz's colours.

Function nodes (``AccumulateGrad`` too) are lightgrey boxes, leaf tensors
lightblue, outputs darkolivegreen1 and saved tensors orange, as
``torchviz.make_dot`` draws them; static (fx) graphs use the same colours.
Each node also carries CSS classes (``function|leaf|output|saved`` plus
``executed``, ``stale`` and ``focus``) and, in the SVG, its JSON id as the
``id`` of its ``<g>`` group.

The page draws from :func:`app.engine.layout.layout` instead.
"""

from __future__ import annotations

import contextlib
import html
import os
import re
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
    """Forget every cached SVG layout and reset the counters."""
    _CACHE.clear()


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
