"""GET /api/lessons and /api/lessons/{lesson}: the lesson programs and their settings."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, status

from app.api.errors import responses
from app.api.schemas import LessonDetail, LessonInfo
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


@router.get(
    "/{lesson}",
    response_model=LessonDetail,
    response_model_exclude_unset=True,
    responses=responses(status.HTTP_404_NOT_FOUND),
)
async def read_lesson(lesson: str) -> dict[str, Any]:
    """Return one lesson: its source (the code that runs) and its notes by line."""
    try:
        found = get_lesson(lesson)
    except KeyError:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"there is no lesson {lesson[:64]!r}; the lessons are {', '.join(LESSONS)}",
        ) from None
    notes = {str(line): dict(note) for line, note in found.notes.items()}
    return {**_info(found), "source": found.source, "notes": notes}
