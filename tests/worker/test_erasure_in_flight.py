"""Erasure under concurrency (issue 8 item 4): a user deleted while a worker holds one of their conversations
leaves nothing behind in Redis, in the store or on disk, and the worker brings nothing back."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from memory.llm.embedded import EmbeddedLLM
from service.wiring import Components
from tests.api.test_erasure import files_mentioning, redis_mentions
from tests.conftest import bearer
from tests.worker.harness import WatchedLLM, worker_with

pytestmark = pytest.mark.integration

SECRET = "zanzibar-quokka-7731"
NEEDLES = [b"acme:erin", SECRET.encode(), b"beekeeper"]
IN_FLIGHT_TIMEOUT_S = 180  # first call loads the model
FINISH_TIMEOUT_S = 600  # one extraction on a busy 2-core machine, with room to spare


def chat(conversation_id: str, text: str) -> dict:
    return {
        "user_id": "erin",
        "conversation_id": conversation_id,
        "messages": [{"role": "user", "content": text}, {"role": "assistant", "content": "Nice!"}],
    }


async def stream_state(components: Components) -> tuple[int, int]:
    s = components.settings
    pending = await components.redis.xpending(s.stream_key, s.consumer_group)
    return await components.redis.xlen(s.stream_key), int(pending["pending"])


async def test_erasing_a_user_while_the_worker_is_in_the_llm_call_leaves_nothing(
    client: httpx.AsyncClient, app_key: str, components: Components, llm: EmbeddedLLM
):
    """Erin is erased while the worker is inside the model call for her first conversation, her second queued.

    Lost: everything of erin, as asked, and nothing comes back: no trace of her in Redis, the store or the data dir,
    both entries gone from the stream, the second never extracted, and a later worker pass finds nothing to retry.
    The test has no second user, so it does not show that other users' data is untouched."""
    for conv, text in (("c1", f"I am a beekeeper and my codename is {SECRET}."), ("c2", "I keep six hives.")):
        queued = await client.post("/v1/conversations", json=chat(conv, text), headers=bearer(app_key))
        assert queued.status_code == 202 and queued.json()["status"] == "queued"
    watched = WatchedLLM(llm)
    worker = worker_with(components, watched)
    batch = asyncio.create_task(worker.run_once())  # takes both entries; extracts the first
    try:
        await asyncio.wait_for(watched.entered.wait(), IN_FLIGHT_TIMEOUT_S)
    except TimeoutError:
        batch.cancel()
        pytest.fail(f"the worker did not reach the LLM within {IN_FLIGHT_TIMEOUT_S}s")

    erased = await client.delete("/v1/memories", params={"user_id": "erin"}, headers=bearer(app_key))
    assert erased.status_code == 200
    assert erased.json()["stream_entries_deleted"] == 2, "both entries were still queued or in flight"
    assert watched.in_flight == 1, "the erasure must land while the extraction is still running"

    try:
        handled = await asyncio.wait_for(batch, FINISH_TIMEOUT_S)
    except TimeoutError:
        pytest.fail(f"the in-flight extraction did not finish within {FINISH_TIMEOUT_S}s")
    assert handled == 2
    assert len(watched.answers) == 1, "the second conversation is not extracted once its user is erased"

    assert await redis_mentions(components, NEEDLES) == []
    assert await components.store.count("acme:erin") == 0
    assert files_mentioning(components.settings.data_dir, SECRET.encode()) == []
    assert files_mentioning(components.settings.data_dir, b"beekeeper") == []
    assert await stream_state(components) == (0, 0)
    assert await worker.run_once() == 0, "nothing of the user is left to be retried later"
    assert await components.store.count("acme:erin") == 0


async def test_a_failed_entry_leaves_no_trace_once_its_user_is_erased(
    client: httpx.AsyncClient, app_key: str, components: Components
):
    """Erin's entry failed once (its error, quoting her, is kept for the retry), then she is erased.

    Lost: everything of erin, as asked: the recorded error goes with her (no trace in Redis) and the stream is
    empty, so the retry does not happen."""
    queued = await client.post(
        "/v1/conversations", json=chat("c1", f"My codename is {SECRET}."), headers=bearer(app_key)
    )
    assert queued.status_code == 202
    conv_key = components.conversations.conv_key("acme:erin", "c1")
    await components.redis.hset(conv_key, "body", f'{{"user_id": "erin", {SECRET} beekeeper')  # type: ignore[misc]
    worker = components.worker("w1")
    assert await worker.run_once() == 1  # fails before any extraction; the error is kept for the retry
    assert await stream_state(components) == (1, 1)
    assert await redis_mentions(components, [SECRET.encode()]), "the test must see the error before erasing"

    erased = await client.delete("/v1/memories", params={"user_id": "erin"}, headers=bearer(app_key))
    assert erased.status_code == 200

    assert await redis_mentions(components, NEEDLES) == []
    assert await stream_state(components) == (0, 0)
