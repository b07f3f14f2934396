"""Health, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError

from memory.metrics import refresh_stream_gauges
from service.deps import AppDep, ComponentsDep

router = APIRouter(tags=["ops"])

READY_TIMEOUT_S = 2.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up (liveness)."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(components: ComponentsDep) -> JSONResponse:
    """Redis, the memory store and the models answer (readiness)."""
    checks: dict[str, str] = {}

    async def check(name: str, probe: object) -> None:
        try:
            await asyncio.wait_for(probe, READY_TIMEOUT_S)  # type: ignore[arg-type]
            checks[name] = "ok"
        except Exception as exc:  # any failure means not ready; the reason is reported, not raised
            checks[name] = f"error: {type(exc).__name__}"

    await check("redis", components.redis.ping())
    await check("store", components.store.ready())
    await check("embedder", components.embed(["ready"]))
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics(_: AppDep, components: ComponentsDep) -> Response:
    """Prometheus exposition; scrape with an app API key as bearer credentials.

    The stream gauges are read from Redis on each scrape, so they are current even while this process's
    worker is busy with a long batch (or when no worker runs here)."""
    s = components.settings
    with contextlib.suppress(RedisError):  # Redis away: the last values stay, the other metrics still serve
        await refresh_stream_gauges(components.redis, s.stream_key, s.consumer_group, s.dead_letter_stream)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
