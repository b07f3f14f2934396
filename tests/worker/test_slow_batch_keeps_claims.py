"""A batch that takes far longer than `claim_idle_ms` (the real embedded model on CPU) stays with the worker
that holds it: a second worker polling beside it reclaims nothing, and every entry is delivered once.
Real Redis, real store, real model."""

from __future__ import annotations

import asyncio

import pytest

from memory.conversations import Conversation
from memory.llm.embedded import EmbeddedLLM
from service.settings import Settings
from service.wiring import Components
from tests.conftest import test_settings
from tests.worker.conftest import QUICK_RETRIES
from tests.worker.harness import WatchedLLM, worker_with

pytestmark = pytest.mark.integration

FINISH_TIMEOUT_S = 600
# Far below one model call (seconds on this CPU), and wide enough that a busy event loop does not miss the
# heartbeat (every third of it) by accident.
CLAIM_IDLE_MS = 1500


@pytest.fixture
def settings(tmp_path) -> Settings:
    return test_settings(tmp_path, **{**QUICK_RETRIES, "worker_claim_idle_ms": CLAIM_IDLE_MS})


def chat(user: str, text: str) -> Conversation:
    return Conversation.model_validate(
        {
            "user_id": user,
            "conversation_id": "c1",
            "messages": [{"role": "user", "content": text}, {"role": "assistant", "content": "Nice."}],
        }
    )


async def test_a_slow_batch_is_not_reclaimed_while_its_worker_lives(components: Components, llm: EmbeddedLLM):
    s = components.settings
    # Loaded first: loading holds the GIL for seconds at a time, which would stall the heartbeat for longer
    # than this test's short idle time (the service's default is a minute).
    await llm.load()
    texts = ["I run marathons.", "I collect vinyl records.", "I teach yoga on Sundays."]
    for i, text in enumerate(texts):
        await components.conversations.append(f"acme:u{i}", chat(f"u{i}", text))

    holder, watcher = WatchedLLM(llm), WatchedLLM(llm)
    first = worker_with(components, holder, consumer="holder")
    second = worker_with(components, watcher, consumer="watcher")
    batch = asyncio.create_task(first.run_once())
    await asyncio.wait_for(holder.entered.wait(), FINISH_TIMEOUT_S)
    stolen = 0
    while not batch.done():  # the second worker polls as its loop would, many idle periods over
        stolen += await second.run_once()
        await asyncio.sleep(s.worker_claim_idle_ms / 1000)
    assert await batch == len(texts)

    assert stolen == 0 and watcher.answers == [], f"reclaimed from a live worker: {stolen}, {watcher.answers}"
    assert len(holder.answers) == len(texts), "each conversation was extracted exactly once"
    assert await components.redis.xlen(s.dead_letter_stream) == 0
    assert await components.redis.xlen(s.stream_key) == 0, "every entry was acknowledged"
