"""Process entry points: the API server and the standalone extraction worker."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket

import uvicorn

from service.settings import Settings

log = logging.getLogger("heedful")


def serve(settings: Settings) -> int:
    from service.app import create_app

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="info",
        # access logs carry query strings (user ids); heedful's own metrics cover request counts
        access_log=False,
    )
    return 0


def run_worker(settings: Settings) -> int:
    """A standalone extraction worker; several can run side by side against one Redis and one Qdrant server."""
    if not settings.qdrant_url:
        raise SystemExit(
            "heedful worker needs HEEDFUL_QDRANT_URL: the embedded store belongs to one process, so with it "
            "the worker runs inside `heedful serve` (HEEDFUL_EMBEDDED_WORKER, on by default)"
        )
    return asyncio.run(_worker(settings.model_copy(update={"embedded_worker": False, "dev_key": False})))


async def _worker(settings: Settings) -> int:
    from memory.metrics import start_metrics_server
    from service.wiring import build

    components = await build(settings)
    start_metrics_server(settings.worker_metrics_port)
    stop = components.stopping
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    consumer = f"worker-{socket.gethostname()}-{os.getpid()}"
    log.info("extraction worker %s consuming %s", consumer, settings.stream_key)
    try:
        await components.worker(consumer).run(stop)
    finally:
        await components.close()
    return 0
