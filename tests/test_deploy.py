"""The Dockerfile and compose.yml agree with the project (no Docker engine needed)."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from app.main import app

ROOT = Path(__file__).resolve().parent.parent
HEALTH_URL = "http://127.0.0.1:8000/healthz"


def dockerfile() -> list[tuple[str, str]]:
    """Return the Dockerfile's (INSTRUCTION, arguments) pairs, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(maxsplit=1)[0].upper(), line.split(maxsplit=1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def instruction(name: str) -> list[str]:
    return [arguments for keyword, arguments in dockerfile() if keyword == name]


def compose_services() -> dict:
    compose = yaml.safe_load((ROOT / "compose.yml").read_text())
    return compose["services"]


def torch_pin() -> str:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = [d for d in pyproject["project"]["dependencies"] if re.match(r"torch\s*==", d)]
    assert len(pins) == 1, "pyproject.toml must pin torch with =="
    return pins[0].split("==")[1].strip()


def test_app_serves_the_health_path_the_deployment_checks():
    assert "/healthz" in app.openapi()["paths"]


def test_image_starts_the_same_app_module_on_the_exposed_port():
    (cmd,) = instruction("CMD")
    command = json.loads(cmd)

    assert "uvicorn" in command[:3]
    assert "app.main:app" in command
    assert "--proxy-headers" in command
    assert command[command.index("--port") + 1] == "8000"
    assert instruction("EXPOSE") == ["8000"]
    assert "uvicorn app.main:app" in (ROOT / "Makefile").read_text()


def test_image_health_check_uses_the_health_path():
    (healthcheck,) = instruction("HEALTHCHECK")

    assert HEALTH_URL in healthcheck


def test_image_installs_from_pyproject_with_the_same_torch_pin():
    args = dict(arg.split("=", 1) for arg in instruction("ARG"))
    runs = " ".join(instruction("RUN"))

    assert args["TORCH_VERSION"] == torch_pin()
    assert args["TORCH_INDEX_URL"].endswith("/cpu")
    assert '"torch==$TORCH_VERSION"' in runs
    assert any("pyproject.toml" in copy for copy in instruction("COPY"))
    assert re.search(r"pip install [^&]*-e \.", runs)
    assert "scripts/install-system-deps.sh graphviz" in runs


def test_image_runs_as_a_non_root_user():
    (user,) = instruction("USER")

    assert user.split(":")[0] not in {"0", "root"}


@pytest.mark.parametrize("service", ["app", "app-gpu"])
def test_compose_service_matches_the_image(service):
    spec = compose_services()[service]
    (env_line,) = [e for e in instruction("ENV") if "AGX_DATA_DIR=" in e]
    image_data_dir = re.search(r"AGX_DATA_DIR=(\S+)", env_line).group(1)
    data_dir = spec["environment"]["AGX_DATA_DIR"]
    volume, _, target = spec["volumes"][0].partition(":")

    assert data_dir == image_data_dir
    assert target == data_dir
    assert volume in yaml.safe_load((ROOT / "compose.yml").read_text())["volumes"]
    assert HEALTH_URL in " ".join(spec["healthcheck"]["test"])
    assert spec["restart"] in {"always", "unless-stopped"}
    assert spec["ports"][0].endswith(":8000")
    assert "command" not in spec, "the start command lives in the Dockerfile only"


def test_compose_gpu_profile_reserves_an_nvidia_device():
    spec = compose_services()["app-gpu"]
    (device,) = spec["deploy"]["resources"]["reservations"]["devices"]

    assert spec["profiles"] == ["gpu"]
    assert device["driver"] == "nvidia"
    assert "gpu" in device["capabilities"]
    assert "/cu" in spec["build"]["args"]["TORCH_INDEX_URL"]
    assert "profiles" not in compose_services()["app"]
