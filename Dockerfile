# syntax=docker/dockerfile:1
# pim API / worker image.
#   docker build -t pim .
#   docker run -e PIM_DATABASE_URL=... -e PIM_REDIS_URL=... -e PIM_CLICKHOUSE_URL=... \
#              -e PIM_JWT_SECRET=... -p 8000:8000 pim          # API
#   docker run ... pim pim worker                               # arq worker
#   docker run ... pim pim migrate                              # migrations
# See compose.yaml for the whole stack.

ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------- builder
FROM ${PYTHON_IMAGE} AS builder
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /uvx /bin/
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app

# Dependencies first (cached until pyproject.toml / uv.lock change).
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project

# Then the project itself. It is installed editable (a .pth pointing at /app),
# so the final stage's /app/app, /app/migrations and /app/alembic.ini are the
# code that runs (`pim migrate` finds alembic.ini next to the app package).
COPY app ./app
COPY workers ./workers
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev

# ---------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/app/.venv/bin:$PATH \
    PIM_ENV=production
RUN groupadd --system pim && useradd --system --gid pim --home-dir /app --no-create-home pim
WORKDIR /app
COPY --from=builder --chown=pim:pim /app/.venv /app/.venv
COPY --chown=pim:pim pyproject.toml README.md alembic.ini ./
COPY --chown=pim:pim app ./app
COPY --chown=pim:pim workers ./workers
COPY --chown=pim:pim migrations ./migrations
USER pim
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"]
CMD ["pim", "serve", "--host", "0.0.0.0", "--port", "8000"]
