"""Run a lesson file plainly: no tracing, no recording, just the program.

Tests and benchmarks compare the explorer against this.
"""

from __future__ import annotations

from types import CodeType

from app.lessons.registry import Lesson, get_lesson

__all__ = ["compile_lesson", "lesson_globals", "run_plain"]


def compile_lesson(lesson: Lesson) -> CodeType:
    """Compile the lesson file, keeping its path so tracebacks and tracers see its lines."""
    return compile(lesson.source, str(lesson.path), "exec")


def lesson_globals(lesson: Lesson, config: dict[str, object]) -> dict[str, object]:
    """Return the fresh globals a lesson runs in: its config values and an empty `losses`.

    `config` is a resolved config; fields it leaves out take the lesson's defaults.
    """
    unknown = sorted(set(config) - set(lesson.fields))
    if unknown:
        raise ValueError(f"not settings of the {lesson.id} lesson: {', '.join(unknown)}")
    values = {field: config.get(field, lesson.defaults[field]) for field in lesson.fields}
    return {"__name__": "__lesson__", **values, "losses": []}


def run_plain(lesson_id: str | Lesson, config: dict[str, object]) -> dict[str, object]:
    """Run a lesson (by id, or a Lesson such as a learner's edit) to the end and return
    its final globals.

    An exception the program raises is not re-raised: it is returned under
    the key "__error__", since some lessons (inplace) end with one on purpose.
    """
    lesson = lesson_id if isinstance(lesson_id, Lesson) else get_lesson(lesson_id)
    namespace = lesson_globals(lesson, config)
    try:
        exec(compile_lesson(lesson), namespace)
    except Exception as error:
        namespace["__error__"] = error
    return namespace
