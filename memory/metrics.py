"""Every Prometheus metric heedful exports, in one module (prometheus-client, default registry).

The API serves them on `/metrics`; each worker serves its own with `start_metrics_server`.
Counters are declared without the `_total` suffix: prometheus-client adds it on exposition,
so `CONVERSATIONS_INGESTED` is scraped as `heedful_conversations_ingested_total`.
Gauges about the stream describe shared Redis state, so every worker reports the same value;
dashboards and autoscalers aggregate them with `max()`, never `sum()`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from prometheus_client import Counter, Gauge, Histogram, start_http_server
from redis.asyncio import Redis
from redis.exceptions import ResponseError

# Request-path latencies: from a 1 ms health check to a 30 s generation behind a slow LLM.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# LLM calls and worker batches: tens of milliseconds to the 60 s LLM timeout times retries.
SLOW_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
SCORE_BUCKETS = tuple(round(0.1 * i, 1) for i in range(1, 11))

# --- HTTP (API) ---
HTTP_REQUESTS = Counter(
    "heedful_http_requests",
    "HTTP requests handled, by route template, method and status code.",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "heedful_http_request_duration_seconds",
    "HTTP request latency, by route template and method.",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)

# --- Ingestion stream and extraction worker ---
STREAM_LENGTH = Gauge("heedful_stream_length", "Entries in the conversation stream (XLEN).")
STREAM_PENDING = Gauge("heedful_stream_pending", "Entries delivered to the consumer group but not yet acknowledged.")
STREAM_CONSUMER_LAG = Gauge(
    "heedful_stream_consumer_lag", "Entries in the stream not yet delivered to the consumer group."
)
STREAM_DEAD_LETTERS = Gauge("heedful_stream_dead_letters", "Entries in the dead-letter stream (XLEN).")
DEAD_LETTERED = Counter("heedful_dead_lettered", "Conversations this process moved to the dead-letter stream.")
CONVERSATIONS_INGESTED = Counter(
    "heedful_conversations_ingested", "Conversations accepted by the API and added to the stream."
)
CONVERSATIONS_PROCESSED = Counter(
    "heedful_conversations_processed", "Conversations a worker finished, by outcome.", ["outcome"]
)
ATTRIBUTES_EXTRACTED = Counter(
    "heedful_attributes_extracted", "Candidate attributes the extractor produced (before the verifier)."
)
SCRIPTED_TURNS_SKIPPED = Counter(
    "heedful_scripted_turns_skipped", "User turns skipped as templated content (paper Appendix A detector)."
)
WORKER_BATCH_LATENCY = Histogram(
    "heedful_worker_batch_duration_seconds",
    "Time a worker spends on one batch read from the stream.",
    buckets=SLOW_BUCKETS,
)

# --- Verifier ---
VERIFIER_ATTRIBUTES = Counter(
    "heedful_verifier_attributes", "Attributes through the verifier, by outcome.", ["outcome"]
)
VERIFIER_SCORE = Histogram(
    "heedful_verifier_score", "Verifier scores of the attributes it judged.", buckets=SCORE_BUCKETS
)
VERIFIER_CONTRADICTED = Counter(
    "heedful_verifier_contradicted",
    "Attributes flagged because the user's own words state the opposite preference (verifier.polarity), by "
    "whether the model's score alone would have let them through.",
    ["model"],
)

# --- Selector (selection rate = selected / considered; humans choose ~20%) ---
SELECTOR_CONSIDERED = Counter(
    "heedful_selector_memories_considered", "Memories offered to the selector, by backend.", ["backend"]
)
SELECTOR_SELECTED = Counter(
    "heedful_selector_memories_selected", "Memories the selector kept, by backend.", ["backend"]
)
SELECTOR_LATENCY = Histogram(
    "heedful_selector_duration_seconds",
    "Selector latency per request, by backend.",
    ["backend"],
    buckets=LATENCY_BUCKETS,
)
SELECTOR_EMPTY = Counter(
    "heedful_selector_empty_selections", "Requests for which the selector kept no memory (a valid answer)."
)
STATEMENT_VECTORS_FILLED = Counter(
    "heedful_statement_vectors_filled",
    "Statement vectors embedded at request time and written back, for memories stored before they existed.",
)

# --- Generator ---
GENERATOR_TOKENS = Counter("heedful_generator_tokens", "LLM tokens used by generation, by kind.", ["kind"])
GENERATION_LATENCY = Histogram(
    "heedful_generation_duration_seconds", "Time to a complete generated response.", buckets=SLOW_BUCKETS
)
GENERATION_TTFT = Histogram(
    "heedful_generation_time_to_first_token_seconds",
    "Time to the first streamed token.",
    buckets=LATENCY_BUCKETS,
)

# --- Errors ---
ERRORS = Counter("heedful_errors", "Errors, by kind (e.g. llm_timeout, store_unavailable).", ["kind"])

# Known label values start at zero, so rates and ratios exist before the first event.
for _outcome in ("stored", "paused", "erased", "failed"):
    CONVERSATIONS_PROCESSED.labels(outcome=_outcome)
for _outcome in ("accepted", "refined", "dropped"):
    VERIFIER_ATTRIBUTES.labels(outcome=_outcome)
for _kind in ("prompt", "completion"):
    GENERATOR_TOKENS.labels(kind=_kind)
for _model in ("passed", "flagged"):
    VERIFIER_CONTRADICTED.labels(model=_model)


@contextmanager
def track_latency(histogram: Histogram, **labels: str) -> Iterator[None]:
    """Observe the wall time of the `with` block in `histogram`, even when the block raises."""
    start = time.perf_counter()
    try:
        yield
    finally:
        target = histogram.labels(**labels) if labels else histogram
        target.observe(time.perf_counter() - start)


def start_metrics_server(port: int) -> None:
    """Serve the default registry on `port` from a daemon thread (workers; the API uses `/metrics`)."""
    start_http_server(port)


@dataclass(frozen=True)
class StreamState:
    """The conversation stream as Redis sees it, shared by every API process and worker."""

    length: int
    pending: int | None  # delivered to the consumer group, not yet acknowledged; None: no group yet
    lag: int | None  # not yet delivered to the group; None: no group, or Redis cannot tell
    dead_letters: int


async def read_stream_state(redis: Redis, stream: str, group: str, dead_letter_stream: str) -> StreamState:
    pending: int | None = None
    lag: int | None = None
    try:
        groups = await redis.xinfo_groups(stream)
    except ResponseError:  # no stream yet: nothing was ever queued
        groups = []
    for info in groups:
        name = info.get("name")
        if (name.decode() if isinstance(name, bytes) else name) == group:
            pending = int(info.get("pending") or 0)
            lag = None if info.get("lag") is None else int(info["lag"])
    return StreamState(
        length=int(await redis.xlen(stream)),
        pending=pending,
        lag=lag,
        dead_letters=int(await redis.xlen(dead_letter_stream)),
    )


async def refresh_stream_gauges(redis: Redis, stream: str, group: str, dead_letter_stream: str) -> None:
    """Reads the stream's state from Redis into the stream gauges (the worker's loop and every API scrape)."""
    state = await read_stream_state(redis, stream, group, dead_letter_stream)
    STREAM_LENGTH.set(state.length)
    STREAM_DEAD_LETTERS.set(state.dead_letters)
    if state.pending is not None:
        STREAM_PENDING.set(state.pending)
        STREAM_CONSUMER_LAG.set(state.lag or 0)
