"""GET /v1/ops/stats: the numbers behind /dashboard, from this process's Prometheus registry and live Redis.

Counters are totals since this process started; the dashboard turns them into rates from the deltas
between its polls. Stream figures come from Redis and so describe the whole deployment.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime

from fastapi import APIRouter
from prometheus_client.metrics import MetricWrapperBase
from pydantic import BaseModel, Field
from redis.asyncio import Redis

from memory.metrics import (
    ATTRIBUTES_EXTRACTED,
    CONVERSATIONS_INGESTED,
    CONVERSATIONS_PROCESSED,
    ERRORS,
    HTTP_LATENCY,
    SELECTOR_CONSIDERED,
    SELECTOR_SELECTED,
    VERIFIER_ATTRIBUTES,
    VERIFIER_CONTRADICTED,
    read_stream_state,
)
from service.deps import AppDep, ComponentsDep
from service.settings import Settings

router = APIRouter(prefix="/v1/ops", tags=["ops"])

# "Re-Centering Humans in LLM Personalization": humans mark ~20% of a user's attributes relevant to a
# prompt (LLMs 40-60%); a selector far above this line is using memories that do not matter.
HUMAN_SELECTION_RATE = 0.20
DEAD_LETTERS_SHOWN = 20
# Dead letters of all apps share one stream; this many of the newest are searched for the caller's own.
DEAD_LETTERS_SCANNED = 1_000
# Worker errors can carry long tracebacks; the dashboard needs the gist, and the response stays small.
ERROR_TEXT_MAX = 500


class StreamStats(BaseModel):
    length: int = Field(description="entries in the conversation stream (XLEN)")
    pending: int | None = Field(description="delivered to the consumer group, not yet acknowledged; null: no group")
    lag: int | None = Field(description="not yet delivered to the group (XINFO GROUPS lag); null: Redis cannot tell")
    dead_letters: int = Field(description="entries in the dead-letter stream")


class DeadLetter(BaseModel):
    """A failed conversation as operators see it: which one and why, never whose (no tenant or user id)."""

    id: str
    at: datetime
    conversation: str
    error: str


class Ingestion(BaseModel):
    conversations_ingested: int
    conversations_processed: dict[str, int] = Field(description="by outcome")
    attributes_extracted: int


class VerifierStats(BaseModel):
    accepted: int
    refined: int
    dropped: int
    accept_rate: float | None = Field(description="accepted / judged; null before the first judgement")
    contradicted: int = Field(
        description="sent back because the user's own turns state the opposite preference (verifier.polarity)"
    )
    contradicted_model_passed: int = Field(description="of those, how many the model's score alone would have kept")


class SelectorStats(BaseModel):
    considered: int
    selected: int
    selection_rate: float | None = Field(description="selected / considered; null before the first selection")
    human_rate: float = HUMAN_SELECTION_RATE


class RouteLatency(BaseModel):
    route: str
    method: str
    requests: int
    p50_ms: float | None
    p95_ms: float | None


class OpsStats(BaseModel):
    generated_at: datetime
    stream: StreamStats
    dead_letter_entries: list[DeadLetter] = Field(
        description=f"the latest {DEAD_LETTERS_SHOWN} of the caller's app, newest first"
    )
    ingestion: Ingestion
    verifier: VerifierStats
    selector: SelectorStats
    latency: list[RouteLatency] = Field(description="since this process started, busiest route first")
    errors: dict[str, int] = Field(description="by kind, since this process started")


@router.get("/stats", response_model=OpsStats)
async def ops_stats(app: AppDep, components: ComponentsDep) -> OpsStats:
    stream, dead = await read_stream(components.redis, components.settings, app.app_id)
    verdicts = totals(VERIFIER_ATTRIBUTES, "outcome")
    flips = totals(VERIFIER_CONTRADICTED, "model")
    considered, selected = total(SELECTOR_CONSIDERED), total(SELECTOR_SELECTED)  # all backends
    return OpsStats(
        generated_at=datetime.now(UTC),
        stream=stream,
        dead_letter_entries=dead,
        ingestion=Ingestion(
            conversations_ingested=int(total(CONVERSATIONS_INGESTED)),
            conversations_processed={k: int(v) for k, v in totals(CONVERSATIONS_PROCESSED, "outcome").items()},
            attributes_extracted=int(total(ATTRIBUTES_EXTRACTED)),
        ),
        verifier=VerifierStats(
            accepted=int(verdicts.get("accepted", 0)),
            refined=int(verdicts.get("refined", 0)),
            dropped=int(verdicts.get("dropped", 0)),
            accept_rate=ratio(verdicts.get("accepted", 0), sum(verdicts.values())),
            contradicted=int(sum(flips.values())),
            contradicted_model_passed=int(flips.get("passed", 0)),
        ),
        selector=SelectorStats(
            considered=int(considered), selected=int(selected), selection_rate=ratio(selected, considered)
        ),
        latency=route_latencies(),
        errors={k: int(v) for k, v in sorted(totals(ERRORS, "kind").items())},
    )


# --- Redis -------------------------------------------------------------------------------------------------


async def read_stream(redis: Redis, settings: Settings, app_id: str) -> tuple[StreamStats, list[DeadLetter]]:
    """Stream figures for the deployment; dead letters only of `app_id`'s users (another app's are not its to see)."""
    state = await read_stream_state(redis, settings.stream_key, settings.consumer_group, settings.dead_letter_stream)
    stream = StreamStats(length=state.length, pending=state.pending, lag=state.lag, dead_letters=state.dead_letters)
    latest = await redis.xrevrange(settings.dead_letter_stream, count=DEAD_LETTERS_SCANNED)
    own = [(entry_id, fields or {}) for entry_id, fields in latest or [] if _of_app(fields or {}, app_id)]
    return stream, [dead_letter(_text(entry_id), fields) for entry_id, fields in own[:DEAD_LETTERS_SHOWN]]


def _of_app(fields: Mapping[bytes | str, bytes | str], app_id: str) -> bool:
    tenant = _text(fields.get(b"tenant", fields.get("tenant", "")))
    return tenant.startswith(f"{app_id}:")


def dead_letter(entry_id: str, fields: Mapping[bytes | str, bytes | str]) -> DeadLetter:
    f = {_text(k): _text(v) for k, v in fields.items()}
    millis = int(entry_id.split("-", 1)[0])  # a stream id starts with the time Redis added the entry
    error = f.get("error", "")
    if len(error) > ERROR_TEXT_MAX:
        error = error[: ERROR_TEXT_MAX - 1] + "…"
    return DeadLetter(
        id=entry_id, at=datetime.fromtimestamp(millis / 1000, UTC), conversation=f.get("conversation", ""), error=error
    )


def _text(value: object) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


# --- Prometheus registry -----------------------------------------------------------------------------------


def samples(metric: MetricWrapperBase, suffix: str) -> Iterator[tuple[dict[str, str], float]]:
    """(labels, value) of the metric's samples named <family><suffix>, e.g. "_total" or "_bucket"."""
    for family in metric.collect():
        for sample in family.samples:
            if sample.name == family.name + suffix:
                yield sample.labels, sample.value


def total(counter: MetricWrapperBase) -> float:
    return sum(value for _, value in samples(counter, "_total"))


def totals(counter: MetricWrapperBase, label: str) -> dict[str, float]:
    by_label: dict[str, float] = defaultdict(float)
    for labels, value in samples(counter, "_total"):
        by_label[labels[label]] += value
    return dict(by_label)


def ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def route_latencies() -> list[RouteLatency]:
    buckets: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for labels, cumulative in samples(HTTP_LATENCY, "_bucket"):
        buckets[(labels["route"], labels["method"])].append((float(labels["le"]), cumulative))
    rows = []
    for (route, method), counts in buckets.items():
        counts.sort()
        rows.append(
            RouteLatency(
                route=route,
                method=method,
                requests=int(counts[-1][1]),
                p50_ms=_ms(quantile(0.50, counts)),
                p95_ms=_ms(quantile(0.95, counts)),
            )
        )
    return sorted(rows, key=lambda r: (-r.requests, r.route, r.method))


def quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """Estimate of the q-quantile from cumulative (upper bound, count) buckets ending with +Inf.

    Linear within the bucket the rank falls in, as Prometheus' histogram_quantile does; a rank in the
    +Inf bucket reports the highest finite bound, the most the buckets can tell.
    """
    observed = buckets[-1][1] if buckets else 0.0
    if observed == 0:
        return None
    rank = q * observed
    lower, below = 0.0, 0.0
    for upper, cumulative in buckets:
        if cumulative >= rank:
            if math.isinf(upper):
                return lower
            inside = cumulative - below
            return lower + (upper - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = upper, cumulative
    return lower


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)
