# Autograd Explorer, served by uvicorn on port 8000 behind nginx (compose.yml). CPU torch
# by default; for a GPU host:
#   docker build --build-arg TORCH_VARIANT=cuda .
FROM python:3.11-slim

# Which lock file to install: requirements/cpu.txt (torch's +cpu build, from the PyTorch
# CPU index that file names) or requirements/cuda.txt (PyPI's torch and CUDA libraries).
# Both pin every package to an exact version with its hashes (requirements/lock.sh makes
# them from pyproject.toml; tests/test_deploy.py checks that they agree with it).
ARG TORCH_VARIANT=cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    AGX_DATA_DIR=/var/lib/agx \
    AGX_ALLOWED_HOSTS=localhost,127.0.0.1 \
    MALLOC_ARENA_MAX=2 \
    WEB_CONCURRENCY=2

WORKDIR /app

# The same script as `make install`, limited to what the server itself runs: Graphviz,
# and libseccomp2 for the edited-code sandbox (app/engine/sandbox).
COPY scripts/install-system-deps.sh scripts/
RUN scripts/install-system-deps.sh graphviz libseccomp2 && rm -rf /var/lib/apt/lists/*

# Dependencies from the lock file before the code, so a code change reuses this layer.
# --require-hashes: a file whose hash differs from the lock's is refused.
COPY requirements/ requirements/
RUN pip install --no-cache-dir --require-hashes --no-deps -r "requirements/$TORCH_VARIANT.txt"

# The app itself, installed editable (static/ and templates/ live beside app/, not inside
# it), with the locked setuptools and no other download.
COPY pyproject.toml README.md ./
RUN mkdir app && touch app/__init__.py \
    && pip install --no-cache-dir --no-deps --no-build-isolation -e .
COPY . .

RUN groupadd --system --gid 10001 agx \
    && useradd --system --create-home --uid 10001 --gid agx agx \
    && mkdir -p "$AGX_DATA_DIR" \
    && chown agx:agx "$AGX_DATA_DIR"
# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
# uvicorn starts WEB_CONCURRENCY worker processes (2, as `make run`). --no-proxy-headers:
# the app believes X-Forwarded-For from AGX_TRUSTED_PROXIES only (compose names its
# nginx), never by uvicorn's own default.
CMD ["uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "8000", "--no-proxy-headers", "--timeout-graceful-shutdown", "5"]
