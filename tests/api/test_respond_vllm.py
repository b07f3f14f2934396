"""End to end against a real vLLM server: /respond and /v1/chat/completions, streaming and not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import openai
import pytest

from service.app import create_app
from service.wiring import Components, build
from tests.api.test_ingest import conversation
from tests.api.test_memories import remember
from tests.conftest import bearer, purge, test_settings

pytestmark = [pytest.mark.integration, pytest.mark.vllm]


@pytest.fixture
async def vllm_client(tmp_path: Path, vllm_base_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, Components, str]]:
    settings = test_settings(tmp_path, llm_url=vllm_base_url, llm_model="SmolLM2-135M-Instruct", llm_timeout_s=120)
    components = await build(settings)
    await components.start()
    app = create_app(components=components)
    app.state.components = components
    key = await components.keys.create("acme")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://heedful.test", timeout=180
    ) as c:
        await c.post("/v1/conversations", json=conversation("vic"), headers=bearer(key))
        await remember(components, "acme:vic", "is vegetarian", "lives in Lisbon", "prefers short answers")
        yield c, components, key
    await components.close()
    purge(settings)


async def test_respond_through_vllm(vllm_client: tuple[httpx.AsyncClient, Components, str]):
    client, components, key = vllm_client
    assert type(components.llm).__name__ == "OpenAIHTTPLLM"
    ask = {
        "user_id": "vic",
        "messages": [{"role": "user", "content": "Suggest one dinner idea."}],
        "options": {"max_tokens": 24, "temperature": 0},
    }
    body = (await client.post("/respond", json=ask, headers=bearer(key))).json()
    assert body["answer"] and body["answer"].strip(), body
    assert body["timings_ms"]["generate"] > 0
    ask["options"]["stream"] = True
    async with client.stream("POST", "/respond", json=ask, headers=bearer(key)) as stream:
        lines = [line async for line in stream.aiter_lines()]
    events = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    assert events[0] == "memories" and events[-1] == "done" and events.count("delta") >= 1


async def test_chat_completions_through_vllm_with_the_openai_package(
    vllm_client: tuple[httpx.AsyncClient, Components, str],
):
    client, _, key = vllm_client
    oa = openai.AsyncOpenAI(
        base_url="http://heedful.test/v1",
        api_key=key,
        http_client=httpx.AsyncClient(transport=client._transport, timeout=180),
    )
    messages = [{"role": "user", "content": "What is a good weekend activity?"}]
    completion = await oa.chat.completions.create(
        model="heedful", messages=messages, user="vic", max_tokens=24, temperature=0
    )
    assert completion.choices[0].message.content.strip()
    assert completion.model_extra["heedful"]["response_id"].startswith("resp_")
    stream = await oa.chat.completions.create(
        model="heedful", messages=messages, user="vic", max_tokens=24, stream=True
    )
    chunks = [c async for c in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks).strip()
    assert chunks[-1].choices[0].finish_reason == "stop"
    await oa.close()
