"""Every error answers `{"detail": "<a sentence a user can act on>"}`.

Routes raise the engine's own exceptions; the handlers here map each to its status
once, and `responses(...)` declares those statuses in the OpenAPI schema.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import redis.exceptions
from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError, ResponseValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from app.api.middleware import SECURITY_HEADERS
from app.api.schemas import MAX_COUNT, STEP_KINDS, Error
from app.engine.graph import GraphFreedError
from app.engine.hosts import (
    MALFORMED,
    CpuSpent,
    HostDied,
    ProgramFailed,
    ProgramStuck,
    SessionBusy,
)
from app.engine.records import BadRecord
from app.engine.render import GraphTooLarge, RenderError
from app.engine.session import StepUnavailable
from app.engine.store import TooManySessions, UnknownSession
from app.lessons.config import ConfigError
from app.lessons.registry import EditError

__all__ = ["error_response", "install_error_handlers", "responses", "validation_detail"]

# What each request field must be, for 422 answers about it.
_RULES = {
    "by": f"must be one of {', '.join(STEP_KINDS)}",
    "count": f"must be an integer between 1 and {MAX_COUNT}",
    "cursor": "must be an integer of at least 0",
    "lesson": "must be a lesson id (a string; see GET /api/lessons)",
    "config": 'must be a JSON object of settings, such as {"iterations": 20}',
    "style": "must be explorer or torchviz",
}


def error_response(
    status_code: int,
    detail: str,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    return JSONResponse({"detail": detail, **extra}, status_code=status_code, headers=headers)


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for these error statuses, plus 400 (a refused Host header, an
    unreadable body) and 422, which any route can answer."""
    return {
        code: {"model": Error, "description": HTTPStatus(code).phrase}
        for code in (status.HTTP_400_BAD_REQUEST, status.HTTP_422_UNPROCESSABLE_CONTENT, *codes)
    }


def validation_detail(errors: Sequence[Any]) -> str:
    """Turn pydantic's error list into one sentence, naming each field and its rule."""
    parts: list[str] = []
    for error in errors:
        part = _describe(error)
        if part not in parts:
            parts.append(part)
    return "; ".join(parts) or "the request is not valid"


def _describe(error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    loc = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path")]
    if kind == "json_invalid":
        return f"the request body is not valid JSON ({error.get('ctx', {}).get('error', kind)})"
    if not loc:
        if kind == "missing":
            return "the request body is missing: send a JSON object"
        return "the request body must be a JSON object"
    field = ".".join(loc)
    if kind == "extra_forbidden":
        return f"{field}: is not a field of this request"
    if kind == "missing":
        return f"{field}: is required and {_RULES.get(field, 'missing')}"
    if field in _RULES:
        return f"{field}: {_RULES[field]}"
    return f"{field}: {str(error.get('msg', 'is not valid')).lower()}"


_FASTAPI_BODY_ERROR = "There was an error parsing the body"


def _body_error(cause: BaseException | None) -> str:
    """Say why json.loads refused a body that FastAPI could not parse."""
    if isinstance(cause, RecursionError):
        return "the request body is not valid JSON here: it is nested too deeply"
    if isinstance(cause, ValueError) and "digits" in str(cause):
        return "the request body holds a number with too many digits (over 4300)"
    return "the request body is not valid JSON (it must be UTF-8 text)"


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(status.HTTP_422_UNPROCESSABLE_CONTENT, validation_detail(exc.errors()))


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    detail = exc.detail
    if exc.status_code == status.HTTP_400_BAD_REQUEST and detail == _FASTAPI_BODY_ERROR:
        # FastAPI's answer to a body json.loads raised on: as invalid as broken JSON.
        return error_response(status.HTTP_422_UNPROCESSABLE_CONTENT, _body_error(exc.__cause__))
    if exc.status_code == status.HTTP_404_NOT_FOUND and detail == "Not Found":
        detail = f"nothing is served at {request.url.path}; the API is described at /docs"
    elif exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
        allowed = (exc.headers or {}).get("Allow", "")
        detail = f"{request.method} is not allowed on {request.url.path}; use {allowed}"
    return error_response(exc.status_code, str(detail), headers=exc.headers)


# Engine exceptions carry their own sentence; this gives each its status.
_STATUS: dict[type[Exception], int] = {
    UnknownSession: status.HTTP_404_NOT_FOUND,
    ConfigError: status.HTTP_422_UNPROCESSABLE_CONTENT,
    EditError: status.HTTP_422_UNPROCESSABLE_CONTENT,
    GraphTooLarge: status.HTTP_422_UNPROCESSABLE_CONTENT,
    GraphFreedError: status.HTTP_409_CONFLICT,
    BadRecord: status.HTTP_409_CONFLICT,
    SessionBusy: status.HTTP_409_CONFLICT,
    StepUnavailable: status.HTTP_409_CONFLICT,
    ProgramStuck: status.HTTP_422_UNPROCESSABLE_CONTENT,
    ProgramFailed: status.HTTP_422_UNPROCESSABLE_CONTENT,
    TooManySessions: status.HTTP_429_TOO_MANY_REQUESTS,
    CpuSpent: status.HTTP_429_TOO_MANY_REQUESTS,
    HostDied: status.HTTP_503_SERVICE_UNAVAILABLE,
    RenderError: status.HTTP_503_SERVICE_UNAVAILABLE,  # RenderTimeout too
}


async def _on_engine_error(request: Request, exc: Exception) -> JSONResponse:
    code = next(_STATUS[t] for t in type(exc).__mro__ if t in _STATUS)
    headers = None
    if isinstance(exc, TooManySessions):
        headers = {"Retry-After": str(exc.retry_after_s)}
    elif isinstance(exc, HostDied):
        headers = {"Retry-After": "1"}  # the next request replays the session
    elif code == status.HTTP_503_SERVICE_UNAVAILABLE:
        headers = {"Retry-After": "5"}
    if isinstance(exc, ConfigError):  # every invalid field, for a form to mark them all
        errors = [{"field": field, "detail": detail} for field, detail in exc.errors]
        return error_response(code, str(exc), headers=headers, errors=errors)
    if isinstance(exc, EditError):  # where the source is not Python, for an editor to mark
        return error_response(code, str(exc), line=exc.line, column=exc.column)
    return error_response(code, str(exc), headers=headers)


async def _on_store_unreachable(request: Request, exc: Exception) -> JSONResponse:
    detail = "the session store (Redis) cannot be reached right now; try again in a moment"
    return error_response(status.HTTP_503_SERVICE_UNAVAILABLE, detail, headers={"Retry-After": "5"})


async def _on_bad_answer(request: Request, exc: Exception) -> JSONResponse:
    """An answer of a session's host that is no valid response: a host that ran edited
    code is untrusted (its program may rewrite what it sends). End it; the next request
    replays the session in a new one."""
    session_id = request.path_params.get("session_id")
    if not isinstance(session_id, str):
        return await _on_unexpected(request, exc)
    await run_in_threadpool(request.app.state.store.hosts.kill, session_id)
    return error_response(
        status.HTTP_503_SERVICE_UNAVAILABLE, MALFORMED, headers={"Retry-After": "1"}
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # NOTE: Starlette answers this from outside every middleware, so the security
    # headers are added here; the exception itself is logged by Starlette.
    detail = "the server failed unexpectedly; the error is logged for its operator to fix"
    return error_response(
        status.HTTP_500_INTERNAL_SERVER_ERROR, detail, headers=dict(SECURITY_HEADERS)
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the JSON error answers on `app`."""
    app.add_exception_handler(Exception, _on_unexpected)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(ResponseValidationError, _on_bad_answer)
    app.add_exception_handler(HTTPException, _on_http)
    for exc_type in _STATUS:
        app.add_exception_handler(exc_type, _on_engine_error)
    for exc_type in (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
        app.add_exception_handler(exc_type, _on_store_unreachable)
