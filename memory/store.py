"""The vector store interface. `memory/stores/` holds one adapter per backend; nothing else knows which runs."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from pydantic import BaseModel

from memory.model import Memory, MemoryKind, MemoryStatus, utcnow
from memory.phrasing import as_statement


class MemoryFilter(BaseModel):
    status: MemoryStatus | None = None
    kind: MemoryKind | None = None
    text: str | None = None  # full-text match on the memory's words


class MemoryPage(BaseModel):
    memories: list[Memory]
    next_cursor: str | None = None


class ScoredMemory(BaseModel):
    memory: Memory
    score: float


class StoreUnavailable(Exception):
    """The vector store could not be reached; callers degrade (generic answer) or answer 503."""


class MemoryStore(Protocol):
    """Every operation is scoped to one user: no call reads or writes across users, except the operators'
    `without_statement` (and `count` without a user)."""

    async def upsert(self, memories: list[Memory]) -> None:
        """Insert or replace by id; every memory must carry its embedding, and its statement embedding is
        stored when it has one (one stored without gets it on first use: `fill_statement_vectors`)."""
        ...

    async def get(self, user_id: str, memory_id: str) -> Memory | None: ...

    async def get_many(
        self, user_id: str, memory_ids: list[str], *, with_vectors: bool | Sequence[str] = True
    ) -> list[Memory]:
        """The user's memories among `memory_ids`; `with_vectors` a list of vector names (TEXT_VECTOR,
        STATEMENT_VECTOR) reads those only, leaving the other None (the selector reads only the statement's)."""
        ...

    async def page(
        self,
        user_id: str,
        filters: MemoryFilter | None = None,
        *,
        limit: int = 50,
        cursor: str | None = None,
        with_vectors: bool = True,
    ) -> MemoryPage:
        """One page in storage order; `with_vectors=False` leaves both vectors None (reading vectors is most
        of a page's cost, and listings and selectors that cache vectors do not need them)."""
        ...

    async def search(
        self, user_id: str, vector: list[float], *, limit: int = 10, filters: MemoryFilter | None = None
    ) -> list[ScoredMemory]: ...

    async def update(self, user_id: str, memory_id: str, **changes: Any) -> Memory | None:
        """Changes payload fields (status, text, ...); pass `embedding` and `statement_embedding` to replace
        the vectors (a new text without a new statement embedding drops the old one)."""
        ...

    async def fill_statement_vectors(self, user_id: str, memories: list[Memory]) -> int:
        """Writes each memory's statement vector onto the stored memory, leaving its text's vector and payload
        as they are, where the stored text is still the memory's (not edited meanwhile); returns how many (on a
        server, how many it found unedited: one edited between that read and the write is skipped too).
        For memories stored before statement vectors existed, once the selector needed them."""
        ...

    async def without_statement(self, *, limit: int = 256, cursor: str | None = None) -> MemoryPage:
        """Memories of any user stored without a statement vector, one page in storage order, without vectors.
        The one read not scoped to a user: for operators (`heedful store fill-statements`), never a request."""
        ...

    async def delete(self, user_id: str, memory_id: str) -> bool: ...

    async def delete_user(self, user_id: str) -> int:
        """Erases every memory of the user; returns how many there were."""
        ...

    async def count(self, user_id: str | None = None, filters: MemoryFilter | None = None) -> int: ...

    async def ready(self) -> bool: ...

    async def close(self) -> None: ...


PAYLOAD_EXCLUDE = {"embedding", "statement_embedding", "id"}
# The stores' named vectors: the text's (Qdrant's default, unnamed) and the statement's.
TEXT_VECTOR = ""
STATEMENT_VECTOR = "statement"

Embed = Callable[[list[str]], Awaitable[list[list[float]]]]


def to_payload(memory: Memory) -> dict[str, Any]:
    return memory.model_dump(mode="json", exclude=PAYLOAD_EXCLUDE)


def to_vectors(memory: Memory) -> dict[str, list[float]]:
    """The named vectors a memory is stored with."""
    vectors = {TEXT_VECTOR: require_embedding(memory)}
    if memory.statement_embedding is not None:
        vectors[STATEMENT_VECTOR] = memory.statement_embedding
    return vectors


def vector_selection(with_vectors: bool | Sequence[str]) -> bool | list[str]:
    """`with_vectors` as both Qdrant APIs take it: all vectors, none, or these names."""
    return with_vectors if isinstance(with_vectors, bool) else list(with_vectors)


def from_payload(point_id: object, payload: dict[str, Any], vector: object = None) -> Memory:
    """A stored record as a Memory: the payload is validated, the vectors are attached as the store gave them
    (a list when the point holds only the text's vector, else a dict by name).

    The vector was written from a validated Memory and comes back as a fresh list of floats; validating
    it again rebuilt 384 floats per memory and doubled the conversion's CPU (5.4 against 2.8 ms for 200
    memories on the shared 2-core machine).
    """
    memory = Memory.model_validate({**payload, "id": str(point_id)})
    if isinstance(vector, dict):
        memory.embedding = vector.get(TEXT_VECTOR)
        memory.statement_embedding = vector.get(STATEMENT_VECTOR)
    elif isinstance(vector, list):
        memory.embedding = vector
    return memory


def apply_changes(current: Memory, changes: dict[str, Any]) -> Memory:
    """A validated copy of `current` with `changes` applied and `updated_at` moved on."""
    fields = {
        **current.model_dump(),
        "embedding": current.embedding,
        "statement_embedding": current.statement_embedding,
    }
    if "text" in changes and "statement_embedding" not in changes:
        fields["statement_embedding"] = None  # it was the old text's
    return Memory.model_validate({**fields, **changes, "updated_at": utcnow()})


async def attach_statement_vectors(memories: list[Memory], embed: Embed) -> None:
    """Gives each memory that has none the vector of its text as a statement, in one `embed` call."""
    todo = [m for m in memories if m.statement_embedding is None]
    if todo:
        vectors = await embed([as_statement(m.text) for m in todo])
        for memory, vector in zip(todo, vectors, strict=True):
            memory.statement_embedding = vector


def statement_vectors_to_fill(user_id: str, memories: list[Memory], stored: list[Memory]) -> dict[str, list[float]]:
    """Statement vectors by id, of the memories whose stored record (`stored`, read without vectors) is the
    user's and still holds the memory's text."""
    texts = {m.id: m.text for m in stored if m.user_id == user_id}
    return {
        m.id: m.statement_embedding for m in memories if m.statement_embedding is not None and texts.get(m.id) == m.text
    }


async def fill_all_statement_vectors(store: MemoryStore, embed: Embed, batch: int = 256) -> dict[str, int]:
    """Gives every memory stored without a statement vector its vector, `batch` at a time, whoever owns it;
    a memory edited meanwhile is left to its edit. What /respond does per user on first use, for all users."""
    counts = {"seen": 0, "filled": 0}
    cursor: str | None = None
    while True:
        page = await store.without_statement(limit=batch, cursor=cursor)
        await attach_statement_vectors(page.memories, embed)
        by_user: dict[str, list[Memory]] = {}
        for memory in page.memories:
            by_user.setdefault(memory.user_id, []).append(memory)
        for user_id, memories in by_user.items():
            counts["filled"] += await store.fill_statement_vectors(user_id, memories)
        counts["seen"] += len(page.memories)
        if (cursor := page.next_cursor) is None:
            return counts


def require_embedding(memory: Memory) -> list[float]:
    if memory.embedding is None:
        raise ValueError(f"memory {memory.id} has no embedding; embed before upsert")
    return memory.embedding


def is_memory_id(value: str) -> bool:
    """Memory ids are UUIDs; anything else cannot name a memory (and must not reach the engine)."""
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
