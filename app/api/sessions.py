"""Sessions: create one (a lesson run), read its state, step it, seek it, delete it."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response, status
from starlette.concurrency import run_in_threadpool

from app.api.clients import client_of
from app.api.code import edited_code_refusal
from app.api.deps import LimitsDep, SettingsDep, StoreDep
from app.api.errors import responses
from app.api.graphs import ViewQuery, graph_view
from app.api.schemas import (
    CreateSession,
    Gradcheck,
    GradcheckBody,
    SeekBody,
    Source,
    State,
    StepBody,
)
from app.engine.gradcheck import GradcheckError
from app.engine.records import QUOTA, ClientCapReached, Quota
from app.lessons.config import resolve_config
from app.lessons.registry import LESSONS, Lesson, edited, get_lesson

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
    responses=responses(
        status.HTTP_403_FORBIDDEN, _MISSING, status.HTTP_429_TOO_MANY_REQUESTS, *_BUSY, *_BODY
    ),
)
def create_session(
    body: CreateSession, store: StoreDep, limits: LimitsDep, request: Request
) -> dict[str, Any]:
    """Start a run of a lesson, paused before its first line (cursor 0).

    Each client holds at most its caps of sessions (AGX_MAX_SESSIONS_PER_BROWSER, and
    AGX_MAX_SESSIONS_PER_ADDRESS for all of an address's browsers and scripts): one more
    answers 429 naming the cap it hit."""
    try:
        lesson = get_lesson(body.lesson)
    except KeyError:
        raise HTTPException(
            _MISSING,
            f"there is no lesson {body.lesson[:64]!r}; the lessons are {', '.join(LESSONS)}",
        ) from None
    config = resolve_config(lesson, body.config, limits=limits)
    if body.source is not None:
        lesson = _edit(lesson, config, body.source, request)
    settings = request.app.state.settings
    client = client_of(request)
    # NOTE: the records count the client's sessions where they write the new one, in the
    # same atomic step as the server-wide cap (app.engine.records.QUOTA).
    quota = QUOTA.set(
        Quota(
            address=client.address,
            browser=client.browser,
            address_limit=settings.max_sessions_per_address,
            browser_limit=settings.max_sessions_per_browser,
        )
    )
    try:
        return store.create(lesson=lesson, config=config)
    except ClientCapReached as refused:
        # A place comes free when one of them is deleted or expires; ask again in a minute.
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS, str(refused), headers={"Retry-After": "60"}
        ) from None
    finally:
        QUOTA.reset(quota)


def _edit(lesson: Lesson, config: dict[str, Any], source: str, request: Request) -> Lesson:
    """The lesson with the learner's ``source``, if this server runs edited code."""
    refusal = edited_code_refusal(request)
    if refusal is not None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, refusal)
    if config.get("device", "cpu") != "cpu":
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"edited code runs on the CPU only; this config asks for {config['device']}",
        )
    return edited(lesson, source)  # EditError: 422 with the line and column


@router.get(
    "/{session_id}/source",
    response_model=Source,
    responses=responses(_MISSING),
)
def read_source(session_id: str, store: StoreDep) -> dict[str, Any]:
    """Return the program the session runs: the lesson's, or a learner's edit with the
    lines it changed and the notes of those it kept."""
    return store.source(session_id)


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
    session_id: str,
    body: StepBody,
    store: StoreDep,
    settings: SettingsDep,
    request: Request,
    view: ViewQuery = None,
) -> dict[str, Any]:
    """Run `count` steps of kind `by`; a step past the end returns the final state.

    A step stops early, between two events, at its time limit (`AGX_STEP_TIME_S`) or
    when cancelled (also by the client hanging up): `interrupted` then says why and how
    many steps are left; step again to go on. With `?view=graph` the State also carries
    `view`, what GET .../graph/view returns (the page repaints from one round trip)."""

    def step() -> dict[str, Any]:
        state = store.step(session_id, by=body.by, count=body.count)
        if view == "graph":
            state["view"] = graph_view(store, settings, session_id)
        return state

    stepping = asyncio.ensure_future(run_in_threadpool(step))
    while True:
        done, _ = await asyncio.wait({stepping}, timeout=_HANG_UP_CHECK_S)
        if done:
            return stepping.result()
        if await request.is_disconnected():
            await run_in_threadpool(store.cancel, session_id)
            return await stepping


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
def seek_session(
    session_id: str, body: SeekBody, store: StoreDep, settings: SettingsDep, view: ViewQuery = None
) -> dict[str, Any]:
    """Move to any cursor, earlier (replay) or later; past the end gives the final state.
    With `?view=graph` the State also carries `view` (see step)."""
    state = store.seek(session_id, cursor=body.cursor)
    if view == "graph":
        state["view"] = graph_view(store, settings, session_id)
    return state


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
