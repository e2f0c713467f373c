"""Sessions: create one (a lesson run), read its state, step it, seek it, delete it."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response, status
from starlette.concurrency import run_in_threadpool

from app.api.deps import LimitsDep, StoreDep
from app.api.errors import responses
from app.api.schemas import CreateSession, Gradcheck, GradcheckBody, SeekBody, State, StepBody
from app.engine.gradcheck import GradcheckError
from app.lessons.config import resolve_config
from app.lessons.registry import LESSONS, get_lesson

__all__ = ["router"]

_HANG_UP_CHECK_S = 0.25  # how often a running step looks for its client hanging up

router = APIRouter(prefix="/api/sessions", tags=["sessions"])

# A busy session's queue is full (409); its host died and is replayed (503, once).
_BUSY = (status.HTTP_409_CONFLICT, status.HTTP_503_SERVICE_UNAVAILABLE)
_MISSING = status.HTTP_404_NOT_FOUND
_BODY = (status.HTTP_413_CONTENT_TOO_LARGE, status.HTTP_415_UNSUPPORTED_MEDIA_TYPE)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=State,
    response_model_exclude_unset=True,
    responses=responses(_MISSING, status.HTTP_429_TOO_MANY_REQUESTS, *_BUSY, *_BODY),
)
def create_session(body: CreateSession, store: StoreDep, limits: LimitsDep) -> dict[str, Any]:
    """Start a run of a lesson, paused before its first line (cursor 0)."""
    try:
        lesson = get_lesson(body.lesson)
    except KeyError:
        raise HTTPException(
            _MISSING,
            f"there is no lesson {body.lesson[:64]!r}; the lessons are {', '.join(LESSONS)}",
        ) from None
    config = resolve_config(lesson, body.config, limits=limits)
    return store.create(lesson=lesson, config=config)


@router.get(
    "/{session_id}",
    response_model=State,
    response_model_exclude_unset=True,
    responses=responses(_MISSING, *_BUSY),
)
def read_session(session_id: str, store: StoreDep) -> dict[str, Any]:
    """Return where the session is."""
    return store.state(session_id)


@router.post(
    "/{session_id}/step",
    response_model=State,
    response_model_exclude_unset=True,
    responses=responses(_MISSING, status.HTTP_429_TOO_MANY_REQUESTS, *_BUSY, *_BODY),
)
async def step_session(
    session_id: str, body: StepBody, store: StoreDep, request: Request
) -> dict[str, Any]:
    """Run `count` steps of kind `by`; a step past the end returns the final state.

    A step stops early, between two events, at its time limit (`AGX_STEP_TIME_S`) or
    when cancelled (also by the client hanging up): `interrupted` then says why and how
    many steps are left; step again to go on."""
    step = asyncio.ensure_future(
        run_in_threadpool(store.step, session_id, by=body.by, count=body.count)
    )
    while True:
        done, _ = await asyncio.wait({step}, timeout=_HANG_UP_CHECK_S)
        if done:
            return step.result()
        if await request.is_disconnected():
            await run_in_threadpool(store.cancel, session_id)
            return await step


@router.post(
    "/{session_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    response_class=Response,
    responses=responses(_MISSING),
)
def cancel_session(session_id: str, store: StoreDep) -> None:
    """Stop the step in flight, if any, at its next event (its answer then says
    `interrupted.reason = "cancelled"`); 202 also when nothing runs."""
    store.cancel(session_id)


@router.post(
    "/{session_id}/seek",
    response_model=State,
    response_model_exclude_unset=True,
    responses=responses(_MISSING, *_BUSY, *_BODY),
)
def seek_session(session_id: str, body: SeekBody, store: StoreDep) -> dict[str, Any]:
    """Move to any cursor, earlier (replay) or later; past the end gives the final state."""
    return store.seek(session_id, cursor=body.cursor)


@router.post(
    "/{session_id}/gradcheck",
    response_model=Gradcheck,
    responses=responses(_MISSING, *_BUSY, *_BODY),
)
def gradcheck_session(session_id: str, body: GradcheckBody, store: StoreDep) -> dict[str, Any]:
    """Compare one element of this iteration's gradient with a central finite difference
    of this iteration's loss (float64); the session does not move."""
    try:
        return store.gradcheck(session_id, body.tensor, body.index)
    except KeyError:
        raise HTTPException(
            _MISSING, f"there is no tensor {body.tensor[:64]!r} in scope at this step"
        ) from None
    except GradcheckError as error:
        raise HTTPException(error.status, error.message) from None


@router.delete(
    "/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=responses(_MISSING, *_BUSY),
)
def delete_session(session_id: str, store: StoreDep) -> None:
    """End the session and forget it."""
    store.delete(session_id)
