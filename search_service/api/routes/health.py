"""`/healthz` (liveness), `/readyz` (readiness: database, migrations, model, vector copy), `/metrics`."""

from __future__ import annotations

from litestar import MediaType, Response, get
from litestar.di import NamedDependency

from search_service.api.errors import RETRY_AFTER_S
from search_service.api.runtime import Runtime
from search_service.api.schemas import HEALTHZ_RESPONSES, METRICS_RESPONSES, READYZ_RESPONSES, Health, Readiness


@get(
    "/healthz",
    summary="Liveness",
    description="The process is up and serving HTTP (says nothing about the database or the model).",
    tags=["health"],
    responses=HEALTHZ_RESPONSES,
)
async def healthz() -> Health:
    return Health(status="ok")


@get(
    "/readyz",
    summary="Readiness",
    description=(
        "Ready when the database answers, migrations are at head, the model is loaded and warmed, the vector copy "
        "is loaded and the secret key (PLINQY_SECRET_KEY) is usable. `checks.suggestions` says whether the "
        "suggestion index is built yet (not waited for). It answers within the statement timeout "
        "(PLINQY_STATEMENT_TIMEOUT_MS, 2 s) and half a second, a wait for a database connection included: a database "
        "that has not answered by then, stalled or locked, is `database: slow`."
    ),
    tags=["health"],
    responses=READYZ_RESPONSES,
)
async def readyz(rt: NamedDependency[Runtime]) -> Response[Readiness]:
    readiness = await rt.readiness()
    if readiness.status == "ready":
        return Response(readiness, status_code=200)
    return Response(readiness, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})


@get(
    "/metrics",
    summary="Prometheus metrics",
    description="Latency histograms by route and strategy, pool usage, query-embedding cache hit rate.",
    tags=["health"],
    media_type=MediaType.TEXT,
    responses=METRICS_RESPONSES,
)
async def metrics(rt: NamedDependency[Runtime]) -> Response[bytes]:
    return Response(rt.metrics.render(), media_type="text/plain; version=0.0.4")


HEALTH_ROUTES = [healthz, readyz, metrics]
