# syntax=docker/dockerfile:1
# mediagraph: one image, two roles.
#   API:    docker run -p 8000:8000 IMAGE            (default CMD: serve on 0.0.0.0:8000)
#   worker: docker run IMAGE worker
#   ops:    docker run IMAGE init-resources | sweep | dlq list
# Configuration comes from MEDIAGRAPH_* environment variables (see .env.example); nothing is
# baked in. Pin the base image by digest in a release pipeline (python:3.11-slim@sha256:...).
ARG PYTHON_IMAGE=python:3.11-slim

# ---- builder: the Makefile's install steps, into a relocatable-by-copy venv at /opt/venv ----
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# The lock alone first: the dependency layer is rebuilt only when the lock changes.
COPY requirements.lock ./
RUN python -m pip install --upgrade "pip>=24" \
 && python -m pip install -r requirements.lock
# Then the project itself, without touching the locked dependencies (as `make` does, minus -e).
COPY . .
RUN python -m pip install --no-deps . \
 && python -m compileall -q /opt/venv/lib \
 && python -c "import pyvips, pillow_heif; pyvips.Image.black(1, 1).webpsave_buffer()"

# ---- runtime: the venv and nothing else; no compilers, no sources, no root ----
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="mediagraph" \
      org.opencontainers.image.description="GraphQL media service: API (serve) and S3-event worker (worker)"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# ffmpeg/ffprobe: videos are accepted only after ffprobe has checked the container, and ffmpeg
# grabs the poster frame (MEDIAGRAPH_FFPROBE_PATH / MEDIAGRAPH_FFMPEG_PATH default to them). The
# same Debian package `make system-deps` installs for the tests. ClamAV is not in the image:
# clamd runs as its own service (MEDIAGRAPH_CLAMD_HOST), as in the tests.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ffmpeg \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 mediagraph \
 && useradd --system --uid 10001 --gid mediagraph --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin mediagraph
COPY --from=builder /opt/venv /opt/venv
# An empty working directory: Settings reads ./.env if present, and none is shipped.
WORKDIR /app
USER 10001:10001
EXPOSE 8000
# Only the API serves HTTP: when PID 1's command line is not `serve` (the worker, a one-off
# task) the check passes without probing. No curl in the image: python's urllib does the GET.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request\nargs = open('/proc/1/cmdline', 'rb').read().split(b'\\0')\nif b'serve' not in args:\n    sys.exit(0)\nwith urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4) as r:\n    sys.exit(0 if r.status == 200 else 1)"]
ENTRYPOINT ["mediagraph"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
