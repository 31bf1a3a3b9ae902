# syntax=docker/dockerfile:1
# Production image of Plinqy Search: the API, the worker and the CLI, with the embedding model baked in.

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# The source lives at /app in both stages: migrations and SQL files are read from the checkout.
WORKDIR /app
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# The CPU build of torch first: the default wheel drags several GB of CUDA libraries into the image.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
# A C compiler for the native int8 rows kernel (setup.py), built into /app and copied with it.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml setup.py README.md alembic.ini ./
COPY search_service ./search_service
COPY embeddings ./embeddings
COPY migrations ./migrations
RUN pip install -e .
# Bake the ONNX export of the model into the image, so containers start warm and never need a hub.
ENV HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PLINQY_CACHE_DIR=/opt/plinqy-cache
RUN python -c "from search_service.settings import Settings; from embeddings.encoder import load_encoder; \
load_encoder(Settings.from_env().encoder).encode(['warm up'])"

FROM python:3.11-slim-bookworm
# /app is root's (the service cannot change its code), so the secret key lives in a directory of plinqy's:
# docker-compose.yml mounts one volume there for every container, which all need the same key.
RUN groupadd --system plinqy && useradd --system --gid plinqy --home-dir /app --shell /usr/sbin/nologin plinqy \
    && install -d -o plinqy -g plinqy -m 0700 /var/lib/plinqy/secrets
COPY --from=build /opt/venv /opt/venv
COPY --from=build --chown=plinqy:plinqy /opt/plinqy-cache /opt/plinqy-cache
COPY --from=build --chown=root:root /app /app
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
    PLINQY_CACHE_DIR=/opt/plinqy-cache PLINQY_SECRET_KEY_FILE=/var/lib/plinqy/secrets/plinqy.key
USER plinqy
EXPOSE 8000
# Healthy means ready: /readyz (the database answers, migrated, the model and the vector copy loaded), not /healthz
# (the process is up, the database maybe not): what `depends_on: condition: service_healthy` and
# `docker compose up --wait` wait for is an API that serves. A database blip does not flap it: unhealthy after 4
# failed checks in a row, a minute not ready; and Docker restarts no container for being unhealthy (a restart
# policy acts on an exit). The first 120 s (the vector copy loading) are not counted. A container of the image
# that runs no `serve` (worker, migrate) disables it (docker-compose.yml); `serve` on a port other than 8000
# needs the check's URL changed to match. See README.md (`docker compose up`).
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=4 \
  CMD ["python", "-m", "search_service.healthcheck", "http://127.0.0.1:8000/readyz"]
ENTRYPOINT ["plinqy-search"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
