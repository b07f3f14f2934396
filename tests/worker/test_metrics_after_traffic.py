"""`/metrics` scraped from a real `heedful serve` (embedded worker, real model, real Redis) after real traffic:
every family the operations issue lists has a non-zero value, and the stream gauges are current while the
worker is busy."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from service.auth import KEY_PREFIX, hash_key
from tests.conftest import LiveServer, bearer, purge, test_settings
from tests.worker.harness import share_model_cache, wait_until

pytestmark = pytest.mark.integration

API_KEY = f"{KEY_PREFIX}test-{uuid.uuid4().hex}"
START_TIMEOUT_S = 180
DRAIN_TIMEOUT_S = 900
# family -> what it counts (the list); each must have a sample above zero after the traffic below
COUNTED = {
    "heedful_http_requests": "requests per route and status",
    "heedful_http_request_duration_seconds": "latency per route",
    "heedful_conversations_ingested": "conversations accepted",
    "heedful_conversations_processed": "conversations processed, by outcome",
    "heedful_attributes_extracted": "attributes extracted",
    "heedful_verifier_attributes": "verifier accepted / refined / dropped",
    "heedful_selector_memories_considered": "selector memories considered",
    "heedful_generator_tokens": "generator tokens",
    "heedful_generation_duration_seconds": "generation latency",
    "heedful_dead_lettered": "conversations dead-lettered",
    "heedful_errors": "errors by kind",
}
BUSY_GAUGES = ("heedful_stream_length", "heedful_stream_pending", "heedful_stream_consumer_lag")


def chat(conversation: str, text: str) -> dict:
    return {
        "user_id": "ivy",
        "conversation_id": conversation,
        "messages": [{"role": "user", "content": text}, {"role": "assistant", "content": "Noted."}],
    }


def scrape(server: LiveServer) -> dict[str, float]:
    """The largest sample of each family (counters, histogram counts and sums, gauges)."""
    text = httpx.get(f"{server.url}/metrics", headers=bearer(API_KEY), timeout=10).text
    return {
        family.name: max((s.value for s in family.samples), default=0.0)
        for family in text_string_to_metric_families(text)
    }


def test_every_metric_family_moves_with_real_traffic(tmp_path: Path, model_cache: Path):
    settings = test_settings(
        tmp_path,
        embedded_worker=True,
        worker_batch=1,
        worker_claim_idle_ms=1500,
        worker_block_ms=200,
        worker_max_attempts=1,
        llm_threads=1,
        api_key_hashes={hash_key(API_KEY): "acme"},
    )
    share_model_cache(settings, model_cache)
    r = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    server = LiveServer(settings)
    try:
        server.start(START_TIMEOUT_S)
        r.xadd(settings.stream_key, {"tenant": "acme:ivy"})  # a poison entry: no conversation named
        for conversation, text in (
            ("c1", "I am vegetarian and I cook every evening."),
            ("c2", "I have two daughters and we live in Lyon."),
        ):
            queued = httpx.post(
                f"{server.url}/v1/conversations", json=chat(conversation, text), headers=bearer(API_KEY)
            )
            assert queued.status_code == 202, queued.text

        busy: dict[str, float] = dict.fromkeys(BUSY_GAUGES, 0.0)

        def drained() -> bool:
            seen = scrape(server)
            for gauge in BUSY_GAUGES:
                busy[gauge] = max(busy[gauge], seen.get(gauge, 0.0))
            pending = r.xpending(settings.stream_key, settings.consumer_group)["pending"]
            return r.xlen(settings.stream_key) == 0 and pending == 0

        wait_until(drained, DRAIN_TIMEOUT_S, lambda: f"stream not drained; gauges seen {busy}")
        assert all(value > 0 for value in busy.values()), f"stream gauges stayed at zero while busy: {busy}"

        answer = httpx.post(
            f"{server.url}/respond",
            json={
                "user_id": "ivy",
                "messages": [{"role": "user", "content": "What should I cook tonight?"}],
                "options": {"max_tokens": 8, "temperature": 0},
            },
            headers=bearer(API_KEY),
            timeout=300,
        )
        assert answer.status_code == 200, answer.text

        after = scrape(server)
        assert after.get("heedful_stream_dead_letters", 0) >= 1, "the poison entry is counted as a dead letter"
        silent = {family: why for family, why in COUNTED.items() if after.get(family, 0.0) <= 0}
        assert silent == {}, f"families still at zero after real traffic: {silent}"
    finally:
        server.stop()
        r.close()
        purge(settings)
