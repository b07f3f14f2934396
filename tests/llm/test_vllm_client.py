"""OpenAIHTTPLLM against a real vLLM server serving SmolLM2-135M-Instruct (one start per session)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from memory.llm import ChatMessage
from memory.llm.openai_http import OpenAIHTTPLLM

pytestmark = pytest.mark.vllm

CAPITAL = [ChatMessage(role="user", content="What is the capital of France?")]


@pytest.fixture
async def llm(vllm_base_url: str) -> AsyncIterator[OpenAIHTTPLLM]:
    client = OpenAIHTTPLLM(f"{vllm_base_url}/v1", "SmolLM2-135M-Instruct", timeout_s=120)
    yield client
    await client.aclose()


async def test_server_is_healthy(llm: OpenAIHTTPLLM) -> None:
    assert await llm.healthy()


async def test_completion_answers_with_usage(llm: OpenAIHTTPLLM) -> None:
    answer = await llm.complete(CAPITAL, max_tokens=30)

    assert "Paris" in answer.text
    assert answer.prompt_tokens > 10
    assert 0 < answer.completion_tokens <= 30


async def test_stream_yields_the_same_answer_in_pieces(llm: OpenAIHTTPLLM) -> None:
    whole = await llm.complete(CAPITAL, max_tokens=30)

    pieces = [piece async for piece in llm.stream(CAPITAL, max_tokens=30)]

    assert len(pieces) > 1
    assert "".join(pieces) == whole.text  # greedy decoding: same tokens either way


async def test_json_schema_output_parses_and_has_the_shape(llm: OpenAIHTTPLLM) -> None:
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string", "maxLength": 40},
            "country": {"type": "string", "maxLength": 40},
        },
        "required": ["city", "country"],
        "additionalProperties": False,
    }
    prompt = [ChatMessage(role="user", content="Give the capital of France and its country as JSON.")]

    answer = await llm.complete(prompt, max_tokens=80, json_schema=schema)

    parsed = json.loads(answer.text)
    assert set(parsed) == {"city", "country"}
    assert all(isinstance(value, str) for value in parsed.values())
