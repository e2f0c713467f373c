"""The lessons: their files, config fields and defaults, phases, line notes and node notes.

A lesson file marks phases with tag comments, `# [phase] Free text`: a tag sets
the phase of its own line and every following line until the next tag; lines
before the first tag are `setup`; a tag inside a function body holds only until
that function ends. The one top-level `for t in range(iterations):`
is the training loop; its header line takes the phase of its body's first line.
"""

from __future__ import annotations

import ast
import difflib
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from app.lessons.node_notes import NODE_NOTES
from app.lessons.texts import TEXTS

__all__ = [
    "CONFIG_FIELDS",
    "LESSONS",
    "MAX_SOURCE_BYTES",
    "PHASES",
    "EditError",
    "Lesson",
    "edited",
    "get_lesson",
]

PHASES = ("setup", "forward", "loss", "backward", "update", "zero_grad")

#: Every config field any lesson takes, in display order.
CONFIG_FIELDS = (
    "N",
    "D_in",
    "H",
    "D_out",
    "learning_rate",
    "iterations",
    "device",
    "seed",
    "zero_grad",
    "momentum",
)

_BASE_DEFAULTS: dict[str, object] = {
    "N": 64,
    "D_in": 1000,
    "H": 100,
    "D_out": 10,
    "learning_rate": 1e-6,
    "iterations": 10,
    "device": "cpu",
    "seed": 0,
}
_EXTRA_DEFAULTS: dict[str, object] = {"zero_grad": True, "momentum": 0.9}

_LESSON_DIR = Path(__file__).resolve().parent
_TAG = re.compile(r"^\s*#\s*\[(\w+)\]")


@dataclass(frozen=True, eq=False)
class Lesson:
    """One lesson program and what the explorer needs to know about it."""

    id: str
    title: str
    summary: str
    path: Path
    source: str
    fields: tuple[str, ...]
    defaults: dict[str, object]
    element_size: int
    phases: dict[int, str]
    loop_line: int
    loop_body_line: int
    notes: dict[int, dict[str, str]]
    title_zh: str = ""
    summary_zh: str = ""
    #: What each node of the lesson's graphs does: {node name: {"en", "zh"}} (DESIGN.md §5.1).
    node_notes: dict[str, dict[str, str]] = field(default_factory=dict)
    #: For a learner's edit of a lesson (see `edited`): its lines that differ from the
    #: lesson's, in the edit's numbering; None for the lesson itself.
    changed: tuple[int, ...] | None = None

    @property
    def edited(self) -> bool:
        return self.changed is not None

    @property
    def has_loop(self) -> bool:
        """Has the program the training loop (`for t in range(iterations):`)?"""
        return self.loop_line > 0

    @property
    def has_phases(self) -> bool:
        """Does the program tag its phases (`# [forward]` …)?"""
        return any(phase != "setup" for phase in self.phases.values())


@dataclass(frozen=True)
class _Spec:
    id: str
    extra_fields: tuple[str, ...] = ()
    overrides: dict[str, object] = field(default_factory=dict)
    element_size: int = 4
    nodes: tuple[str, ...] = ()


# The node names each lesson's graphs contain (torch 2.13), written out rather than found
# by running the lessons at import; tests/engine/test_notes.py runs them and checks these.
_ACCUMULATE = "torch::autograd::AccumulateGrad"
_MM_LOSS = (_ACCUMULATE, "MmBackward0", "SubBackward0", "PowBackward0", "SumBackward0")
_CLAMP_NET = (*_MM_LOSS, "ClampBackward1")
_MODULES = (_ACCUMULATE, "AddmmBackward0", "TBackward0", "MseLossBackward0")
_STATIC = tuple(
    f"aten::{op}"
    for op in (
        "mm",
        "clamp",
        "sub",
        "pow",
        "sum",
        "ones_like",
        "expand",
        "mul",
        "t",
        "scalar_tensor",
        "ge",
        "where",
    )
)

# In the tutorial's order (DESIGN.md §3).
_SPECS = (
    _Spec("numpy", element_size=8, nodes=_CLAMP_NET),
    _Spec("tensors"),
    _Spec("autograd", ("zero_grad",), nodes=_CLAMP_NET),
    _Spec("custom_function", ("zero_grad",), nodes=(*_MM_LOSS, "MyReLUBackward")),
    # make_fx traces loss_fn under torch.func.grad_and_value, which records autograd nodes
    # once; afterwards the graph view shows the captured graph's aten ops.
    _Spec("static_graph", nodes=(*_CLAMP_NET, *_STATIC)),
    _Spec("nn", ("zero_grad",), {"learning_rate": 1e-4}, nodes=(*_MODULES, "ReluBackward0")),
    _Spec("optim", ("zero_grad",), {"learning_rate": 1e-4}, nodes=(*_MODULES, "ReluBackward0")),
    _Spec(
        "custom_module",
        ("zero_grad",),
        {"learning_rate": 1e-4, "iterations": 500},
        nodes=(*_MODULES, "ClampBackward1"),
    ),
    _Spec(
        "dynamic_net",
        ("zero_grad", "momentum"),
        {"learning_rate": 1e-4, "iterations": 500, "momentum": 0.9},
        nodes=(*_MODULES, "ClampBackward1"),
    ),
    _Spec(
        "inplace",
        ("zero_grad",),
        nodes=(*_MM_LOSS, "MyReLU_Backward", "SigmoidBackward0", "MulBackward0"),
    ),
)


def _function_scopes(node: ast.AST) -> list[tuple[int, int, list]]:
    """Return (first line, last line, nested scopes) of the function bodies under `node`."""
    scopes = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            end = child.end_lineno or child.lineno
            scopes.append((child.lineno + 1, end, _function_scopes(child)))
        else:
            scopes.extend(_function_scopes(child))
    return sorted(scopes, key=lambda scope: scope[0])


def _phases(
    lesson_id: str, lines: list[str], tree: ast.Module, *, strict: bool = True
) -> dict[int, str]:
    """Map every line to its phase.

    NOTE: a tag inside a function body (a custom Function's `backward`, a
    module's `forward`) holds only until the end of that function, so the lines
    after it go back to the phase around the definition. A custom backward thus
    shows as `backward` when the engine steps into it, while the class that
    defines it stays `setup`.
    """
    tags = {}
    for number, line in enumerate(lines, start=1):
        match = _TAG.match(line)
        if match:
            if match.group(1) in PHASES:
                tags[number] = match.group(1)
            elif strict:  # an edit's unknown tag is just a comment
                raise ValueError(f"lesson {lesson_id}, line {number}: unknown phase tag {line!r}")

    phases: dict[int, str] = {}

    def assign(first: int, last: int, phase: str, scopes: list) -> None:
        number = first
        for start, end, inner in scopes:
            for n in range(number, start):
                phase = tags.get(n, phase)
                phases[n] = phase
            assign(start, end, phase, inner)
            number = end + 1
        for n in range(number, last + 1):
            phase = tags.get(n, phase)
            phases[n] = phase

    assign(1, len(lines), "setup", _function_scopes(tree))
    return phases


def _loops(tree: ast.Module) -> list[ast.For]:
    """The top-level `for t in range(iterations):` loops."""
    return [
        node
        for node in tree.body
        if isinstance(node, ast.For)
        and ast.unparse(node.target) == "t"
        and ast.unparse(node.iter) == "range(iterations)"
    ]


def _training_loop(lesson_id: str, tree: ast.Module) -> ast.For:
    """Return the one top-level `for t in range(iterations):` loop."""
    loops = _loops(tree)
    if len(loops) != 1:
        raise ValueError(
            f"lesson {lesson_id} needs exactly one top-level `for t in range(iterations):`"
            f" loop, found {len(loops)}"
        )
    return loops[0]


def _notes(
    lesson_id: str, lines: list[str], anchored: dict[str, tuple[str, str]]
) -> dict[int, dict[str, str]]:
    """Resolve notes keyed by anchor (a substring of exactly one line) to line numbers."""
    notes: dict[int, dict[str, str]] = {}
    for anchor, (en, zh) in anchored.items():
        hits = [number for number, line in enumerate(lines, start=1) if anchor in line]
        if len(hits) != 1:
            raise ValueError(
                f"note anchor {anchor!r} of lesson {lesson_id} matches {len(hits)} lines, not 1"
            )
        if hits[0] in notes:
            raise ValueError(f"lesson {lesson_id}, line {hits[0]} has two notes")
        notes[hits[0]] = {"en": en, "zh": zh}
    return dict(sorted(notes.items()))


def _node_notes(lesson_id: str, names: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """Return the notes of the nodes a lesson's graphs contain, {name: {"en", "zh"}}."""
    missing = [name for name in names if name not in NODE_NOTES]
    if missing:
        raise ValueError(f"lesson {lesson_id}: no node note for {', '.join(missing)}")
    return {name: {"en": NODE_NOTES[name][0], "zh": NODE_NOTES[name][1]} for name in names}


def _load(spec: _Spec) -> Lesson:
    path = _LESSON_DIR / f"{spec.id}.py"
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    tree = ast.parse(source, filename=str(path))
    loop = _training_loop(spec.id, tree)
    phases = _phases(spec.id, lines, tree)
    phases[loop.lineno] = phases[loop.body[0].lineno]
    fields = tuple(_BASE_DEFAULTS) + spec.extra_fields
    defaults = {**_BASE_DEFAULTS, **{name: _EXTRA_DEFAULTS[name] for name in spec.extra_fields}}
    defaults.update(spec.overrides)
    text = TEXTS[spec.id]
    return Lesson(
        id=spec.id,
        title=text.title,
        summary=text.summary,
        path=path,
        source=source,
        fields=fields,
        defaults=defaults,
        element_size=spec.element_size,
        phases=phases,
        loop_line=loop.lineno,
        loop_body_line=loop.body[0].lineno,
        notes=_notes(spec.id, lines, text.notes),
        title_zh=text.title_zh,
        summary_zh=text.summary_zh,
        node_notes=_node_notes(spec.id, spec.nodes),
    )


LESSONS: dict[str, Lesson] = {spec.id: _load(spec) for spec in _SPECS}

#: The largest edited source accepted (DESIGN.md §5.1), in UTF-8 bytes.
MAX_SOURCE_BYTES = 32 * 1024


class EditError(ValueError):
    """An edited source that cannot run: too long, or not Python (``line``, ``column``:
    where, 1-based, when known)."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None):
        super().__init__(message)
        self.line, self.column = line, column


def edited(lesson: Lesson, source: str) -> Lesson:
    """The lesson with a learner's ``source`` in place of its file.

    The edit keeps the notes of the lines it leaves unchanged (matched by content, so
    that they follow a line moved by an insertion above it) and the phases its tags
    give. It may drop the training loop or the tags: it still runs, and only the steps
    that need them are refused (`Lesson.has_loop`, `Lesson.has_phases`). Raise
    EditError for a source over MAX_SOURCE_BYTES or with a syntax error.
    """
    size = len(source.encode("utf-8", "surrogatepass"))
    if size > MAX_SOURCE_BYTES:
        raise EditError(f"the source is {size} bytes; the most it may be is {MAX_SOURCE_BYTES}")
    path = f"<edited {lesson.id}>"
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as exc:
        message = f"line {exc.lineno}: {exc.msg}" if exc.lineno else str(exc.msg)
        raise EditError(message, exc.lineno, exc.offset) from None
    except ValueError as exc:  # a NUL byte
        raise EditError(f"the source cannot be compiled: {exc}") from None
    lines = source.splitlines()
    phases = _phases(lesson.id, lines, tree, strict=False)
    loops = _loops(tree)
    loop_line = loop_body_line = 0
    if len(loops) == 1:
        loop_line, loop_body_line = loops[0].lineno, loops[0].body[0].lineno
        phases[loop_line] = phases[loop_body_line]
    kept = _unchanged(lesson.source.splitlines(), lines)
    return replace(
        lesson,
        path=Path(path),
        source=source,
        phases=phases,
        loop_line=loop_line,
        loop_body_line=loop_body_line,
        notes={kept[old]: note for old, note in lesson.notes.items() if old in kept},
        changed=tuple(n for n in range(1, len(lines) + 1) if n not in kept.values()),
    )


def _unchanged(before: list[str], after: list[str]) -> dict[int, int]:
    """Map each line of ``before`` that ``after`` keeps unchanged to its new number."""
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    return {
        old + 1 + k: new + 1 + k
        for old, new, size in matcher.get_matching_blocks()
        for k in range(size)
    }


def get_lesson(lesson_id: str) -> Lesson:
    """Return the lesson with this id; raise KeyError for an unknown id."""
    return LESSONS[lesson_id]
