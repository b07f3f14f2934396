"""`heedful serve` killed with SIGKILL while its embedded worker holds a batch; another server started on the
same data dir and Redis finishes the work: every conversation processed, no memory stored twice, nothing left
pending, and the embedded store reopens after the kill. Real processes, real Redis, real model."""

from __future__ import annotations

import os
import signal
import uuid
import warnings
from pathlib import Path

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from memory.model import normalize_text
from service.auth import KEY_PREFIX, hash_key
from service.settings import Settings
from tests.conftest import LiveServer, bearer, purge, test_settings
from tests.worker.harness import share_model_cache, wait_until

pytestmark = pytest.mark.integration

API_KEY = f"{KEY_PREFIX}test-{uuid.uuid4().hex}"
CONVERSATIONS = [
    ("u1", "c1", "I am vegetarian and I cook every evening."),
    ("u1", "c2", "As a vegetarian I cook dinner most evenings."),
    ("u2", "c1", "I have two daughters and we live in Lyon."),
    ("u2", "c2", "My two daughters love living in Lyon."),
]
START_TIMEOUT_S = 180  # imports and ONNX models on a busy machine
TAKE_TIMEOUT_S = 120
DRAIN_TIMEOUT_S = 900  # four real extractions plus a model load on a busy 2-core machine


def chat(user: str, conversation: str, text: str) -> dict:
    return {
        "user_id": user,
        "conversation_id": conversation,
        "messages": [{"role": "user", "content": text}, {"role": "assistant", "content": "Noted."}],
    }


def stream_state(r: redis.Redis, settings: Settings) -> tuple[int, int]:
    pending = r.xpending(settings.stream_key, settings.consumer_group)
    return int(r.xlen(settings.stream_key)), int(pending["pending"])


def log_tail(server: LiveServer, lines: int = 30) -> str:
    path = Path(server.settings.data_dir.parent / f"server-{server.port}.log")
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def processed_here(server: LiveServer) -> float:
    """Entries this server process finished (stored, erased, paused or dead-lettered), from its /metrics."""
    text = httpx.get(f"{server.url}/metrics", headers=bearer(API_KEY), timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "heedful_conversations_processed_total"
    )


def memories_of(server: LiveServer, user: str) -> list[dict]:
    found, cursor = [], None
    while True:
        params = {"user_id": user, "limit": 200, **({"cursor": cursor} if cursor else {})}
        page = httpx.get(f"{server.url}/v1/memories", params=params, headers=bearer(API_KEY), timeout=10)
        assert page.status_code == 200, page.text
        found += page.json()["memories"]
        if (cursor := page.json()["next_cursor"]) is None:
            return found


def test_a_server_killed_mid_batch_loses_nothing_and_duplicates_nothing(tmp_path: Path, model_cache: Path):
    """`heedful serve` is SIGKILLed once its worker holds entries; a second server on the same data dir drains them.

    Lost: nothing: the stream ends empty with nothing pending, every entry the killed server left was processed
    exactly once by the second server, no memory is stored twice and the store reopens. A conversation the model
    itself fails on may be dead-lettered (kept there with its error, reported as a warning); nothing else may."""
    settings = test_settings(
        tmp_path,
        embedded_worker=True,
        worker_batch=2,
        worker_claim_idle_ms=1500,
        worker_block_ms=200,
        llm_threads=1,
        api_key_hashes={hash_key(API_KEY): "acme"},
    )
    share_model_cache(settings, model_cache)
    r = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    servers: list[LiveServer] = []
    try:
        first = LiveServer(settings)
        servers.append(first)
        first.start(START_TIMEOUT_S)
        for user, conversation, text in CONVERSATIONS:
            queued = httpx.post(
                f"{first.url}/v1/conversations", json=chat(user, conversation, text), headers=bearer(API_KEY)
            )
            assert queued.status_code == 202 and queued.json()["status"] == "queued", queued.text
        wait_until(
            lambda: stream_state(r, settings)[1] > 0,
            TAKE_TIMEOUT_S,
            lambda: f"the first server's worker took no entry; its log:\n{log_tail(first)}",
        )
        assert first.process is not None
        os.killpg(first.process.pid, signal.SIGKILL)
        first.process.wait(10)
        left, in_flight = stream_state(r, settings)
        assert in_flight > 0, "the kill must leave delivered, unacknowledged entries behind"

        second = LiveServer(settings)
        servers.append(second)
        second.start(START_TIMEOUT_S)  # opens the embedded store the killed process had open
        wait_until(
            lambda: stream_state(r, settings) == (0, 0),
            DRAIN_TIMEOUT_S,
            lambda: f"(entries, pending) = {stream_state(r, settings)}; second server's log:\n{log_tail(second)}",
        )

        # every entry the killed server left was finished exactly once by the second one
        assert processed_here(second) == left
        dead = [fields for _, fields in r.xrange(settings.dead_letter_stream)]
        not_the_model = [f for f in dead if not f["error"].startswith("LLMError")]
        assert not_the_model == [], "only a model failure may dead-letter a conversation here"
        if dead:
            warnings.warn(
                f"the model failed on {len(dead)} conversation(s): {[f['error'] for f in dead]}", stacklevel=1
            )
        assert r.hlen(f"{settings.key_prefix}:entry-errors") == 0

        for user in sorted({user for user, _, _ in CONVERSATIONS}):
            memories = memories_of(second, user)
            ids = [m["id"] for m in memories]
            texts = [normalize_text(m["text"]) for m in memories]
            assert len(set(ids)) == len(ids), f"{user}: a memory id appears twice"
            assert len(set(texts)) == len(texts), f"{user}: the same memory is stored twice: {sorted(texts)}"
        ready = httpx.get(f"{second.url}/readyz", timeout=10)
        assert ready.status_code == 200 and ready.json()["checks"]["store"] == "ok", ready.text
    finally:
        for server in servers:
            server.stop()
        r.close()
        purge(settings)
