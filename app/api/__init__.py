"""The HTTP routers; create_app() includes each one of `api_routers`, in order."""

from fastapi import APIRouter

from app.api import devices, docs, graphs, health, lessons, pages, sessions, tensors

__all__ = ["api_routers"]

api_routers: list[APIRouter] = [
    health.router,
    lessons.router,
    devices.router,
    sessions.router,
    graphs.router,
    tensors.router,
    docs.router,
    pages.router,
]
