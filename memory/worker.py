"""The extraction worker: a Redis Streams consumer that turns queued conversations into memories.

Guarantees:
- An entry is acknowledged (and deleted from the stream) only after its memories are committed.
- Entries left pending by a dead worker are reclaimed with XAUTOCLAIM after `claim_idle_ms`; a live worker
  keeps its batch claimed however slow the model is (`_keep_claimed`).
- An entry delivered more than `max_attempts` times goes to the dead-letter stream with its last error.
- Processing an entry twice stores nothing twice (memory ids are uuid5 of user + text; evidence is a set).
- A user erased while their entry is in flight is not resurrected: the erasure tombstone is checked
  before and after the commit, and anything committed for an erased user is deleted again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from memory import metrics
from memory.conversations import Conversation
from memory.extraction import Candidate, Extractor
from memory.gate import AttributeGate
from memory.ingest import ConversationLog
from memory.merge import MERGE_SIMILARITY, merge
from memory.model import Memory, MemoryStatus, normalize_text
from memory.store import Embed, MemoryStore, attach_statement_vectors
from memory.supersede import MIN_SIMILARITY as CONTRADICTION_FLOOR
from memory.supersede import supersede_contradicted

log = logging.getLogger("heedful.worker")

NEIGHBOURS_PER_ATTRIBUTE = 5
# wide enough for average linkage to bridge pairs below 0.7, and for the contradiction check's candidates
NEIGHBOUR_FLOOR = min(MERGE_SIMILARITY - 0.1, CONTRADICTION_FLOOR)
GAUGE_INTERVAL_S = 5.0


@dataclass
class WorkerConfig:
    group: str
    consumer: str
    dead_letter_stream: str
    batch: int = 8
    block_ms: int = 2000
    claim_idle_ms: int = 60_000
    max_attempts: int = 3


class ExtractionWorker:
    def __init__(
        self,
        conversations: ConversationLog,
        store: MemoryStore,
        extractor: Extractor,
        gate: AttributeGate,
        embed: Embed,
        config: WorkerConfig,
    ) -> None:
        self.log = conversations
        self.redis: Redis = conversations.redis
        self.store = store
        self.extractor = extractor
        self.gate = gate
        self.embed = embed
        self.config = config
        self._errors_key = conversations.errors_key
        self._gauges_at = 0.0

    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        await self.log.ensure_group(self.config.group)
        while not stop.is_set():
            try:
                await self.run_once()
            except RedisError as exc:  # Redis away: nothing was acknowledged, so nothing is lost; wait and retry
                metrics.ERRORS.labels(kind="redis_unavailable").inc()
                log.warning("worker: Redis unavailable (%s); retrying", type(exc).__name__)
                await asyncio.sleep(1.0)
            except Exception:  # the loop must outlive any one bad batch; its entries stay pending and are retried
                metrics.ERRORS.labels(kind="worker_loop").inc()
                log.exception("worker: batch failed; its entries stay pending")
                await asyncio.sleep(1.0)

    async def run_once(self) -> int:
        """Reclaims stale entries, reads new ones, processes them; returns how many were handled."""
        await self._update_gauges()
        entries = await self._reclaim() + await self._read()
        if not entries:
            return 0
        waiting = [entry_id for entry_id, _ in entries]
        done = asyncio.Event()
        keeper = asyncio.create_task(self._keep_claimed(waiting, done), name="keep-claimed")
        try:
            with metrics.track_latency(metrics.WORKER_BATCH_LATENCY):
                for entry_id, fields in entries:
                    await self._handle(entry_id, fields)
                    waiting.remove(entry_id)
        finally:
            done.set()
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        return len(entries)

    async def _keep_claimed(self, waiting: list[str], done: asyncio.Event) -> None:
        """Heartbeat for a batch: resets the idle time of its entries still waiting or in work.

        With a slow model a batch can take far longer than `claim_idle_ms` (8 entries x a minute on the
        embedded CPU model); without this another worker would reclaim the later entries, extract them a
        second time and count a delivery each time, until a healthy entry reached the dead-letter stream.
        XCLAIM ... JUSTID resets the idle time without counting a delivery. Only entries this consumer still
        owns are touched, so an entry already reclaimed elsewhere is not taken back. A dead worker stops
        beating, and its entries become reclaimable as before.

        It stops when `done` is set, not only when cancelled: redis-py can swallow a cancellation that lands
        inside a command (redis/redis-py#2028) or turn it into a ConnectionError, which the loop below catches;
        the batch then waited for the keeper forever (seen once in the suite: a worker stuck for 9 minutes with
        nothing pending but its poison entries)."""
        interval = self.config.claim_idle_ms / 3000
        while not done.is_set():
            await asyncio.sleep(interval)
            if not waiting:
                continue
            ordered = sorted(waiting, key=_id_order)
            try:
                owned = await self.redis.xpending_range(
                    self.log.stream,
                    self.config.group,
                    min=ordered[0],
                    max=ordered[-1],
                    count=1_000,
                    consumername=self.config.consumer,
                )
                ids: list[str | bytes | int | memoryview] = [
                    _s(p["message_id"]) for p in owned if _s(p["message_id"]) in waiting
                ]
                if ids:
                    await self.redis.xclaim(
                        self.log.stream, self.config.group, self.config.consumer, 0, ids, justid=True
                    )
            except RedisError as exc:  # a missed beat risks a duplicate extraction, never a loss
                log.warning("worker: could not refresh claims (%s)", type(exc).__name__)

    async def _read(self) -> list[tuple[str, dict[str, str]]]:
        reply: Any = await self.redis.xreadgroup(
            self.config.group,
            self.config.consumer,
            {self.log.stream: ">"},
            count=self.config.batch,
            block=self.config.block_ms,
        )
        entries: list[tuple[str, dict[str, str]]] = []
        for _, items in reply or []:
            entries += [(_s(eid), _fields(f)) for eid, f in items]
        return entries

    async def _reclaim(self) -> list[tuple[str, dict[str, str]]]:
        reply = await self.redis.xautoclaim(
            self.log.stream,
            self.config.group,
            self.config.consumer,
            min_idle_time=self.config.claim_idle_ms,
            start_id="0-0",
            count=self.config.batch,
        )
        claimed = reply[1] if reply else []
        return [(_s(eid), _fields(f)) for eid, f in claimed if f]

    async def _handle(self, entry_id: str, fields: dict[str, str]) -> None:
        attempts = await self._deliveries(entry_id)
        if attempts > self.config.max_attempts:
            await self._dead_letter(entry_id, fields, attempts)
            return
        try:
            outcome = await self.process(fields)
        except Exception as exc:  # whatever one entry raises is its own failure, never its batch-mates'
            # left pending: reclaimed after claim_idle_ms and retried, up to max_attempts deliveries
            metrics.ERRORS.labels(kind=f"worker_{type(exc).__name__}").inc()
            if await self._erased_meanwhile(fields):
                return  # erasure already dropped the entry; its error (which can quote the user) must not outlive it
            await self.redis.hset(self._errors_key, entry_id, f"{type(exc).__name__}: {str(exc)[:300]}")  # type: ignore[misc]
            log.warning("entry %s failed (attempt %d): %s", entry_id, attempts, type(exc).__name__)
            return
        await self._ack(entry_id)
        metrics.CONVERSATIONS_PROCESSED.labels(outcome=outcome).inc()

    async def process(self, fields: dict[str, str]) -> str:
        """One queued conversation to committed memories; returns the outcome label."""
        tenant, conversation_id, queued_at = fields["tenant"], fields["conversation"], float(fields["at"])
        if await self.log.erased_since(tenant, queued_at):
            return "erased"
        if await self.log.paused(tenant):
            return "paused"
        stored = await self.log.load(tenant, conversation_id)
        if stored is None:
            return "erased"  # erased, or expired past retention: nothing left to extract from
        if stored.digest != fields.get("digest"):
            return "stored"  # a newer version of this conversation is queued; that entry does the work
        memories = await self.memories_for(tenant, stored.conversation)
        await self.store.upsert(memories)
        if await self.log.erased_since(tenant, queued_at):
            for memory in memories:  # erased while we worked: take back what we just wrote
                await self.store.delete(tenant, memory.id)
            return "erased"
        return "stored"

    async def memories_for(self, tenant: str, conversation: Conversation) -> list[Memory]:
        report = await self.extractor.extract(conversation)
        metrics.ATTRIBUTES_EXTRACTED.inc(len(report.candidates) + report.rejected)
        metrics.SCRIPTED_TURNS_SKIPPED.inc(report.scripted_turns)
        candidates = _unique(report.candidates)
        outcome = await self.gate.review(candidates, conversation, self.extractor)
        metrics.VERIFIER_ATTRIBUTES.labels(outcome="accepted").inc(len(outcome.accepted) - outcome.refined)
        metrics.VERIFIER_ATTRIBUTES.labels(outcome="refined").inc(outcome.refined)
        metrics.VERIFIER_ATTRIBUTES.labels(outcome="dropped").inc(outcome.dropped)
        if not outcome.accepted:
            return []
        vectors = await self.embed([c.text for c in outcome.accepted])
        existing = await self._neighbours(tenant, vectors)
        changed = merge(tenant, list(zip(outcome.accepted, vectors, strict=True)), existing)
        memories = changed + await supersede_contradicted(self.extractor.llm, changed, existing)
        await attach_statement_vectors(memories, self.embed)  # new ones, and any stored before they existed
        return memories

    async def _neighbours(self, tenant: str, vectors: list[list[float]]) -> list[Memory]:
        found: dict[str, Memory] = {}
        for vector in vectors:
            for hit in await self.store.search(tenant, vector, limit=NEIGHBOURS_PER_ATTRIBUTE):
                if hit.score >= NEIGHBOUR_FLOOR and hit.memory.status is not MemoryStatus.superseded:
                    found[hit.memory.id] = hit.memory
        return list(found.values())

    async def _erased_meanwhile(self, fields: dict[str, str]) -> bool:
        try:
            tenant, queued_at = fields["tenant"], float(fields["at"])
        except (KeyError, ValueError):
            return False
        return await self.log.erased_since(tenant, queued_at)

    async def _deliveries(self, entry_id: str) -> int:
        pending = await self.redis.xpending_range(
            self.log.stream, self.config.group, min=entry_id, max=entry_id, count=1
        )
        return int(pending[0]["times_delivered"]) if pending else 1

    async def _ack(self, entry_id: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(self.log.stream, self.config.group, entry_id)
            pipe.xdel(self.log.stream, entry_id)
            pipe.hdel(self._errors_key, entry_id)
            await pipe.execute()

    async def _dead_letter(self, entry_id: str, fields: dict[str, str], attempts: int) -> None:
        error = _s(await self.redis.hget(self._errors_key, entry_id)) or "worker stopped while processing"  # type: ignore[misc]
        record = {
            **fields,
            "entry": entry_id,
            "attempts": str(attempts),
            "error": error,
            "failed_at": f"{time.time():.3f}",
        }
        await self.redis.xadd(self.config.dead_letter_stream, record)  # type: ignore[arg-type]
        await self._ack(entry_id)
        metrics.DEAD_LETTERED.inc()
        metrics.CONVERSATIONS_PROCESSED.labels(outcome="failed").inc()
        log.error("entry %s moved to the dead-letter stream after %d deliveries", entry_id, attempts)

    async def _update_gauges(self) -> None:
        if time.monotonic() - self._gauges_at < GAUGE_INTERVAL_S:
            return
        self._gauges_at = time.monotonic()
        await metrics.refresh_stream_gauges(
            self.redis, self.log.stream, self.config.group, self.config.dead_letter_stream
        )


def _unique(candidates: list[Candidate]) -> list[Candidate]:
    """The cheap deterministic pass before the verifier: exact duplicates (same normalized text) collapse."""
    seen: dict[str, Candidate] = {}
    for c in candidates:
        key = normalize_text(c.text)
        if key in seen:
            seen[key].evidence += [e for e in c.evidence if e not in seen[key].evidence]
            seen[key].confidence = max(seen[key].confidence, c.confidence)
        else:
            seen[key] = c
    return list(seen.values())


def _id_order(entry_id: str) -> tuple[int, int]:
    millis, _, seq = entry_id.partition("-")
    return int(millis), int(seq or 0)


def _s(value: Any) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)


def _fields(raw: dict[Any, Any]) -> dict[str, str]:
    return {_s(k): _s(v) for k, v in raw.items()}
