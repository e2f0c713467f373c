# Autograd Explorer: `make run` serves the app, `make test` runs the suite.
# Both install first when needed (see `install`), so a fresh clone needs nothing else.

SHELL := /bin/bash
.DEFAULT_GOAL := run

PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 8000
# Worker processes (uvicorn --workers; the image sets WEB_CONCURRENCY to the same).
# Requests hold Python's GIL for most of their work, so a second process is what lets
# concurrent clients go faster (README, "Limits and guarantees").
WORKERS ?= 2
# Extra pytest arguments, e.g. make test PYTEST_ARGS='-k smoke -x'.
PYTEST_ARGS ?=
# Where torch wheels come from besides the default index. Leave empty where the default
# index serves the CPU build; on other Linux machines PyPI's torch pulls in several GB of
# CUDA libraries, and TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu avoids that.
TORCH_INDEX_URL ?=

VENV := .venv
PY := $(VENV)/bin/python
# Inside .venv, so deleting .venv also forgets that it was installed.
STAMP := $(VENV)/.install.stamp

.PHONY: install run test lint bench

install: $(STAMP)

$(STAMP): pyproject.toml scripts/install-system-deps.sh
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "Autograd Explorer needs Python 3.11 or newer: install it, or point make at it with make PYTHON=python3.11." >&2; \
	  exit 1; }
	scripts/install-system-deps.sh
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(if $(TORCH_INDEX_URL),--extra-index-url $(TORCH_INDEX_URL)) -e '.[test]'
	touch $@

# Host headers a local server answers: loopback names only, so that a web page cannot
# reach it through DNS rebinding. Set AGX_ALLOWED_HOSTS to serve other names.
ALLOWED_HOSTS ?= localhost,127.0.0.1
# MALLOC_ARENA_MAX=2: glibc's per-thread arenas otherwise keep freed tensor memory
# (see "Limits and guarantees" in the README). --no-proxy-headers: X-Forwarded-For is
# believed from AGX_TRUSTED_PROXIES only (app/api/clients.py), never by uvicorn's default.
run: $(STAMP)
	AGX_ALLOWED_HOSTS="$${AGX_ALLOWED_HOSTS:-$(ALLOWED_HOSTS)}" MALLOC_ARENA_MAX=2 \
	  $(PY) -m uvicorn app.main:app --host $(HOST) --port $(PORT) --workers $(WORKERS) --no-proxy-headers --timeout-graceful-shutdown 5

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy app
	$(VENV)/bin/hadolint Dockerfile

# One run of every benchmark, printed as one table of figures and targets (bench/bench_all.py);
# each bench/bench_*.py also runs alone. BENCH_ARGS=--no-browser skips the Chromium step.
BENCH_ARGS ?=
bench: $(STAMP)
	$(PY) bench/bench_all.py $(BENCH_ARGS)
