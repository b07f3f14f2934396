"""OpenAIHTTPLLM against scripted servers: httpx's MockTransport for request/response shapes and
retries, and a raw asyncio TCP server for what only a real socket shows (refused connections, stalls)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from memory.llm import ChatMessage, LLMError, LLMTimeout, LLMUnavailable
from memory.llm.openai_http import OpenAIHTTPLLM

MODEL = "SmolLM2-135M-Instruct"
HELLO = [ChatMessage(role="user", content="hello")]
SCHEMA = {
    "title": "Capital city",
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}


def completion_body(text: str, finish_reason: str = "stop") -> dict[str, Any]:
    return {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14},
    }


def sse(*events: str) -> bytes:
    return "".join(f"{event}\n\n" for event in events).encode()


def chunk(content: str | None = None, **delta: Any) -> str:
    if content is not None:
        delta["content"] = content
    return "data: " + json.dumps({"choices": [{"index": 0, "delta": delta, "finish_reason": None}]})


class Recorder:
    """A MockTransport handler that answers from a script and keeps the requests it saw."""

    def __init__(self, *responses: httpx.Response | Exception) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.responses.pop(0) if len(self.responses) > 1 else self.responses[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests]


def client(handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any) -> OpenAIHTTPLLM:
    kwargs.setdefault("retries", 2)
    return OpenAIHTTPLLM("http://llm.test/v1/", MODEL, backoff_s=0, transport=httpx.MockTransport(handler), **kwargs)


async def test_completion_returns_text_and_token_usage() -> None:
    server = Recorder(httpx.Response(200, json=completion_body("Paris.")))
    llm = client(server, api_key="sk-test")

    answer = await llm.complete(HELLO, max_tokens=20, temperature=0.3)

    assert (answer.text, answer.prompt_tokens, answer.completion_tokens) == ("Paris.", 11, 3)
    request = server.requests[0]
    assert request.url == "http://llm.test/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test"
    assert server.bodies()[0] == {
        "model": MODEL,
        "messages": [{"role": "user", "content": "hello"}],
        "max_tokens": 20,
        "temperature": 0.3,
    }


async def test_json_schema_goes_in_response_format() -> None:
    server = Recorder(httpx.Response(200, json=completion_body('{"city": "Paris"}')))

    answer = await client(server).complete(HELLO, json_schema=SCHEMA)

    assert json.loads(answer.text) == {"city": "Paris"}
    body = server.bodies()[0]
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "Capital_city", "schema": SCHEMA, "strict": True},
    }
    assert "guided_json" not in body  # silently ignored by vLLM 0.32


async def test_json_cut_at_max_tokens_is_a_clear_error() -> None:
    server = Recorder(httpx.Response(200, json=completion_body('{"city": "Par', finish_reason="length")))

    with pytest.raises(LLMError, match="max_tokens=8"):
        await client(server).complete(HELLO, max_tokens=8, json_schema=SCHEMA)


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
async def test_overload_and_server_errors_are_retried(status: int) -> None:
    server = Recorder(
        httpx.Response(status, json={"error": {"message": "busy"}}, headers={"retry-after": "0"}),
        httpx.Response(200, json=completion_body("ok")),
    )

    answer = await client(server).complete(HELLO)

    assert answer.text == "ok"
    assert len(server.requests) == 2


async def test_server_errors_after_all_retries_raise_unavailable() -> None:
    server = Recorder(httpx.Response(503, json={"error": {"message": "engine dead"}}))

    with pytest.raises(LLMUnavailable, match="engine dead"):
        await client(server, retries=2).complete(HELLO)
    assert len(server.requests) == 3


@pytest.mark.parametrize("status", [400, 401, 404, 422])
async def test_client_errors_are_not_retried(status: int) -> None:
    server = Recorder(httpx.Response(status, json={"error": {"message": "model does not exist"}}))

    with pytest.raises(LLMError, match="model does not exist") as raised:
        await client(server).complete(HELLO)
    assert not isinstance(raised.value, LLMUnavailable | LLMTimeout)
    assert len(server.requests) == 1


async def test_connect_errors_are_retried_then_succeed() -> None:
    server = Recorder(httpx.ConnectError("refused"), httpx.Response(200, json=completion_body("ok")))

    assert (await client(server).complete(HELLO)).text == "ok"
    assert len(server.requests) == 2


async def test_refused_connection_raises_unavailable() -> None:
    llm = OpenAIHTTPLLM(f"http://127.0.0.1:{closed_port()}", MODEL, retries=1, backoff_s=0.01)

    with pytest.raises(LLMUnavailable, match="cannot connect"):
        await llm.complete(HELLO)
    assert not await llm.healthy()
    await llm.aclose()


async def test_silent_server_raises_timeout_without_retry() -> None:
    async with stalling_server(b"") as (port, connections):
        llm = OpenAIHTTPLLM(f"http://127.0.0.1:{port}", MODEL, timeout_s=0.5, retries=2, backoff_s=0)
        with pytest.raises(LLMTimeout):
            await llm.complete(HELLO)
        await llm.aclose()
    assert connections == [1]  # the server had the request: a retry would only add load


async def test_stream_yields_content_deltas_in_order() -> None:
    body = sse(
        chunk("", role="assistant"),
        ": keep-alive",
        chunk("Hel"),
        chunk("lo"),
        chunk(None),
        chunk(" there."),
        'data: {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3}}',
        "data: [DONE]",
    )
    server = Recorder(httpx.Response(200, content=body, headers={"content-type": "text/event-stream"}))

    deltas = [d async for d in client(server).stream(HELLO, max_tokens=9)]

    assert deltas == ["Hel", "lo", " there."]
    assert server.bodies()[0]["stream"] is True


async def test_stream_retries_before_the_first_token() -> None:
    server = Recorder(
        httpx.Response(503),
        httpx.Response(200, content=sse(chunk("ok"), "data: [DONE]")),
    )

    assert [d async for d in client(server).stream(HELLO)] == ["ok"]
    assert len(server.requests) == 2


async def test_stream_error_event_raises() -> None:
    body = sse(chunk("par"), 'data: {"error": {"message": "engine died", "code": 500}}')
    server = Recorder(httpx.Response(200, content=body))

    seen: list[str] = []
    with pytest.raises(LLMError, match="engine died"):
        async for delta in client(server).stream(HELLO):
            seen.append(delta)
    assert seen == ["par"]


async def test_stalled_stream_raises_timeout() -> None:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n" + http_chunk(
        sse(chunk("first"))
    )
    async with stalling_server(head) as (port, _):
        llm = OpenAIHTTPLLM(f"http://127.0.0.1:{port}", MODEL, timeout_s=0.5)
        seen: list[str] = []
        with pytest.raises(LLMTimeout):
            async for delta in llm.stream(HELLO):
                seen.append(delta)
        await llm.aclose()
    assert seen == ["first"]


async def test_healthy_checks_that_the_model_is_served() -> None:
    models = {"object": "list", "data": [{"id": MODEL, "object": "model"}]}
    assert await client(Recorder(httpx.Response(200, json=models))).healthy()

    other = {"object": "list", "data": [{"id": "some-other-model", "object": "model"}]}
    assert not await client(Recorder(httpx.Response(200, json=other))).healthy()
    assert not await client(Recorder(httpx.Response(503))).healthy()


# A raw TCP server: reads one request, writes `reply`, then holds the connection open without a word.


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


@asynccontextmanager
async def stalling_server(reply: bytes) -> AsyncIterator[tuple[int, list[int]]]:
    """Yields (port, connections): `connections` grows by one per accepted connection."""
    connections: list[int] = []
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        writers.append(writer)
        await read_request(reader)
        writer.write(reply)
        await writer.drain()
        await asyncio.sleep(3600)  # cancelled when the server closes

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1]), connections
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    lengths = [int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")]
    await reader.readexactly(lengths[0] if lengths else 0)
