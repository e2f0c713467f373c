# Autograd Explorer, served by uvicorn on port 8000. CPU torch by default; for a GPU host:
#   docker build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu130 .
FROM python:3.11-slim

# Torch comes from its own index: PyPI's Linux torch is the CUDA build (several GB).
# TORCH_VERSION must equal the pin in pyproject.toml (tests/test_deploy.py checks it).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_VERSION=2.13.0

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    AGX_DATA_DIR=/var/lib/agx \
    MALLOC_ARENA_MAX=2 \
    WEB_CONCURRENCY=2

WORKDIR /app

# The same script as `make install`, limited to what the server itself runs.
COPY scripts/install-system-deps.sh scripts/
RUN scripts/install-system-deps.sh graphviz && rm -rf /var/lib/apt/lists/*

RUN pip install --no-cache-dir --index-url "$TORCH_INDEX_URL" "torch==$TORCH_VERSION"

# Dependencies from pyproject.toml before the code, so a code change reuses this layer.
# The install is editable because static/ and templates/ live beside app/, not inside it.
COPY pyproject.toml README.md ./
RUN mkdir app && touch app/__init__.py && pip install --no-cache-dir -e .
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
# uvicorn starts WEB_CONCURRENCY worker processes (2, as `make run`).
# --proxy-headers trusts X-Forwarded-* only from FORWARDED_ALLOW_IPS (uvicorn's default:
# 127.0.0.1); set that variable to the reverse proxy's address when there is one.
CMD ["uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers"]
