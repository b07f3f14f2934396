"""Processing the same stream entry twice (a redelivery after a crash between commit and ack) stores nothing
twice and does not raise any memory's confidence (real Redis, real store, real model)."""

from __future__ import annotations

import warnings

import pytest

from memory.conversations import Conversation
from memory.llm.embedded import EmbeddedLLM
from memory.store import MemoryStore
from service.wiring import Components
from tests.worker.harness import WatchedLLM, worker_with

pytestmark = pytest.mark.integration

TENANT = "acme:ida"
CONVERSATION = Conversation.model_validate(
    {
        "user_id": "ida",
        "conversation_id": "c1",
        "messages": [
            {"role": "user", "content": "I'm a nurse and I work night shifts."},
            {"role": "assistant", "content": "That sounds demanding."},
            {"role": "user", "content": "It is. I prefer short, practical answers."},
        ],
    }
)


async def snapshot(store: MemoryStore, tenant: str) -> dict[str, tuple]:
    """Every memory of the user as the user would see it (what changes on a real edit, not timestamps)."""
    page = await store.page(tenant, limit=200)
    assert page.next_cursor is None
    return {
        m.id: (m.text, m.status, m.confidence, sorted((e.conversation_id, tuple(e.turn_ids)) for e in m.evidence))
        for m in page.memories
    }


async def test_the_same_entry_processed_twice_stores_nothing_twice(components: Components, llm: EmbeddedLLM):
    queued = await components.conversations.append(TENANT, CONVERSATION)
    [(_, raw)] = await components.redis.xrange(components.settings.stream_key)
    fields = {k.decode(): v.decode() for k, v in raw.items()}
    assert queued.status == "queued"
    watched = WatchedLLM(llm)
    worker = worker_with(components, watched)

    assert await worker.process(fields) == "stored"
    first = await snapshot(components.store, TENANT)
    assert await worker.process(fields) == "stored"
    again = await snapshot(components.store, TENANT)

    assert again == first, f"the replay changed the user's memories; the model said {watched.answers}"
    assert await components.store.count(TENANT) == len(first)
    assert len({text.casefold() for text, *_ in first.values()}) == len(first)
    if not first:
        warnings.warn(
            f"the model extracted no grounded memory, so the replay was checked on an empty set: {watched.answers}",
            stacklevel=1,
        )
