"""The torch devices usable on this host."""

from __future__ import annotations

import platform
from functools import cache
from pathlib import Path

import torch

# NOTE: pydantic (the API's serialiser) accepts only typing_extensions' TypedDict on 3.11.
from typing_extensions import TypedDict

__all__ = ["Device", "available_devices"]


class Device(TypedDict):
    """A device a lesson can run on: `id` is what `torch.device()` takes."""

    id: str
    name: str


def available_devices() -> list[Device]:
    """Return the CPU, then every CUDA device that can really hold a tensor.

    Probed once per process. CUDA is initialised only when torch reports it available,
    so a CPU host (or a parent process about to fork workers) never touches it.
    """
    return [device.copy() for device in _probe()]


@cache
def _probe() -> tuple[Device, ...]:
    devices: list[Device] = [{"id": "cpu", "name": _cpu_name()}]
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            device_id = f"cuda:{index}"
            try:
                # A device can be listed yet unusable (busy, out of memory, wrong driver).
                torch.zeros(1, device=device_id)
                name = torch.cuda.get_device_name(index)
            except (RuntimeError, AssertionError):
                continue
            devices.append({"id": device_id, "name": name})
    return tuple(devices)


def _cpu_name() -> str:
    # platform.processor() is empty on most Linux systems; /proc/cpuinfo has the model name.
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "CPU"
