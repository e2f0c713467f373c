"""GET /api/devices: the devices lessons can run on here."""

from __future__ import annotations

from fastapi import APIRouter

from app.engine.devices import Device, available_devices

__all__ = ["router"]

router = APIRouter(prefix="/api/devices", tags=["devices"])


@router.get("")
def list_devices() -> list[Device]:
    """List the CPU and every CUDA device that works on this host."""
    return available_devices()
