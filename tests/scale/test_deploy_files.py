"""compose.yml's profiles, deploy/nginx and deploy/cluster.py agree with each other and
with nginx: nginx in front of every profile, the apps reached through it only."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.cluster import (
    REQUEST_BURST,
    REQUEST_RATE,
    TEMPLATE,
    Nginx,
    RedisServer,
    Replica,
    find_nginx,
    render_site,
)

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


def nginxes() -> dict[str, dict[str, Any]]:
    return {
        name: spec
        for name, spec in services().items()
        if str(spec.get("image", "")).split(":")[0] == "nginx"
    }


def apps() -> dict[str, dict[str, Any]]:
    return {
        name: spec
        for name, spec in services().items()
        if str(spec.get("image", "")).startswith("autograd-explorer:")
    }


def upstreams(nginx: dict[str, Any]) -> list[str]:
    return re.findall(r"server (\S+?):8000;", nginx["environment"]["AGX_UPSTREAM_SERVERS"])


@pytest.mark.parametrize("profile", [None, "gpu", "scaled"])
def test_every_profile_has_nginx_in_front_and_publishes_nothing_else(profile):
    in_profile = {
        name: spec for name, spec in services().items() if spec.get("profiles", [None]) == [profile]
    }
    fronts = [name for name in in_profile if name in nginxes()]

    (front,) = fronts
    published = [name for name, spec in in_profile.items() if "ports" in spec]
    assert published == [front], "clients reach the apps through nginx only"
    assert set(upstreams(in_profile[front])) == {n for n in in_profile if n in apps()}


@pytest.mark.parametrize("name", sorted(nginxes()))
def test_nginx_routes_to_its_apps_with_the_deploy_template(name):
    nginx = nginxes()[name]
    source, target, *_ = nginx["volumes"][0].split(":")
    env = nginx["environment"]
    servers = upstreams(nginx)

    assert (ROOT / source).resolve() == TEMPLATE
    assert target == TEMPLATE_MOUNT
    assert servers and set(servers) <= set(apps())
    assert set(nginx["depends_on"]) == set(servers)
    assert {d["condition"] for d in nginx["depends_on"].values()} == {"service_healthy"}
    assert nginx["ports"][0].endswith(f":{env['AGX_NGINX_LISTEN']}")
    assert set(nginx["networks"]) == {"edge", "internal"}


def test_apps_sit_on_the_internal_network_and_trust_their_own_nginx_only():
    compose = yaml.safe_load((ROOT / "compose.yml").read_text())
    internal = compose["networks"]["internal"]
    subnet = ipaddress.ip_network(internal["ipam"]["config"][0]["subnet"])
    address_of = {
        name: nginx["networks"]["internal"]["ipv4_address"] for name, nginx in nginxes().items()
    }
    front_of = {app: name for name, nginx in nginxes().items() for app in upstreams(nginx)}

    assert internal["internal"] is True
    assert len(set(address_of.values())) == len(address_of)
    assert all(ipaddress.ip_address(a) in subnet for a in address_of.values())
    assert set(front_of) == set(apps()), "every app has an nginx in front"
    for name, app in apps().items():
        assert app["networks"] == ["internal"], name
        assert app["environment"]["AGX_TRUSTED_PROXIES"] == address_of[front_of[name]], name
        assert "*" not in app["environment"]["AGX_ALLOWED_HOSTS"]
    assert services()["redis"]["networks"] == ["internal"]


def test_the_cluster_runs_its_replicas_and_redis_as_compose_runs_them(tmp_path):
    replica = Replica("r", store_url="redis://x", data_dir=tmp_path, log_path=tmp_path / "log")
    redis = RedisServer(tmp_path / "redis")
    compose_redis = scaled("redis")["command"]

    assert "--no-proxy-headers" in replica.command
    assert replica._env is not None and replica._env["AGX_TRUSTED_PROXIES"] == "127.0.0.1"
    command = redis.redis_command()
    flags = [word for word in compose_redis if word.startswith("--")]

    assert flags == ["--appendonly", "--appendfsync"]
    for flag in flags:
        value = compose_redis[compose_redis.index(flag) + 1]
        assert command[command.index(flag) + 1] == value, flag


@pytest.mark.parametrize("name", sorted(nginxes()))
def test_the_image_and_the_cluster_render_the_template_alike(name):
    env = {
        **nginxes()[name]["environment"],
        # Variables any container has: the filter must keep envsubst off them.
        "HOME": "/root",
        "HOSTNAME": "c0ffee",
        "PATH": "/usr/bin",
        "NGINX_VERSION": "1.27",
    }
    servers = re.findall(r"server (\S+);", env["AGX_UPSTREAM_SERVERS"])
    by_image = envsubst(TEMPLATE.read_text(), env)

    rendered = render_site(
        listen=env["AGX_NGINX_LISTEN"], servers=servers, access_log=env["AGX_NGINX_ACCESS_LOG"]
    )
    # The cluster's defaults are compose's.
    assert env["AGX_NGINX_REQUEST_RATE"] == REQUEST_RATE
    assert env["AGX_NGINX_REQUEST_BURST"] == str(REQUEST_BURST)
    assert by_image == rendered
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


def test_every_app_lets_a_session_go_back_to_the_front_after_a_long_step():
    """The image runs as an unprivileged user: a program thread lowered for a long step
    (AGX_BACKGROUND_NICE) may go back to nice 0 only within RLIMIT_NICE (20 - limit)."""
    image = services()["app"]["image"]
    apps = {
        n: s
        for n, s in services().items()
        if str(s.get("image", "")).startswith(image.split(":")[0])
    }
    assert {"app", *replicas()} <= set(apps)
    for name, spec in apps.items():
        assert spec.get("ulimits", {}).get("nice") == 20, name
