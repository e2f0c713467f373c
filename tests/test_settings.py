"""Settings come from AGX_* variables, with documented defaults, and reject nonsense."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in list(os.environ):
        if name.startswith("AGX_"):
            monkeypatch.delenv(name)


def test_defaults():
    settings = Settings()

    assert settings.data_dir == Path("var")
    assert settings.store_url is None
    assert settings.allowed_hosts == ["*"]
    assert settings.cors_origins == []
    assert settings.max_body_bytes == 65536
    assert settings.max_sessions == 4096
    assert settings.session_ttl_s == 1800
    assert settings.max_live_sessions == 64
    assert settings.step_time_s == 30.0
    assert settings.session_cpu_s == 900.0
    assert settings.session_queue == 8
    assert settings.dot_timeout_s == 5.0
    assert settings.max_graph_nodes == 400
    assert settings.max_dim == 65536
    assert settings.max_iterations == 10000
    assert settings.max_session_bytes == 2 * 1024**3
    assert settings.max_work == 2e12


def test_environment_with_prefix(monkeypatch, tmp_path):
    monkeypatch.setenv("AGX_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("AGX_STORE_URL", "redis://localhost:6379/0")
    monkeypatch.setenv("AGX_MAX_SESSIONS", "3")
    monkeypatch.setenv("AGX_MAX_WORK", "1e9")
    monkeypatch.setenv("MAX_DIM", "7")  # no prefix: not ours

    settings = Settings()

    assert settings.data_dir == tmp_path
    assert settings.store_url == "redis://localhost:6379/0"
    assert settings.max_sessions == 3
    assert settings.max_work == 1e9
    assert settings.max_dim == 65536


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a.example, b.example", ["a.example", "b.example"]),
        ('["a.example", "b.example"]', ["a.example", "b.example"]),
        ("", []),
    ],
)
def test_lists_from_commas_or_json(monkeypatch, value, expected):
    monkeypatch.setenv("AGX_CORS_ORIGINS", value)

    assert Settings().cors_origins == expected


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AGX_MAX_SESSIONS", "many"),
        ("AGX_MAX_SESSIONS", "0"),
        ("AGX_MAX_DIM", "-1"),
        ("AGX_MAX_ITERATIONS", "10001"),
        ("AGX_DOT_TIMEOUT_S", "0"),
        ("AGX_MAX_WORK", "-5"),
        ("AGX_STORE_URL", "postgres://db/agx"),
        ("AGX_ALLOWED_HOSTS", '["a.example", ""]'),
        ("AGX_ALLOWED_HOSTS", "[not json"),
    ],
)
def test_invalid_values_rejected(monkeypatch, name, value):
    monkeypatch.setenv(name, value)

    with pytest.raises(ValidationError, match=name.removeprefix("AGX_").lower()):
        Settings()


def test_get_settings_is_cached():
    get_settings.cache_clear()
    try:
        assert get_settings() is get_settings()
    finally:
        get_settings.cache_clear()


def test_every_setting_is_described_and_documented():
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"`AGX_([A-Z_]+)`", readme))

    for name, field in Settings.model_fields.items():
        assert field.description, f"{name} has no description"
        assert name.upper() in documented, f"README.md does not document AGX_{name.upper()}"


def test_only_settings_read_the_environment():
    readers = [
        path.relative_to(ROOT)
        for path in (ROOT / "app").rglob("*.py")
        # app/settings.py itself, which also picks what the hosts' zygote inherits
        if path.name != "settings.py" and re.search(r"\bos\.environ\b|\bgetenv\(", path.read_text())
    ]

    assert readers == [], "read settings through app.settings.get_settings() instead"
