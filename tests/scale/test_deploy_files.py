"""compose.yml's `scaled` profile and deploy/nginx agree with each other and with nginx."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.cluster import TEMPLATE, Nginx, find_nginx, render_site

ROOT = Path(__file__).resolve().parents[2]
STORE_URL = "redis://redis:6379/0"
TEMPLATE_MOUNT = "/etc/nginx/templates/default.conf.template"


def services() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yml").read_text())["services"]


def scaled(name: str) -> dict[str, Any]:
    spec = services()[name]
    assert spec.get("profiles") == ["scaled"], f"{name} belongs to the scaled profile only"
    return spec


def replicas() -> dict[str, dict[str, Any]]:
    """The scaled profile's app replicas: its services that run the app's image."""
    image = services()["app"]["image"]
    return {
        name: spec
        for name, spec in services().items()
        if "scaled" in spec.get("profiles", []) and spec.get("image") == image
    }


def envsubst(text: str, env: dict[str, str]) -> str:
    """What the nginx image does to a template: GNU envsubst of the variables that pass
    NGINX_ENVSUBST_FILTER, in both the ${NAME} and the $NAME form."""
    names = "|".join(n for n in env if re.search(env.get("NGINX_ENVSUBST_FILTER", ""), n))
    variable = re.compile(rf"\$(?:\{{({names})\}}|({names})(?!\w))")
    return variable.sub(lambda match: env[match.group(1) or match.group(2)], text)


def test_redis_keeps_an_append_only_file_in_a_volume():
    redis = scaled("redis")
    command = redis["command"]
    volume, _, target = redis["volumes"][0].partition(":")

    assert redis["image"].split(":")[0] == "redis"
    assert command[command.index("--appendonly") + 1] == "yes"
    assert target == "/data"  # the official image's working directory
    assert volume in yaml.safe_load((ROOT / "compose.yml").read_text())["volumes"]
    assert "redis-cli" in redis["healthcheck"]["test"]


def test_two_or_more_replicas_share_the_records_in_redis():
    app = services()["app"]
    found = replicas()

    assert len(found) >= 2
    for name, spec in found.items():
        assert spec["environment"]["AGX_STORE_URL"] == STORE_URL, name
        assert spec["environment"]["AGX_DATA_DIR"] == app["environment"]["AGX_DATA_DIR"]
        assert spec["build"] == app["build"]
        assert spec["healthcheck"] == app["healthcheck"]
        assert spec["depends_on"]["redis"]["condition"] == "service_healthy"
        assert "ports" not in spec, f"{name}: clients reach replicas through nginx only"
        assert "command" not in spec, "the start command lives in the Dockerfile only"


def test_nginx_routes_to_every_replica_with_the_deploy_template():
    nginx = scaled("nginx")
    source, target, *_ = nginx["volumes"][0].split(":")
    env = nginx["environment"]
    servers = re.findall(r"server (\S+);", env["AGX_UPSTREAM_SERVERS"])

    assert nginx["image"].split(":")[0] == "nginx"
    assert (ROOT / source).resolve() == TEMPLATE
    assert target == TEMPLATE_MOUNT
    assert sorted(servers) == sorted(f"{name}:8000" for name in replicas())
    assert set(nginx["depends_on"]) == set(replicas())
    assert {d["condition"] for d in nginx["depends_on"].values()} == {"service_healthy"}
    assert nginx["ports"][0].endswith(f":{env['AGX_NGINX_LISTEN']}")


def test_the_image_and_the_cluster_render_the_template_alike():
    env = {
        **scaled("nginx")["environment"],
        # Variables any container has: the filter must keep envsubst off them.
        "HOME": "/root",
        "HOSTNAME": "c0ffee",
        "PATH": "/usr/bin",
        "NGINX_VERSION": "1.27",
    }
    servers = re.findall(r"server (\S+);", env["AGX_UPSTREAM_SERVERS"])
    by_image = envsubst(TEMPLATE.read_text(), env)

    assert by_image == render_site(listen=env["AGX_NGINX_LISTEN"], servers=servers)
    assert "${" not in by_image
    assert "hash $agx_session_key consistent;" in by_image


@pytest.mark.skipif(find_nginx() is None, reason="nginx is not installed")
def test_nginx_accepts_the_rendered_configuration():
    nginx = Nginx(["127.0.0.1:8001", "127.0.0.1:8002"])
    try:
        result = nginx.test_config()
    finally:
        nginx.stop()

    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
