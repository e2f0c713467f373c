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
    makefile = (ROOT / "Makefile").read_text()

    assert "uvicorn" in command[:3]
    assert "app.main:app" in command
    # X-Forwarded-For is the app's to believe (AGX_TRUSTED_PROXIES), not uvicorn's.
    assert "--no-proxy-headers" in command and "--proxy-headers" not in command
    assert command[command.index("--port") + 1] == "8000"
    assert instruction("EXPOSE") == ["8000"]
    assert "uvicorn app.main:app" in makefile
    assert "--no-proxy-headers" in makefile


def test_make_run_and_the_image_answer_loopback_host_names_only_by_default():
    makefile = (ROOT / "Makefile").read_text()
    (env_line,) = [e for e in instruction("ENV") if "AGX_ALLOWED_HOSTS=" in e]
    image_hosts = re.search(r"AGX_ALLOWED_HOSTS=(\S+)", env_line).group(1).split(",")
    make_hosts = re.search(r"^ALLOWED_HOSTS \?= (\S+)$", makefile, re.M).group(1).split(",")

    for hosts in (image_hosts, make_hosts):
        assert "*" not in hosts
        assert set(hosts) <= {"localhost", "127.0.0.1", "::1", "[::1]"}
    assert 'AGX_ALLOWED_HOSTS="$${AGX_ALLOWED_HOSTS:-$(ALLOWED_HOSTS)}"' in makefile


def test_image_health_check_uses_the_health_path():
    (healthcheck,) = instruction("HEALTHCHECK")

    assert HEALTH_URL in healthcheck


def lock(variant: str) -> dict[str, tuple[str, list[str]]]:
    """requirements/<variant>.txt: {name: (exact version, [sha256 hashes])}."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "requirements" / f"{variant}.txt").read_text())
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("--"):
            continue
        requirement, *options = line.split()
        name, version = requirement.split("==")
        hashes = [o.removeprefix("--hash=sha256:") for o in options if o.startswith("--hash=")]
        pins[name.lower().replace("_", "-")] = (version, hashes)
    return pins


def test_image_installs_the_locked_dependencies_then_the_app_without_resolving():
    args = dict(arg.split("=", 1) for arg in instruction("ARG"))
    runs = instruction("RUN")
    install = next(run for run in runs if "requirements/" in run)

    assert args["TORCH_VARIANT"] == "cpu"
    assert "--require-hashes" in install and "--no-deps" in install
    assert '-r "requirements/$TORCH_VARIANT.txt"' in install
    assert any(copy.startswith("requirements/") for copy in instruction("COPY"))
    assert any("pyproject.toml" in copy for copy in instruction("COPY"))
    app_install = next(run for run in runs if re.search(r"pip install [^&]*-e \.", run))
    assert "--no-deps" in app_install and "--no-build-isolation" in app_install
    assert any("scripts/install-system-deps.sh graphviz" in run for run in runs)


@pytest.mark.parametrize(("variant", "torch"), [("cpu", "+cpu"), ("cuda", "")])
def test_lock_files_pin_every_dependency_exactly_with_hashes(variant, torch):
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wanted = [
        re.split(r"[<>=!~\[ ;]", d, maxsplit=1)[0] for d in pyproject["project"]["dependencies"]
    ]
    pins = lock(variant)

    assert pins["torch"][0] == torch_pin() + torch
    for name in [*wanted, "setuptools"]:
        assert name.lower() in pins, f"{variant}.txt lacks {name}"
    for name, (version, hashes) in pins.items():
        assert re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", version), (name, version)
        assert hashes and all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes), name
    # The CPU file names the index of torch's +cpu build; the CUDA one takes PyPI's torch.
    text = (ROOT / "requirements" / f"{variant}.txt").read_text()
    has_cpu_index = "--extra-index-url https://download.pytorch.org/whl/cpu" in text
    assert has_cpu_index == (variant == "cpu")
    assert any(name.startswith("nvidia-") for name in pins) == (variant == "cuda")


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
    assert "ports" not in spec, "clients reach the app through nginx only"
    assert spec["expose"] == ["8000"]
    assert "command" not in spec, "the start command lives in the Dockerfile only"


def test_compose_gpu_profile_reserves_an_nvidia_device_and_installs_the_cuda_lock():
    spec = compose_services()["app-gpu"]
    (device,) = spec["deploy"]["resources"]["reservations"]["devices"]

    assert spec["profiles"] == ["gpu"]
    assert device["driver"] == "nvidia"
    assert "gpu" in device["capabilities"]
    assert (ROOT / "requirements" / f"{spec['build']['args']['TORCH_VARIANT']}.txt").exists()
    assert spec["build"]["args"]["TORCH_VARIANT"] == "cuda"
    assert "profiles" not in compose_services()["app"]
