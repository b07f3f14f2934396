"""A poison entry lands in the dead-letter stream with its error after max_attempts deliveries, while the
conversation queued beside it is extracted and acknowledged (real Redis, real store, real model)."""

from __future__ import annotations

import asyncio
import time

import pytest

from memory.conversations import Conversation
from memory.llm.embedded import EmbeddedLLM
from service.wiring import Components
from tests.worker.harness import WatchedLLM, worker_with

pytestmark = pytest.mark.integration

DRAIN_TIMEOUT_S = 600  # one real extraction on a busy 2-core machine, with room to spare


def conversation(user: str, text: str) -> Conversation:
    return Conversation.model_validate(
        {
            "user_id": user,
            "conversation_id": "c1",
            "messages": [{"role": "user", "content": text}, {"role": "assistant", "content": "Good to know."}],
        }
    )


async def drain(components: Components, run_once, timeout_s: float) -> None:
    """Runs the worker until the stream is empty and nothing is pending, as its loop would."""
    s = components.settings
    deadline = time.monotonic() + timeout_s
    while True:
        await run_once()
        length = await components.redis.xlen(s.stream_key)
        pending = (await components.redis.xpending(s.stream_key, s.consumer_group))["pending"]
        if length == 0 and pending == 0:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"stream not drained within {timeout_s:.0f}s: {length} entries, {pending} pending")
        await asyncio.sleep(s.worker_claim_idle_ms / 1000)


async def test_poison_entries_are_dead_lettered_while_a_good_conversation_flows(
    components: Components, llm: EmbeddedLLM
):
    s, log = components.settings, components.conversations
    # ahead of the good conversation in the same batch: an entry no worker can read, and a corrupt body
    unreadable = (await components.redis.xadd(s.stream_key, {"tenant": "acme:pat"})).decode()
    corrupt = await log.append("acme:pat", conversation("pat", "I play the oboe."))
    await components.redis.hset(log.conv_key("acme:pat", "c1"), "body", "{not json")  # type: ignore[misc]
    good = await log.append("acme:gus", conversation("gus", "I grow tomatoes on my balcony."))
    assert corrupt.status == good.status == "queued"

    watched = WatchedLLM(llm)
    worker = worker_with(components, watched)
    await drain(components, worker.run_once, DRAIN_TIMEOUT_S)

    dead = {fields[b"entry"].decode(): fields for _, fields in await components.redis.xrange(s.dead_letter_stream)}
    assert set(dead) == {unreadable, corrupt.entry_id}, "exactly the two poison entries are dead-lettered"
    for entry, fields in dead.items():
        assert int(fields[b"attempts"]) == s.worker_max_attempts + 1, entry
    assert b"Invalid JSON" in dead[corrupt.entry_id][b"error"]
    assert b"conversation" in dead[unreadable][b"error"], "the dead letter says what was wrong with the entry"
    assert dead[corrupt.entry_id][b"tenant"] == b"acme:pat", "operators can see whose conversation failed"

    # the good conversation was extracted once and acknowledged, not retried
    assert good.entry_id not in dead
    assert len(watched.answers) == 1, watched.answers
    assert await components.redis.hlen(log.errors_key) == 0  # type: ignore[misc]
    assert await log.load("acme:gus", "c1") is not None, "its raw conversation is kept for evidence"
