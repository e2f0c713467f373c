"""GET /api/devices."""

from __future__ import annotations

from app.engine.devices import available_devices


def test_devices_list_cpu_first_and_only_working_devices(api):
    response = api.get("/api/devices")

    assert response.status_code == 200
    devices = response.json()
    assert devices[0]["id"] == "cpu"
    assert devices == available_devices()
    assert all(device["name"] for device in devices)
