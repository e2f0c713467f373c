"""A lesson as the tracer sees it: its source, phases and the lines that step or not."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from functools import cached_property

from app.engine.naming import ExpressionNames
from app.lessons.registry import Lesson

__all__ = ["LessonProgram", "program_for"]


@dataclass(frozen=True)
class LessonProgram:
    """What the tracer needs to know about a lesson file."""

    path: str
    source: str
    phases: dict[int, str]
    loop_body_line: int
    first_line: int
    static_name: str | None = None  # the global holding a captured fx graph, if any
    # Lines of the training loop's body whose statements change the weights.
    update_lines: frozenset[int] = frozenset()
    # Lines that never stop: the module docstring (nothing to see there).
    quiet_lines: frozenset[int] = frozenset()
    # Each `with` statement's line -> the last line of its body: Python reports the
    # `with` line again when the body ends (to call __exit__), which is no step of its own.
    with_bodies: dict[int, int] = field(default_factory=dict)
    expressions: ExpressionNames | None = None
    # A learner's edit: what it prints is kept (Run.output), bounded.
    edited: bool = False

    @cached_property
    def source_lines(self) -> list[str]:
        return self.source.splitlines()


_PROGRAMS: dict[str, LessonProgram] = {}


def program_for(lesson: Lesson) -> LessonProgram:
    """The tracer's view of a lesson (cached: lessons do not change while serving; a
    learner's edit is made once per session)."""
    program = None if lesson.edited else _PROGRAMS.get(lesson.id)
    if program is None:
        tree = ast.parse(lesson.source)
        program = LessonProgram(
            path=str(lesson.path),
            source=lesson.source,
            phases=dict(lesson.phases),
            loop_body_line=lesson.loop_body_line,
            first_line=_first_step(tree),
            static_name="static_graph" if "make_fx" in lesson.source else None,
            update_lines=_update_lines(tree, lesson),
            quiet_lines=_docstring_lines(tree),
            with_bodies={
                node.lineno: node.body[-1].end_lineno or node.lineno
                for node in ast.walk(tree)
                if isinstance(node, ast.With)
            },
            expressions=ExpressionNames(lesson.source),
            edited=lesson.edited,
        )
        if not lesson.edited:
            _PROGRAMS[lesson.id] = program
    return program


def _docstring_lines(tree: ast.Module) -> frozenset[int]:
    if ast.get_docstring(tree) is None:
        return frozenset()
    first = tree.body[0]
    return frozenset(range(first.lineno, (first.end_lineno or first.lineno) + 1))


def _first_step(tree: ast.Module) -> int:
    """The line of the first statement that is a step (the docstring is none)."""
    quiet = _docstring_lines(tree)
    return next((node.lineno for node in tree.body if node.lineno not in quiet), 1)


def _update_lines(tree: ast.Module, lesson: Lesson) -> frozenset[int]:
    """The simple statements of the training loop's body in the `update` phase."""
    loops = (node for node in tree.body if isinstance(node, ast.For))
    loop = next((node for node in loops if node.lineno == lesson.loop_line), None)
    if loop is None:  # an edit without the training loop
        return frozenset()
    compound = ast.With | ast.For | ast.While | ast.If | ast.Try
    return frozenset(
        node.lineno
        for node in ast.walk(loop)
        if isinstance(node, ast.stmt)
        and not isinstance(node, compound)
        and node is not loop
        and lesson.phases.get(node.lineno) == "update"
    )
