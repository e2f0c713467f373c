"""The HTTP routers; create_app() includes each one of `api_routers`, in order."""

from fastapi import APIRouter

from app.api import health

__all__ = ["api_routers"]

api_routers: list[APIRouter] = [
    health.router,
]
