"""Fixtures of the scale-out tests: Redis, app replicas and nginx as real processes."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# deploy/ is a folder of deployment files and scripts beside app/, not an installed package.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from deploy.cluster import Cluster, find_nginx  # noqa: E402


def missing_binaries() -> list[str]:
    """The servers a cluster needs that this machine lacks."""
    missing = [] if shutil.which("redis-server") else ["redis-server"]
    return missing + ([] if find_nginx() else ["nginx"])


def skip_without_binaries() -> None:
    if missing := missing_binaries():
        pytest.skip(
            f"{' and '.join(missing)} not installed: scripts/install-system-deps.sh "
            f"installs them (as root), e.g. apt-get install {' '.join(missing)}"
        )


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """Redis, two replicas sharing it, nginx in front; all stopped at teardown."""
    skip_without_binaries()
    with Cluster(tmp_path, replicas=2) as running:
        yield running
