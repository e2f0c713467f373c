"""Settings of Autograd Explorer, read from `AGX_*` environment variables."""

from __future__ import annotations

import ipaddress
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["Settings", "get_settings", "memory_bytes"]

_GIB = 1024**3
# NOTE: sqlite is the embedded store (the default); the others are the schemes redis-py
# accepts, so a Redis URL is checked here rather than on the first request.
_STORE_SCHEMES = ("sqlite", "redis", "rediss", "unix")


class Settings(BaseSettings):
    """Every limit and place the app uses; one field per `AGX_<NAME>` variable."""

    model_config = SettingsConfigDict(env_prefix="AGX_", frozen=True)

    data_dir: Path = Field(
        default=Path("var"),
        description="Folder of the embedded session store (SQLite) and other server data.",
    )
    store_url: str | None = Field(
        default=None,
        description=(
            "Where session records live: unset for SQLite under data_dir, or a redis:// URL "
            "to share sessions between replicas."
        ),
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default=["*"],
        description='Host headers the server answers, comma-separated ("*" for any).',
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default=[],
        description="Origins allowed to call the API from a browser, comma-separated.",
    )
    max_body_bytes: int = Field(
        default=65536, gt=0, description="Largest request body accepted; larger ones get 413."
    )
    max_sessions: int = Field(
        default=4096,
        gt=0,
        description=(
            "Most sessions kept at once by the whole server; set well above "
            "max_sessions_per_address, so that one address filling its cap refuses no other."
        ),
    )
    session_ttl_s: float = Field(
        default=1800, gt=0, description="Seconds an unused session is kept before it expires."
    )
    max_live_sessions: int = Field(
        default=64,
        gt=0,
        description=(
            "Session hosts (one process per live session) kept on this machine; the least "
            "recently used are ended, and replayed when next used."
        ),
    )
    max_live_bytes: int | None = Field(
        default=None,
        gt=0,
        description=(
            "Estimated tensor bytes of the live sessions' hosts on this machine; the least "
            "recently used are ended (and replayed when next used) to stay under it. Unset: "
            "half of the memory of this host or container."
        ),
    )
    max_cuda_hosts: int = Field(
        default=4,
        gt=0,
        description="Session hosts on a GPU at once (each holds its own CUDA context).",
    )
    checkpoints: int = Field(
        default=4,
        ge=0,
        le=64,
        description=(
            "Paused copies of a live CPU session's program kept at earlier cursors, built "
            "while its host is idle, so that a seek back goes on from the nearest one "
            "instead of replaying from the start (0: none)."
        ),
    )
    checkpoint_max_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=0,
        description=(
            "Sessions whose tensors are estimated above this many bytes keep no checkpoints "
            "(each one is a full copy of them)."
        ),
    )
    step_time_s: float = Field(
        default=30.0,
        gt=0,
        description=(
            "Seconds one step may run: a longer one stops between two events and says so "
            "(State.interrupted); the client steps again to go on."
        ),
    )
    background_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description=(
            "Nice value a session's program drops to once one of its steps has run for "
            "0.2 s, and that its checkpoints are built at, so that other sessions' single "
            "steps go first; 0 leaves every program at normal priority. The next step "
            "raises it back where Linux lets the thread (privileges, or RLIMIT_NICE)."
        ),
    )
    lookahead_s: float = Field(
        default=0.5,
        ge=0,
        le=60,
        description=(
            "Seconds a session's host may spend looking an iteration ahead on a copy of "
            "its program (a fork), so that the graph's layout is the whole iteration's "
            "from its first node; after three look-aheads in a row that take longer, the "
            "session looks ahead no more. 0: never (layouts from the previous iteration)."
        ),
    )
    session_cpu_s: float = Field(
        default=900.0,
        gt=0,
        description=(
            "CPU seconds a session's steps may use in all (replays and checks are free); "
            "then its steps answer 429."
        ),
    )
    session_queue: int = Field(
        default=8,
        gt=0,
        description="Requests that may wait for a busy session; more answer 409.",
    )
    host_idle_s: float = Field(
        default=600.0,
        gt=0,
        description=(
            "Seconds a session host waits for a request before it ends (the session is "
            "replayed when next used)."
        ),
    )
    host_memory_margin_bytes: int = Field(
        default=1 << 30,
        ge=0,
        description=(
            "Address space a CPU session host may map beyond its memory budget "
            "(max_session_bytes): thread stacks, allocator arenas, temporaries."
        ),
    )
    host_dir: Path | None = Field(
        default=None,
        description=(
            "Folder of the session hosts' sockets, shared by every worker process and app "
            "that shares the hosts (default: data_dir/hosts)."
        ),
    )
    dot_timeout_s: float = Field(
        default=5.0,
        gt=0,
        description="Seconds Graphviz may take to lay out one graph before it is killed.",
    )
    max_graph_nodes: int = Field(
        default=400, gt=0, description="Most nodes in a graph drawn as SVG."
    )
    max_dim: int = Field(
        default=65536,
        gt=0,
        description="Upper bound for each of the lesson sizes N, D_in, H and D_out.",
    )
    max_iterations: int = Field(
        default=10000,
        ge=1,
        le=10000,
        description="Upper bound for a lesson's iterations (at most 10000).",
    )
    max_session_bytes: int = Field(
        default=2 * _GIB, gt=0, description="Memory budget of one run's tensors, in bytes."
    )
    max_work: float = Field(
        default=2e12, gt=0, description="Multiply-adds one run may do in all its iterations."
    )

    # --- Edited code (DESIGN.md §5.1): a learner's own version of a lesson ---
    allow_code: bool | None = Field(
        default=None,
        description=(
            "Whether sessions may run edited code (POST /api/sessions with a source). "
            "Unset: only for requests that reach the server on a loopback address with no "
            "trusted proxy in front (`make run` on a learner's own machine). Even when on, "
            "edited code runs only where every sandbox layer is in force (/healthz)."
        ),
    )
    code_max_events: int = Field(
        default=1_000_000,
        gt=0,
        description="Most events one run of an edited program may take; more ends it.",
    )

    # --- Clients: who may hold how much (fair sharing, app.api.clients) ---
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default=[],
        description=(
            "Addresses or networks (CIDR) of the reverse proxies whose X-Forwarded-For is "
            "believed, comma-separated; a request from anywhere else is the client it "
            "comes from. compose.yml names its nginx."
        ),
    )
    max_sessions_per_browser: int = Field(
        default=8,
        gt=0,
        description=(
            "Most sessions one browser holds at once (counted by its HttpOnly token "
            "cookie); more get 429 naming this cap."
        ),
    )
    max_sessions_per_address: int = Field(
        default=320,
        gt=0,
        description=(
            "Most sessions one client address holds at once, all its browsers and "
            "scripts together (an IPv6 address counts by its /64): a classroom of 40 "
            "browsers behind one NAT address fits. More get 429 naming this cap."
        ),
    )
    max_steps_per_browser: int = Field(
        default=3,
        gt=0,
        description=(
            "Steps and seeks one browser has running at once, across the worker "
            "processes that share host_dir; another gets 429 naming this cap."
        ),
    )
    max_steps_per_address: int = Field(
        default=32,
        gt=0,
        description=(
            "Steps and seeks one client address has running at once, across the "
            "worker processes that share host_dir; another gets 429 naming this cap."
        ),
    )

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("trusted_proxies", mode="after")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            ipaddress.ip_network(item, strict=False)  # ValueError names the bad one
        return value

    # --- end of clients ---

    def live_bytes(self) -> int:
        """`max_live_bytes`, or its default for this host; never below one session's budget."""
        if self.max_live_bytes is not None:
            return self.max_live_bytes
        return max(self.max_session_bytes, memory_bytes() // 2)

    def hosts_folder(self) -> Path:
        return self.host_dir if self.host_dir is not None else self.data_dir / "hosts"

    @field_validator("allowed_hosts", "cors_origins", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        # Operators write AGX_ALLOWED_HOSTS=a.example,b.example; a JSON list works too.
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return json.loads(value)
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("allowed_hosts", "cors_origins", mode="after")
    @classmethod
    def _no_blank_items(cls, value: list[str]) -> list[str]:
        if any(not item.strip() for item in value):
            raise ValueError("items must not be blank")
        return value

    @field_validator("store_url")
    @classmethod
    def _known_scheme(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in _STORE_SCHEMES:
            raise ValueError(f"the URL scheme must be one of {', '.join(_STORE_SCHEMES)}")
        return value


def memory_bytes() -> int:
    """The memory this process may use: its container's limit (cgroup), else the host's."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:  # "max", or v1's huge "no limit"
            return int(text)
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def host_environment(root: Path) -> dict[str, str]:
    """The environment of the session hosts' zygote: no settings and no secrets, what
    Python, torch and the BLAS need, with one thread each (DESIGN.md §7)."""
    keep = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR", "CUDA_VISIBLE_DEVICES")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env.update(
        PYTHONPATH=str(root),
        OMP_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        MALLOC_ARENA_MAX="2",
        PYTHONUNBUFFERED="1",
    )
    return env


@lru_cache
def get_settings() -> Settings:
    """Return the settings of this process, read from the environment once."""
    return Settings()
