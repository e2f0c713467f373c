"""GET /api/lessons and /api/lessons/{lesson}: the lesson programs and their settings."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, status

from app.api.deps import LimitsDep
from app.api.errors import responses
from app.api.schemas import ConfigCheck, LessonDetail, LessonInfo
from app.lessons.config import ConfigError, resolve_config
from app.lessons.registry import LESSONS, Lesson, get_lesson

__all__ = ["router"]

router = APIRouter(prefix="/api/lessons", tags=["lessons"])


def _info(lesson: Lesson) -> dict[str, Any]:
    return {
        "id": lesson.id,
        "title": lesson.title,
        "summary": lesson.summary,
        "defaults": dict(lesson.defaults),
        "title_zh": lesson.title_zh,
        "summary_zh": lesson.summary_zh,
    }


@router.get("", response_model=list[LessonInfo], response_model_exclude_unset=True)
async def list_lessons() -> list[dict[str, Any]]:
    """List the lessons in the tutorial's order, with their default settings."""
    return [_info(lesson) for lesson in LESSONS.values()]


def _lesson(lesson: str) -> Lesson:
    try:
        return get_lesson(lesson)
    except KeyError:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"there is no lesson {lesson[:64]!r}; the lessons are {', '.join(LESSONS)}",
        ) from None


@router.get(
    "/{lesson}",
    response_model=LessonDetail,
    response_model_exclude_unset=True,
    responses=responses(status.HTTP_404_NOT_FOUND),
)
async def read_lesson(lesson: str) -> dict[str, Any]:
    """Return one lesson: its source (the code that runs), its notes by line and by node name."""
    found = _lesson(lesson)
    notes = {str(line): dict(note) for line, note in found.notes.items()}
    node_notes = {name: dict(note) for name, note in found.node_notes.items()}
    return {**_info(found), "source": found.source, "notes": notes, "node_notes": node_notes}


@router.post(
    "/{lesson}/config",
    response_model=ConfigCheck,
    responses=responses(status.HTTP_404_NOT_FOUND, status.HTTP_413_CONTENT_TOO_LARGE),
)
def check_config(
    lesson: str, limits: LimitsDep, config: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    """Say whether a config (the settings that differ from the defaults) would be accepted.

    Always 200 for a JSON object: a form can check its values as they are typed
    without an error answer, and show `detail` next to `field`.
    """
    try:
        resolved = resolve_config(_lesson(lesson), config, limits=limits)
    except ConfigError as error:
        errors = [{"field": field, "detail": detail} for field, detail in error.errors]
        return {
            "valid": False,
            "config": None,
            "field": error.field,
            "detail": error.message,
            "errors": errors,
        }
    return {"valid": True, "config": resolved, "field": None, "detail": None}
