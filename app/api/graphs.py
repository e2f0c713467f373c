"""The autograd graph of a session: as JSON, as SVG (Graphviz), as DOT."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Response, status

from app.api.deps import SettingsDep, StoreDep
from app.api.errors import responses
from app.api.schemas import Graph
from app.engine.render import to_dot, to_svg

__all__ = ["router"]

router = APIRouter(prefix="/api/sessions", tags=["graphs"])

SVG = "image/svg+xml"
DOT = "text/vnd.graphviz"

_ERRORS = (status.HTTP_404_NOT_FOUND, status.HTTP_503_SERVICE_UNAVAILABLE)


def _text(media_type: str, description: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {"content": {media_type: {"schema": {"type": "string"}}}, "description": description}
    }


@router.get(
    "/{session_id}/graph",
    response_model=Graph,
    response_model_exclude_unset=True,
    responses=responses(*_ERRORS),
)
def read_graph(session_id: str, store: StoreDep) -> dict[str, Any]:
    """Return the autograd graph of everything in scope (or the captured static graph)."""
    return store.graph(session_id)


@router.get(
    "/{session_id}/graph.svg",
    response_class=Response,
    responses={**_text(SVG, "Each node is a <g> whose id is its JSON id."), **responses(*_ERRORS)},
)
def read_graph_svg(session_id: str, store: StoreDep, settings: SettingsDep) -> Response:
    """Draw the graph with Graphviz (each structure is laid out once, then cached)."""
    graph = store.graph(session_id)
    with store.work():
        svg = to_svg(graph, timeout_s=settings.dot_timeout_s, max_nodes=settings.max_graph_nodes)
    return Response(svg, media_type=SVG)


@router.get(
    "/{session_id}/graph.dot",
    response_class=Response,
    responses={
        **_text(DOT, "Graphviz source."),
        **responses(status.HTTP_409_CONFLICT, *_ERRORS),
    },
)
def read_graph_dot(
    session_id: str,
    store: StoreDep,
    settings: SettingsDep,
    style: Literal["explorer", "torchviz"] = "explorer",
) -> Response:
    """Return the graph as DOT; `style=torchviz` gives `torchviz.make_dot`'s drawing,
    which exists only until backward frees the graph (409 after)."""
    if style == "torchviz":
        dot = store.torchviz_dot(session_id)
    else:
        dot = to_dot(store.graph(session_id), max_nodes=settings.max_graph_nodes)
    return Response(dot, media_type=DOT)
