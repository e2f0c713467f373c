"""GET /api/sessions/{id}/tensors/{name}: one variable in detail."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, status

from app.api.deps import StoreDep
from app.api.errors import responses
from app.api.schemas import TensorDetail

__all__ = ["router"]

router = APIRouter(prefix="/api/sessions", tags=["tensors"])


@router.get(
    "/{session_id}/tensors/{name}",
    response_model=TensorDetail,
    response_model_exclude_unset=True,
    responses=responses(status.HTTP_404_NOT_FOUND, status.HTTP_503_SERVICE_UNAVAILABLE),
)
def read_tensor(session_id: str, name: str, store: StoreDep) -> dict[str, Any]:
    """Return a tensor in scope (`w1`, `model.0.weight`, `w1.grad`) with a preview and
    a histogram."""
    try:
        return store.tensor(session_id, name)
    except KeyError:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"no tensor named {name[:64]!r} is in scope at this step; the names are the "
            "keys of the state's variables, with .grad for a gradient",
        ) from None
