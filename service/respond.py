"""The request path: load a user's active memories, select the few that matter, and generate quietly."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import numpy as np

from memory import metrics
from memory.llm import ChatMessage
from memory.model import Memory, MemoryStatus
from memory.prompts.respond import system_prompt
from memory.store import STATEMENT_VECTOR, MemoryFilter, StoreUnavailable, attach_statement_vectors
from selector import Selection, Selector
from service.wiring import Components

# Memories offered to the selector per request; a user with more is ranked by similarity first.
MAX_CONSIDERED = 500
RESPONSE_RECORD_TTL_S = 30 * 24 * 3600


@dataclass
class Turn:
    role: str
    content: str


@dataclass
class Plan:
    """What will be said with what: the selected memories and the messages for the generator."""

    response_id: str
    used: list[Selection]
    messages: list[ChatMessage]
    considered: int
    notes: list[str] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def personalized(self) -> bool:
        return bool(self.used)

    @property
    def system_prompt(self) -> str:
        return self.messages[0].content


class Responder:
    def __init__(self, components: Components) -> None:
        self.c = components

    async def plan(self, tenant: str, turns: list[Turn], *, backend: str | None, max_memories: int) -> Plan:
        started = time.perf_counter()
        notes: list[str] = []
        prompt = next((t.content for t in reversed(turns) if t.role == "user"), "")
        name = backend or self.c.settings.selector_backend
        selector = self.c.selector(name) if max_memories > 0 else None
        # The prompt's embedding depends on nothing the store holds: it runs on the other core while the
        # store is read (onnxruntime releases the GIL). Wasted work only for a user with no memories.
        prompt_vector = (
            asyncio.create_task(asyncio.to_thread(selector.embed_prompt, prompt))
            if selector is not None and selector.embeds_prompt
            else None
        )
        try:
            try:
                memories = await self._active_memories(tenant, prompt, selector, prompt_vector)
            except StoreUnavailable:
                metrics.ERRORS.labels(kind="store_unavailable").inc()
                memories, notes = [], ["memory store unavailable: answered without personalization"]
            loaded = time.perf_counter()
            used: list[Selection] = []
            if memories and selector is not None:
                with metrics.track_latency(metrics.SELECTOR_LATENCY, backend=name):
                    vector = await prompt_vector if prompt_vector is not None else None
                    ranked = await selector.select(prompt, memories, prompt_vector=vector)
                used = [s for s in ranked if s.relevant][:max_memories]
                metrics.SELECTOR_CONSIDERED.labels(backend=name).inc(len(memories))
                metrics.SELECTOR_SELECTED.labels(backend=name).inc(len(used))
            elif not memories and not notes:
                notes.append("no memories for this user")
        finally:
            if prompt_vector is not None:
                prompt_vector.cancel()  # no-op once awaited; otherwise its result is not wanted
        if memories and not used:
            metrics.SELECTOR_EMPTY.inc()
            notes.append("no memory is relevant to this request: generic answer")
        selected = time.perf_counter()
        messages = [ChatMessage(role="system", content=system_prompt([s.memory.text for s in used]))]
        messages += [ChatMessage(role=t.role, content=t.content) for t in turns if t.role != "system"]  # type: ignore[arg-type]
        return Plan(
            response_id=f"resp_{uuid.uuid4().hex}",
            used=used,
            messages=messages,
            considered=len(memories),
            notes=notes,
            timings_ms={"load": _ms(started, loaded), "select": _ms(loaded, selected)},
        )

    async def _active_memories(
        self, tenant: str, prompt: str, selector: Selector | None, prompt_vector: asyncio.Task[np.ndarray] | None
    ) -> list[Memory]:
        active = MemoryFilter(status=MemoryStatus.active)
        page = await self.c.store.page(tenant, active, limit=MAX_CONSIDERED, with_vectors=False)
        if page.next_cursor is None:
            if selector is not None:
                await self._read_vectors(tenant, selector.missing_vectors(page.memories))
            return page.memories
        # More than the selector is offered: the nearest to the prompt, not the first in storage order.
        # The selector's prompt vector may come from the prompt's head and tail only: near enough to rank
        # the user's memories for a shortlist, when it is in the store's space at all.
        if prompt_vector is not None and selector is not None and selector.prompt_vector_searches_store:
            vector = (await prompt_vector).tolist()
        else:
            vector = (await self.c.embed([prompt]))[0]
        hits = [s.memory for s in await self.c.store.search(tenant, vector, limit=MAX_CONSIDERED, filters=active)]
        await self._fill_statements(tenant, [m for m in hits if m.statement_embedding is None])
        return hits

    async def _read_vectors(self, tenant: str, memories: list[Memory]) -> None:
        """Attaches the stored statement vectors of `memories` (the selectors' only vector); the selector
        holds the others' from earlier requests.

        A memory edited since the page was read keeps no vector (its text differs): it is embedded as read.
        """
        if not memories:
            return
        ids = [m.id for m in memories]
        stored = {m.id: m for m in await self.c.store.get_many(tenant, ids, with_vectors=[STATEMENT_VECTOR])}
        for memory in memories:
            current = stored.get(memory.id)
            if current is not None and current.text == memory.text:
                memory.statement_embedding = current.statement_embedding
        await self._fill_statements(tenant, [m for m in memories if m.id in stored and m.statement_embedding is None])

    async def _fill_statements(self, tenant: str, memories: list[Memory]) -> None:
        """Memories stored before statement vectors existed: their statements are embedded here and written
        back, once per memory rather than once per process (a memory edited meanwhile is not written)."""
        if not memories:
            return
        await attach_statement_vectors(memories, self.c.embed)
        try:
            metrics.STATEMENT_VECTORS_FILLED.inc(await self.c.store.fill_statement_vectors(tenant, memories))
        except StoreUnavailable:  # the vectors are in hand: answer with them, fill on a later request
            metrics.ERRORS.labels(kind="store_unavailable").inc()

    async def generate(self, plan: Plan, *, temperature: float, max_tokens: int) -> str:
        started = time.perf_counter()
        with metrics.track_latency(metrics.GENERATION_LATENCY):
            completion = await self.c.llm.complete(plan.messages, max_tokens=max_tokens, temperature=temperature)
        metrics.GENERATOR_TOKENS.labels(kind="prompt").inc(completion.prompt_tokens)
        metrics.GENERATOR_TOKENS.labels(kind="completion").inc(completion.completion_tokens)
        plan.timings_ms["generate"] = _ms(started, time.perf_counter())
        return completion.text

    async def stream(self, plan: Plan, *, temperature: float, max_tokens: int) -> AsyncIterator[str]:
        started = time.perf_counter()
        first = True
        async for delta in self.c.llm.stream(plan.messages, max_tokens=max_tokens, temperature=temperature):
            if first:
                metrics.GENERATION_TTFT.observe(time.perf_counter() - started)
                first = False
            metrics.GENERATOR_TOKENS.labels(kind="completion").inc()
            yield delta
        metrics.GENERATION_LATENCY.observe(time.perf_counter() - started)
        plan.timings_ms["generate"] = _ms(started, time.perf_counter())

    async def record(self, tenant: str, plan: Plan) -> None:
        """Keeps which memories a response used, so feedback on it can be tied to them (and erased with the user)."""
        record = {"memory_ids": [s.memory.id for s in plan.used], "at": time.time()}
        key = f"{self.c.conversations.user_key(tenant)}:responses"
        async with self.c.redis.pipeline(transaction=True) as pipe:  # one round trip
            pipe.hset(key, plan.response_id, json.dumps(record))
            pipe.expire(key, RESPONSE_RECORD_TTL_S)
            await pipe.execute()


def _ms(start: float, end: float) -> float:
    return round((end - start) * 1000, 2)
