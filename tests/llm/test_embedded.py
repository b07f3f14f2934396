"""The real SmolLM2-135M-Instruct in-process: answers, streams, constrained JSON, concurrency.

Uses the converted-weights cache the service uses by default (var/models/smollm2), so only the first
run on a machine pays for the GGUF conversion.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from memory.llm import ChatMessage, LLMError
from memory.llm.embedded import EmbeddedLLM

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = Path(os.environ.get("HEEDFUL_TEST_SMOLLM2_CACHE", ROOT / "var" / "models" / "smollm2"))
CAPITAL = [ChatMessage(role="user", content="What is the capital of France?")]
CITY_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 40},
        "country": {"type": "string", "maxLength": 40},
    },
    "required": ["city", "country"],
    "additionalProperties": False,
}
CITY_PROMPT = [ChatMessage(role="user", content="Give the capital of France and its country as JSON.")]


@pytest.fixture(scope="module")
def llm() -> Iterator[EmbeddedLLM]:
    # Sync fixture: EmbeddedLLM is not tied to an event loop, so each test's own loop can use it.
    model = EmbeddedLLM(CACHE_DIR, threads=2)
    yield model
    asyncio.run(model.aclose())


async def test_answers_a_chat(llm: EmbeddedLLM) -> None:
    answer = await llm.complete(CAPITAL, max_tokens=30)

    assert "Paris" in answer.text
    assert answer.prompt_tokens > 10
    assert 0 < answer.completion_tokens <= 30


async def test_streams_the_same_answer_in_pieces(llm: EmbeddedLLM) -> None:
    whole = await llm.complete(CAPITAL, max_tokens=30)

    pieces = [piece async for piece in llm.stream(CAPITAL, max_tokens=30)]

    assert len(pieces) > 1
    assert "".join(pieces).strip() == whole.text.strip()


async def test_json_schema_output_parses_and_has_the_shape(llm: EmbeddedLLM) -> None:
    answer = await llm.complete(CITY_PROMPT, max_tokens=80, json_schema=CITY_SCHEMA)

    parsed = json.loads(answer.text)
    assert set(parsed) == {"city", "country"}
    assert all(isinstance(value, str) for value in parsed.values())


async def test_json_cut_short_is_a_clear_error(llm: EmbeddedLLM) -> None:
    with pytest.raises(LLMError, match="max_tokens=4"):
        await llm.complete(CITY_PROMPT, max_tokens=4, json_schema=CITY_SCHEMA)


async def test_unusable_schema_is_a_clear_error(llm: EmbeddedLLM) -> None:
    with pytest.raises(LLMError, match="json_schema"):
        await llm.complete(CITY_PROMPT, max_tokens=20, json_schema={"type": "no-such-type"})


async def test_concurrent_requests_get_the_answers_they_would_get_alone(llm: EmbeddedLLM) -> None:
    colors = [ChatMessage(role="user", content="Name three colors.")]
    alone = [(await llm.complete(CAPITAL, max_tokens=10)).text, (await llm.complete(colors, max_tokens=10)).text]

    together = await asyncio.gather(llm.complete(CAPITAL, max_tokens=10), llm.complete(colors, max_tokens=10))

    assert [answer.text for answer in together] == alone


async def test_generation_leaves_the_event_loop_free(llm: EmbeddedLLM) -> None:
    await llm.load()
    generation = asyncio.create_task(llm.complete(CAPITAL, max_tokens=20))
    ticks = 0
    while not generation.done():
        await asyncio.sleep(0.01)
        ticks += 1
    await generation
    assert ticks >= 5  # a blocked loop would tick once, after generation ended


async def test_abandoned_stream_frees_the_model(llm: EmbeddedLLM) -> None:
    stream = llm.stream([ChatMessage(role="user", content="Write a long story about the sea.")], max_tokens=200)
    async for _ in stream:
        break
    await stream.aclose()  # type: ignore[attr-defined]

    answer = await llm.complete(CAPITAL, max_tokens=20)
    assert "Paris" in answer.text


async def test_later_starts_reuse_the_converted_weights(llm: EmbeddedLLM) -> None:
    await llm.load()
    weights = CACHE_DIR / "model.safetensors"
    written = weights.stat().st_mtime_ns

    again = EmbeddedLLM(CACHE_DIR, threads=1)
    await again.load()
    await again.aclose()

    assert weights.stat().st_mtime_ns == written
