"""available_devices() lists the CPU first and only devices that work."""

from __future__ import annotations

import torch

from app.engine import devices


def test_cpu_comes_first_with_a_name():
    listed = devices.available_devices()

    assert listed[0]["id"] == "cpu"
    assert listed[0]["name"]
    assert all(device["id"].startswith("cuda:") for device in listed[1:])


def test_callers_cannot_change_the_cached_list():
    devices.available_devices()[0]["name"] = "changed"
    devices.available_devices().clear()

    assert devices.available_devices()[0]["name"] != "changed"


def test_cuda_is_not_touched_when_unavailable(monkeypatch):
    def must_not_run(*args, **kwargs):
        raise AssertionError("CUDA was queried although torch.cuda.is_available() is False")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", must_not_run)
    monkeypatch.setattr(torch.cuda, "get_device_name", must_not_run)
    devices._probe.cache_clear()
    try:
        assert [device["id"] for device in devices.available_devices()] == ["cpu"]
    finally:
        devices._probe.cache_clear()
