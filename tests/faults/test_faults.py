"""Faults with real processes: Redis restarted under the API, the vector store and the LLM unavailable.

Each test states what was lost: nothing the service acknowledged."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import redis
from qdrant_client import AsyncQdrantClient

from memory.stores.qdrant_server import QdrantServerMemoryStore
from service.app import create_app
from service.wiring import Components, build
from tests.api.test_ingest import conversation
from tests.api.test_memories import remember
from tests.conftest import bearer, free_port, purge, test_settings

pytestmark = pytest.mark.integration


class OwnRedis:
    """A redis-server of the test's own, with an append-only file so a restart keeps what it acknowledged."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.dir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is needed for the restart test (apt-get install redis-server)"
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port).ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("own redis-server did not start")

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    if server.process and server.process.poll() is None:
        server.kill()


@pytest.fixture
async def app_on(own_redis: OwnRedis, tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Components, str]]:
    settings = test_settings(tmp_path, redis_url=f"redis://127.0.0.1:{own_redis.port}/0")
    components = await build(settings)
    await components.start()
    app = create_app(components=components)
    app.state.components = components
    key = await components.keys.create("acme")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        yield client, components, key
    await components.close()


async def test_redis_restart_answers_503_loses_nothing_and_recovers(app_on, own_redis: OwnRedis):
    client, components, key = app_on
    acknowledged = []
    first = await client.post("/v1/conversations", json=conversation("u1", "c1"), headers=bearer(key))
    assert first.status_code == 202
    acknowledged.append(first.json()["entry_id"])

    own_redis.kill()
    down = await client.post("/v1/conversations", json=conversation("u1", "c2"), headers=bearer(key))
    assert down.status_code == 503 and down.headers["retry-after"]
    assert "nothing was stored" in down.json()["detail"]

    own_redis.start()  # same directory: the append-only file brings back what was acknowledged
    for _ in range(50):  # the API reconnects by itself; no restart of heedful
        again = await client.post("/v1/conversations", json=conversation("u1", "c2"), headers=bearer(key))
        if again.status_code == 202:
            break
        await asyncio.sleep(0.1)
    assert again.status_code == 202
    acknowledged.append(again.json()["entry_id"])
    entries = [e.decode() for e, _ in await components.redis.xrange(components.settings.stream_key)]
    assert entries == acknowledged, "every acknowledged conversation is still queued; nothing was lost"


async def test_vector_store_down_means_a_generic_answer(
    components: Components, client: httpx.AsyncClient, app_key: str
):
    await client.post("/v1/conversations", json=conversation("dana"), headers=bearer(app_key))
    await remember(components, "acme:dana", "is vegetarian")
    dead = QdrantServerMemoryStore(AsyncQdrantClient(url=f"http://127.0.0.1:{free_port()}", timeout=1), "gone")
    live, components.store = components.store, dead
    try:
        ask = {
            "user_id": "dana",
            "messages": [{"role": "user", "content": "Dinner idea?"}],
            "options": {"generate": False},
        }
        response = await client.post("/respond", json=ask, headers=bearer(app_key))
    finally:
        components.store = live
        await dead.close()
    assert response.status_code == 200
    assert response.json()["personalized"] is False
    assert "memory store unavailable" in response.json()["notes"][0]


async def test_llm_down_or_slow_gives_503_or_504(tmp_path: Path):
    slow_port = free_port()

    async def never_answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)
        writer.close()

    slow = await asyncio.start_server(never_answers, "127.0.0.1", slow_port)
    cases = {f"http://127.0.0.1:{free_port()}/v1": 503, f"http://127.0.0.1:{slow_port}/v1": 504}
    try:
        for url, expected in cases.items():
            settings = test_settings(tmp_path / str(expected), llm_url=url, llm_timeout_s=1.5, llm_retries=1)
            components = await build(settings)
            app = create_app(components=components)
            app.state.components = components
            key = await components.keys.create("acme")
            ask = {"user_id": "u", "messages": [{"role": "user", "content": "hi"}]}
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
                response = await c.post("/respond", json=ask, headers=bearer(key))
                streamed = await c.post("/respond", json={**ask, "options": {"stream": True}}, headers=bearer(key))
            # a stream has already answered 200 when the model fails: the failure is its last event
            assert streamed.status_code == 200 and "event: error" in streamed.text
            assert f'"status": {expected}' in streamed.text
            assert response.status_code == expected, (url, response.text)
            assert "language model" in response.json()["detail"]
            await components.close()
            purge(settings)
    finally:
        slow.close()
