"""Faults with real processes: Redis restarted under the API, the vector store and the LLM unavailable.

Each test states what was lost in a "Lost:" line of its docstring (bench/reliability.py reports it)."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from qdrant_client import AsyncQdrantClient

from memory.llm import ChatMessage, Completion
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
    """Redis is killed (SIGKILL) between two conversations and started again on the same append-only file.

    Lost: nothing: the conversation sent while Redis was down got 503 with Retry-After and "nothing was stored";
    after the restart the API reconnects by itself and the stream holds exactly the acknowledged entries."""
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


class RecordingLLM:
    """Stands in for the generator: records what it was asked and answers a fixed text (the store is under test)."""

    model_name = "recording"

    def __init__(self) -> None:
        self.asked: list[list[ChatMessage]] = []

    async def complete(self, messages: list[ChatMessage], **_: Any) -> Completion:
        self.asked.append(messages)
        return Completion(text="How about a vegetable curry?")

    async def aclose(self) -> None:
        return None


async def test_vector_store_down_means_a_generic_answer(
    components: Components, client: httpx.AsyncClient, app_key: str
):
    """/respond while the vector store does not answer (a Qdrant server on a closed port), context-only and
    generating.

    Lost: nothing: both answer 200 with personalized false and no memory (the model is asked without any), and
    once the store is back the user's memory is listed as before."""
    await client.post("/v1/conversations", json=conversation("dana"), headers=bearer(app_key))
    await remember(components, "acme:dana", "is vegetarian")
    dead = QdrantServerMemoryStore(AsyncQdrantClient(url=f"http://127.0.0.1:{free_port()}", timeout=1), "gone")
    generator = RecordingLLM()
    live, components.store = components.store, dead
    own_llm, components.llm = components.llm, generator
    ask = {"user_id": "dana", "messages": [{"role": "user", "content": "Dinner idea?"}]}
    try:
        context = await client.post("/respond", json={**ask, "options": {"generate": False}}, headers=bearer(app_key))
        answered = await client.post("/respond", json=ask, headers=bearer(app_key))
    finally:
        components.store, components.llm = live, own_llm
        await dead.close()
    for response in (context, answered):
        assert response.status_code == 200, response.text
        assert response.json()["personalized"] is False and response.json()["memories"] == []
        assert "memory store unavailable" in response.json()["notes"][0]
    assert answered.json()["answer"] == "How about a vegetable curry?"
    [messages] = generator.asked
    assert not [m for m in messages if "vegetarian" in m.content], "the model was given no memory"

    listed = await client.get("/v1/memories", params={"user_id": "dana"}, headers=bearer(app_key))
    assert [m["text"] for m in listed.json()["memories"]] == ["is vegetarian"], "the outage lost no memory"


async def test_llm_down_or_slow_gives_503_or_504(tmp_path: Path):
    """/respond, plain and streamed, with the LLM server down (closed port) or hung (takes the request, never
    answers; 1.5 s timeout).

    Lost: nothing: no 500; down answers 503 and hung 504 naming the language model, and a stream that has
    already sent its 200 ends with an error event carrying the same status."""
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


# What a model would answer for conversation(): one attribute, quoted from the user's turn 0.
EXTRACTED = {
    "attributes": [{"statement": "is vegetarian", "kind": "preference", "evidence_turns": [0], "confidence": 0.95}]
}


class ModelServer:
    """An OpenAI-compatible chat server on a port of its own: down until `listen`, then hung (reads each request
    and never answers) or up (answers every request with `answer`)."""

    def __init__(self, answer: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.answer = answer
        self.hung = True
        self.requests = 0
        self._server: asyncio.Server | None = None
        self._closing = asyncio.Event()

    async def listen(self, *, hung: bool) -> None:
        self.hung = hung
        if self._server is None:
            self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def close(self) -> None:
        self._closing.set()  # lets hung handlers end
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            sizes = [
                line.split(b":", 1)[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
            ]
            await reader.readexactly(int(sizes[0]) if sizes else 0)
            self.requests += 1
            if self.hung:
                await self._closing.wait()
                return
            choice = {"message": {"role": "assistant", "content": self.answer}, "finish_reason": "stop"}
            payload = json.dumps({"choices": [choice]}).encode()
            head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(payload)}\r\n"
            writer.write(head.encode() + b"connection: close\r\n\r\n" + payload)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client gave up (its timeout): nothing to answer
        finally:
            writer.close()


async def test_llm_down_or_slow_during_extraction_leaves_the_entry_queued_for_a_retry(tmp_path: Path):
    """The worker extracts a queued conversation through an LLM server that is down (closed port), then hung
    (1.5 s timeout), then back, one delivery each.

    Lost: nothing: after each failure the entry stays pending (not acknowledged, not dead-lettered) with the
    error recorded; on the third delivery it is extracted, its memory stored and the entry acknowledged."""
    model = ModelServer(json.dumps(EXTRACTED))
    settings = test_settings(
        tmp_path,
        llm_url=model.url,
        llm_timeout_s=1.5,
        llm_retries=0,
        worker_block_ms=100,
        worker_claim_idle_ms=300,
        worker_max_attempts=3,
    )
    components = await build(settings)
    await components.start()  # creates the consumer group, as `heedful serve` does
    app = create_app(components=components)
    app.state.components = components
    key = await components.keys.create("acme")
    errors = components.conversations.errors_key
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            queued = await client.post("/v1/conversations", json=conversation("vic"), headers=bearer(key))
        assert queued.status_code == 202
        entry = queued.json()["entry_id"]
        worker = components.worker("w1")

        async def delivery_fails_with(error: str) -> None:
            assert await worker.run_once() == 1
            assert await pending(components) == [entry], f"{error}: the entry stays pending for a retry"
            assert (await components.redis.hget(errors, entry) or b"").decode().startswith(error)  # type: ignore[misc]
            assert await components.store.count("acme:vic") == 0
            await asyncio.sleep(settings.worker_claim_idle_ms / 1000 + 0.2)  # idle long enough to be reclaimed

        await delivery_fails_with("LLMUnavailable")  # nothing listens on the model's port
        await model.listen(hung=True)
        await delivery_fails_with("LLMTimeout")
        assert model.requests == 1, "the hung server did take the request"

        await model.listen(hung=False)
        assert await worker.run_once() == 1
        assert await pending(components) == []
        assert await components.redis.xlen(settings.stream_key) == 0, "acknowledged once extracted"
        assert await components.redis.xlen(settings.dead_letter_stream) == 0
        assert await components.redis.hget(errors, entry) is None  # type: ignore[misc]
        stored = await components.store.page("acme:vic", limit=10)
        assert [m.text for m in stored.memories] == ["is vegetarian"]
    finally:
        await model.close()
        await components.close()
        purge(settings)


async def pending(components: Components) -> list[str]:
    s = components.settings
    rows = await components.redis.xpending_range(s.stream_key, s.consumer_group, min="-", max="+", count=100)
    return [row["message_id"].decode() for row in rows]
