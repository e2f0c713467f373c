"""Run the `scaled` deployment on this machine, without Docker: Redis, replicas, nginx.

The topology of compose.yml's `scaled` profile on loopback ports: one `redis-server`
keeping its data in a folder with its append-only file on (as compose runs it), N
`uvicorn app.main:app` replicas that share their session records in it
(`AGX_STORE_URL`), each with its own `AGX_DATA_DIR` and believing X-Forwarded-For from
nginx only (`AGX_TRUSTED_PROXIES`), and nginx in front, configured by
deploy/nginx/agx.conf.template (the file every compose profile mounts).
tests/scale and bench/bench_scale.py use it, and so can you:

    .venv/bin/python deploy/cluster.py --replicas 2    # prints the URL; Ctrl-C stops it

Run so, it prints one JSON line (the URL and every process id), then reads commands on
its standard input, one a line, for fault tests: `kill N` (SIGKILL replica N, as a
crash), `start N`, `restart N` (stop it gracefully and start it again on its port);
each answers one JSON line. SIGTERM, SIGINT or SIGHUP stop everything: nginx, the
replicas and Redis.

Needs `redis-server` and `nginx` (scripts/install-system-deps.sh installs both). Every
process runs in the foreground in a session of its own, and `stop()` ends it and
anything it forked (SIGTERM, then SIGKILL after a bounded wait).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

import redis

__all__ = [
    "REQUEST_BURST",
    "REQUEST_RATE",
    "TEMPLATE",
    "Cluster",
    "Nginx",
    "RedisServer",
    "Replica",
    "find_nginx",
    "free_port",
    "render_site",
]

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = Path(__file__).resolve().parent / "nginx" / "agx.conf.template"
_PLACEHOLDER = re.compile(r"\$\{(AGX_\w+)\}")
# nginx lives in /usr/sbin, which a non-root PATH often lacks.
_SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")


def free_port() -> int:
    """A TCP port free on loopback now (redis-server cannot be told to pick one)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def find_nginx() -> str | None:
    """The nginx binary on PATH or in an sbin folder, or None."""
    return shutil.which("nginx", path=os.pathsep.join([os.environ.get("PATH", ""), *_SBIN]))


# What compose.yml gives every nginx: requests a second per client address, and burst.
REQUEST_RATE = "200r/s"
REQUEST_BURST = 400


def render_site(
    *,
    listen: str,
    servers: Sequence[str],
    access_log: str = "/var/log/nginx/access.log",
    request_rate: str = REQUEST_RATE,
    request_burst: int = REQUEST_BURST,
) -> str:
    """The nginx template with its placeholders filled, as the nginx image's envsubst does.

    `listen` is what nginx's `listen` takes ("127.0.0.1:8080"); `servers` are the
    replicas' "host:port"; `access_log` is a path, or "off"; `request_rate` ("200r/s")
    and `request_burst` are the per-address request limit (compose's by default).
    """
    values = {
        "AGX_NGINX_LISTEN": listen,
        "AGX_UPSTREAM_SERVERS": " ".join(f"server {server};" for server in servers),
        "AGX_NGINX_ACCESS_LOG": access_log,
        "AGX_NGINX_REQUEST_RATE": request_rate,
        "AGX_NGINX_REQUEST_BURST": str(request_burst),
    }
    if not servers or any("\n" in value for value in values.values()):
        raise ValueError("the listen address and the replicas must be non-empty, on one line")
    text = TEMPLATE.read_text()
    missing = set(_PLACEHOLDER.findall(text)) - set(values)
    if missing:
        raise ValueError(f"the template needs values for {', '.join(sorted(missing))}")
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], text)


class Service:
    """A server in a subprocess: started, polled until ready, stopped within a bound."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        *,
        log_path: Path,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.command = list(command)
        self.log_path = log_path
        self._cwd = cwd
        self._env = env
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def spawn(self) -> None:
        """Start the process and return at once (see `wait_ready`)."""
        if self.running:
            raise RuntimeError(f"{self.name} is running already")
        with self.log_path.open("ab") as log:
            # A session of its own: stop() can end whatever it forks (nginx's workers).
            self._process = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self._cwd,
                env=self._env,
            )

    def wait_ready(self, ready: Callable[[], bool], timeout_s: float) -> None:
        """Poll `ready` until it says so; stop the process and raise if it never does."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f"{self.name} exited at start:\n{self.log()}")
            try:
                if ready():
                    return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} was not ready after {timeout_s:g} s:\n{self.log()}")

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM (a graceful stop), then SIGKILL to its whole group after `timeout_s`."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=timeout_s)
        self._kill_group()

    def kill(self) -> None:
        """SIGKILL, as a crash would end it: no shutdown code runs."""
        if self._process is not None:
            self._kill_group()

    def _kill_group(self) -> None:
        assert self._process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class RedisServer(Service):
    """`redis-server` on a loopback port, its data in `folder`, persisted as compose.yml
    persists it: an append-only file, synced every second (`appendonly=False`: none)."""

    def __init__(self, folder: Path, *, port: int | None = None, appendonly: bool = True) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.appendonly = appendonly
        super().__init__("redis-server", [], log_path=folder / "redis.log")

    def redis_command(self) -> list[str]:
        # NOTE: --save "" turns RDB snapshots off; `appendonly` says whether the data
        # survives a restart (compose.yml runs Redis with appendonly yes).
        return [
            "redis-server",
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.folder),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "everysec",
            "--daemonize", "no",
        ]  # fmt: skip

    def start(self, timeout_s: float = 10.0) -> None:
        self.command = self.redis_command()
        self.spawn()
        self.wait_ready(self._pong, timeout_s)

    def enable_appendonly(self, timeout_s: float = 30.0) -> None:
        """Turn the append-only file on while running; return once it holds every key."""
        client = self.client()
        try:
            client.config_set("appendonly", "yes")
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                info = client.info("persistence")
                writing = info["aof_rewrite_in_progress"] or info["aof_rewrite_scheduled"]
                if info["aof_enabled"] and not writing:
                    if info["aof_last_bgrewrite_status"] != "ok":
                        raise RuntimeError(f"Redis could not write its append-only file: {info}")
                    self.appendonly = True
                    return
                time.sleep(0.05)
        finally:
            client.close()
        raise RuntimeError(f"Redis did not finish its append-only file in {timeout_s:g} s")

    def client(self) -> redis.Redis:
        """A redis-py client of this server (the caller closes it)."""
        return redis.Redis.from_url(self.url, decode_responses=True)

    def _pong(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(64).startswith(b"+PONG")


class Replica(Service):
    """`uvicorn app.main:app` on a loopback port, with its own data folder and `env`."""

    def __init__(
        self,
        name: str,
        *,
        store_url: str,
        data_dir: Path,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        access_log: bool = True,
    ) -> None:
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.address}"
        command = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1"]
        # As the image starts it: X-Forwarded-For is the app's to judge (below).
        command += [
            "--port",
            str(self.port),
            "--no-proxy-headers",
            "--timeout-graceful-shutdown",
            "5",
        ]
        if not access_log:
            command += ["--no-access-log"]
        # Inherited AGX_* variables would make a run depend on the caller's shell.
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("AGX_")}
        variables = {
            **inherited,
            "AGX_DATA_DIR": str(data_dir),
            "AGX_STORE_URL": store_url,
            # nginx reaches the replicas from loopback: its X-Forwarded-For is believed,
            # so the app counts each client by its own address (compose: nginx's).
            "AGX_TRUSTED_PROXIES": "127.0.0.1",
            "AGX_ALLOWED_HOSTS": "localhost,127.0.0.1",
            **(env or {}),
        }
        super().__init__(name, command, log_path=log_path, cwd=ROOT, env=variables)

    def start(self, timeout_s: float = 60.0) -> None:
        self.spawn()
        self.wait_healthy(timeout_s)

    def wait_healthy(self, timeout_s: float = 60.0) -> None:
        self.wait_ready(self._healthy, timeout_s)

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                return bool(response.status == 200)
        except urllib.error.URLError:
            return False


# Written into the prefix folder beside the rendered site: the process-level settings
# a server's /etc/nginx/nginx.conf would hold, pointed into that folder.
_MAIN_CONF = """\
# Written by deploy/cluster.py; the routing is in agx.conf ({template}).
worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{
    worker_connections 1024;
}}
http {{
    # The access log and its format are the site's (agx.conf).
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {prefix}/agx.conf;
}}
"""


class Nginx(Service):
    """nginx in the foreground on a loopback port, in front of `servers` ("host:port")."""

    def __init__(
        self,
        servers: Sequence[str],
        *,
        workers: int = 1,
        log_requests: bool = True,
        binary: str | None = None,
        request_rate: str = REQUEST_RATE,
        request_burst: int = REQUEST_BURST,
    ) -> None:
        binary = binary or find_nginx()
        if binary is None:
            raise FileNotFoundError("nginx is not installed (scripts/install-system-deps.sh)")
        # NOTE: its own folder under the system temp dir, readable by all: run as root,
        # nginx's workers are `nobody` and must reach the temp folders in it.
        self.servers = list(servers)
        self.prefix = Path(tempfile.mkdtemp(prefix="agx-nginx-"))
        self.prefix.chmod(0o755)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.access_log_path = self.prefix / "access.log"
        self.conf = self.prefix / "nginx.conf"
        site = render_site(
            listen=f"127.0.0.1:{self.port}",
            servers=servers,
            access_log=str(self.access_log_path) if log_requests else "off",
            request_rate=request_rate,
            request_burst=request_burst,
        )
        (self.prefix / "agx.conf").write_text(site)
        self.conf.write_text(
            _MAIN_CONF.format(
                template=TEMPLATE.relative_to(ROOT), workers=workers, prefix=self.prefix
            )
        )
        # -e: the log nginx writes before it has read error_log from the configuration
        # (its compiled-in default may be a system path a non-root user cannot open).
        self._base = [binary, "-c", str(self.conf), "-p", str(self.prefix)]
        self._base += ["-e", str(self.prefix / "error.log")]
        command = [*self._base, "-g", "daemon off;"]
        super().__init__("nginx", command, log_path=self.prefix / "out.log")

    def test_config(self) -> subprocess.CompletedProcess[str]:
        """`nginx -t` on the written configuration: its exit status and what it said."""
        command = [*self._base, "-t"]
        return subprocess.run(command, capture_output=True, text=True, timeout=30)

    def start(self, timeout_s: float = 10.0) -> None:
        self.spawn()
        self.wait_ready(self._listening, timeout_s)

    def stop(self, timeout_s: float = 10.0) -> None:
        super().stop(timeout_s)
        shutil.rmtree(self.prefix, ignore_errors=True)

    def access_log(self) -> list[list[str]]:
        """The requests so far: [session tag (the id's first 8 characters) or "-",
        upstream address(es), status, method, path as logged, client address]."""
        if not self.access_log_path.exists():
            return []
        rows = []
        for line in self.access_log_path.read_text().splitlines():
            # A retried request lists its upstreams as "a, b": quoted, kept as "a,b".
            tag, upstream, status, method, path, client, *_ = shlex.split(line)
            rows.append([tag, upstream.replace(", ", ","), status, method, path, client])
        return rows

    def _listening(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1):
            return True


class Cluster:
    """Redis, `replicas` app replicas sharing it, and nginx in front; a context manager.

    Everything lives under `folder` except nginx's own prefix (see `Nginx`). `env` adds
    settings for the replicas; `access_log` says whether uvicorn logs each request
    (nginx always does, in `nginx.access_log()`).
    """

    def __init__(
        self,
        folder: Path,
        *,
        replicas: int = 2,
        env: Mapping[str, str] | None = None,
        access_log: bool = True,
        nginx_workers: int = 1,
        request_rate: str = REQUEST_RATE,
    ) -> None:
        if replicas < 1:
            raise ValueError("a cluster needs at least one replica")
        self.folder = folder
        self.redis = RedisServer(folder / "redis")  # appendonly, as compose runs it
        self.replicas = [
            Replica(
                f"replica-{index}",
                store_url=self.redis.url,
                data_dir=folder / f"var-{index}",
                log_path=folder / f"replica-{index}.log",
                env=env,
                access_log=access_log,
            )
            for index in range(replicas)
        ]
        self.nginx = Nginx(
            [replica.address for replica in self.replicas],
            workers=nginx_workers,
            request_rate=request_rate,
        )

    @property
    def url(self) -> str:
        return self.nginx.url

    def start(self) -> None:
        """Start Redis, then every replica at once, then nginx; stop all if one fails."""
        try:
            self.redis.start()
            for replica in self.replicas:
                replica.spawn()
            for replica in self.replicas:
                replica.wait_healthy()
            self.nginx.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop nginx, the replicas and Redis (each within a bounded time), all of them
        even if one fails to stop."""
        failures = []
        for service in [self.nginx, *self.replicas, self.redis]:
            try:
                service.stop()
            except Exception as error:
                failures.append(error)
        if failures:
            raise failures[0]

    def restart_replica(self, index: int, *, crash: bool = False) -> Replica:
        """Stop replica `index` (SIGKILL when `crash`, else gracefully) and start it again
        on its port, so nginx finds it where it was; return it once healthy."""
        replica = self.replicas[index]
        if crash:
            replica.kill()
        else:
            replica.stop()
        replica.start()
        return replica

    def pids(self) -> dict[str, int | None]:
        """The process id of every service, by name (None: not running)."""
        services = [self.redis, *self.replicas, self.nginx]
        return {s.name: s.pid if s.running else None for s in services}

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _serve_commands(cluster: Cluster) -> None:
    """Read commands on stdin until it ends; answer each with one JSON line."""
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        try:
            verb, index = words[0], int(words[1]) if len(words) > 1 else -1
            if not 0 <= index < len(cluster.replicas):
                raise ValueError(f"name a replica from 0 to {len(cluster.replicas) - 1}")
            replica = cluster.replicas[index]
            if verb == "kill":
                replica.kill()
            elif verb == "start":
                replica.start()
            elif verb == "restart":
                cluster.restart_replica(index)
            else:
                raise ValueError("commands are kill N, start N and restart N")
            answer: dict[str, object] = {"ok": True, "pids": cluster.pids()}
        except (ValueError, IndexError, RuntimeError) as error:
            answer = {"ok": False, "error": str(error)}
        print(json.dumps(answer), flush=True)


def _stop_on(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=2, help="app replicas (default 2)")
    parser.add_argument(
        "--folder", type=Path, help="where the data and logs go (default: a temporary folder)"
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="AGX_NAME=VALUE",
        help="a setting for every replica (repeatable)",
    )
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)
    # SIGTERM (docker stop, a test, a supervisor) ends everything it started, as Ctrl-C
    # does: the exception unwinds through Cluster.__exit__.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _stop_on)
    with contextlib.ExitStack() as stack:
        folder = args.folder or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="agx-cluster-"))
        )
        cluster = stack.enter_context(Cluster(folder, replicas=args.replicas, env=env))
        print(json.dumps({"url": cluster.url, "redis": cluster.redis.url, "pids": cluster.pids()}))
        print(
            f"Autograd Explorer at {cluster.url} ({args.replicas} replicas, logs in "
            f"{folder}); Ctrl-C stops everything.",
            file=sys.stderr,
            flush=True,
        )
        sys.stdout.flush()
        with contextlib.suppress(KeyboardInterrupt):
            if not sys.stdin.isatty():
                _serve_commands(cluster)
            signal.pause()  # until a signal: the end of the input stops nothing


if __name__ == "__main__":
    main()
