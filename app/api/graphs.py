"""The autograd graph of a session: as JSON, as SVG (Graphviz), as DOT."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response, status
from pydantic import ValidationError

from app.api.deps import SettingsDep, StoreDep
from app.api.errors import responses
from app.api.schemas import GradElement, Graph, Structure
from app.engine.layout import layout
from app.engine.render import to_dot, to_svg
from app.engine.store import SessionStore
from app.settings import Settings

__all__ = ["ViewQuery", "graph_view", "router"]

#: `?view=graph` on a step or seek: the State also carries the graph and its layout.
ViewQuery = Annotated[
    Literal["graph"] | None,
    Query(description="`graph`: add `view` (what GET .../graph/view returns) to the State."),
]

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


def graph_view(store: SessionStore, settings: Settings, session_id: str) -> dict[str, Any]:
    """The Graph JSON and where the page draws it: ``{"graph": Graph, "layout": ...}``.

    The layout (``app.engine.layout.layout``) gives each node a place kept for as long
    as the iteration's structure stands (looked ahead on a copy of the program where
    the session's host can fork one), so a page that draws from it moves nothing when
    a node appears."""
    source = store.graph_ahead(session_id)
    graph = source["graph"]
    try:  # a host that ran edited code is untrusted, and looks nothing ahead
        ahead = None if source["ahead"] is None else Structure.model_validate(source["ahead"])
    except ValidationError:
        ahead = None
    placed = layout(
        graph,
        ahead=None if ahead is None else ahead.model_dump(),
        timeout_s=settings.dot_timeout_s,
        max_nodes=settings.max_graph_nodes,
    )
    return {"graph": graph, "layout": placed}


@router.get(
    "/{session_id}/graph/view",
    responses=responses(*_ERRORS),
)
def read_graph_view(session_id: str, store: StoreDep, settings: SettingsDep) -> dict[str, Any]:
    """The graph with its layout, as the page draws it: `{"graph": Graph, "layout":
    {"key", "width", "height", "nodes": {id: [cx, cy, w, h]}, "hidden": [id], "edges":
    [{"source", "target", "d", "arrow", "label"}]}}` in SVG units (y down). Nodes keep
    their place while the iteration's structure stands (same `key`); a past iteration's
    node whose twin the current iteration has made is `hidden`."""
    return graph_view(store, settings, session_id)


@router.get(
    "/{session_id}/graph/nodes/{node_id}/grad",
    response_model=GradElement,
    responses=responses(status.HTTP_422_UNPROCESSABLE_CONTENT, *_ERRORS),
)
def read_grad_element(
    session_id: str,
    node_id: str,
    store: StoreDep,
    side: Literal["inputs", "outputs"],
    index: Annotated[list[int], Query(max_length=8)],
    k: int = 0,
) -> dict[str, Any]:
    """Look up any element of a gradient in a node's ledger: `side=inputs` for what it
    sent (`grad_inputs[k]`), `outputs` for what arrived; `index` once per dimension.
    The ledger keeps a top-left block only, so this replays the run to the node."""
    try:
        return store.grad_element(session_id, node_id, side, k, index)
    except KeyError:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"node {node_id[:64]!r} has no ledger at this step: backward has not run it, "
            "or a forward op made a new node since",
        ) from None
    except ValueError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from None


@router.get(
    "/{session_id}/graph.svg",
    response_class=Response,
    responses={**_text(SVG, "Each node is a <g> whose id is its JSON id."), **responses(*_ERRORS)},
)
def read_graph_svg(session_id: str, store: StoreDep, settings: SettingsDep) -> Response:
    """Draw the graph with Graphviz (each structure is laid out once, then cached)."""
    graph = store.graph(session_id)
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
