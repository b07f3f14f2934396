"""The batch's claim keeper stops when its batch is done, even when Redis swallows the cancellation."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError

from memory.worker import ExtractionWorker, WorkerConfig


class SwallowingRedis:
    """Answers XPENDING slowly and, cancelled inside it, raises ConnectionError instead of CancelledError, as
    redis-py can (redis/redis-py#2028)."""

    def __init__(self) -> None:
        self.inside = asyncio.Event()
        self.calls = 0
        self.swallow = True

    async def xpending_range(self, *_: Any, **__: Any) -> list[dict[str, Any]]:
        self.calls += 1
        self.inside.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            if not self.swallow:
                raise
            raise RedisConnectionError("Connection closed by server.") from None
        return []


async def test_the_keeper_stops_with_its_batch_when_a_cancellation_is_swallowed() -> None:
    redis = SwallowingRedis()
    worker = SimpleNamespace(
        redis=redis,
        log=SimpleNamespace(stream="s"),
        config=WorkerConfig(group="g", consumer="c", dead_letter_stream="d", claim_idle_ms=30),
    )
    done = asyncio.Event()
    keeper = asyncio.create_task(ExtractionWorker._keep_claimed(worker, ["1-0"], done))  # type: ignore[arg-type]
    await asyncio.wait_for(redis.inside.wait(), timeout=5)

    done.set()  # what run_once does when its batch is handled
    keeper.cancel()
    finished, _ = await asyncio.wait({keeper}, timeout=5)

    redis.swallow = False  # let a keeper that did not stop be cancelled, so a failure here cannot hang the suite
    keeper.cancel()
    assert finished == {keeper}, "the keeper kept beating after its batch was done"
    assert redis.calls == 1
