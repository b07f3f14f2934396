"""The embedded default: the Qdrant engine in-process (qdrant-edge-py), one shard on disk.

The engine is synchronous; calls run in a worker thread under one lock so the event loop never blocks
and the shard sees one writer at a time. One process owns the shard: in embedded mode the extraction
worker runs inside the API process (see service/wiring.py).

Erasure is physical, not only logical: the write-ahead log is off (every write is flushed before it is
acknowledged instead) and deletes are followed by a vacuum, so a deleted memory's text does not linger
in WAL pages or old segments on disk.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import qdrant_edge as qe

from memory.model import Memory
from memory.store import (
    MemoryFilter,
    MemoryPage,
    ScoredMemory,
    apply_changes,
    from_payload,
    is_memory_id,
    require_embedding,
    to_payload,
)
from memory.stores.filters import KEYWORD_FIELDS, TEXT_FIELD, filter_terms

T = TypeVar("T")


def _filter(user_id: str | None, filters: MemoryFilter | None) -> qe.Filter | None:
    exact, text = filter_terms(user_id, filters)
    must: list[Any] = [qe.FieldCondition(key=k, match=qe.MatchValue(v)) for k, v in exact.items()]
    if text:
        must.append(qe.FieldCondition(key=TEXT_FIELD, match=qe.MatchText(text)))
    return qe.Filter(must=must) if must else None


class EdgeMemoryStore:
    def __init__(self, path: Path, dim: int = 384) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._shard = self._open(path, dim)

    @staticmethod
    def _open(path: Path, dim: int) -> qe.EdgeShard:
        config = qe.EdgeConfig(
            vectors=qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine),
            # vacuum as soon as anything is deleted: erased text must leave the segment files
            optimizers=qe.EdgeOptimizersConfig(deleted_threshold=0.0001, vacuum_min_vector_number=1),
            wal_enabled=False,
        )
        if (path / "edge_config.json").exists():
            return qe.EdgeShard.load(str(path), config)
        path.mkdir(parents=True, exist_ok=True)
        shard = qe.EdgeShard.create(str(path), config)
        for field in KEYWORD_FIELDS:
            shard.update(qe.UpdateOperation.create_field_index(field, qe.PayloadSchemaType.Keyword))
        shard.update(qe.UpdateOperation.create_field_index(TEXT_FIELD, qe.PayloadSchemaType.Text))
        shard.flush()
        return shard

    async def _run(self, fn: Callable[[qe.EdgeShard], T]) -> T:
        def locked() -> T:
            with self._lock:
                return fn(self._shard)

        return await asyncio.to_thread(locked)

    async def upsert(self, memories: list[Memory]) -> None:
        if not memories:
            return
        points = [qe.Point(m.id, require_embedding(m), to_payload(m)) for m in memories]

        def write(shard: qe.EdgeShard) -> None:
            shard.update(qe.UpdateOperation.upsert_points(points))
            shard.flush()

        await self._run(write)

    async def get(self, user_id: str, memory_id: str) -> Memory | None:
        found = await self.get_many(user_id, [memory_id])
        return found[0] if found else None

    async def get_many(self, user_id: str, memory_ids: list[str]) -> list[Memory]:
        ids = [i for i in memory_ids if is_memory_id(i)]
        records = await self._run(lambda s: s.retrieve(ids, with_payload=True, with_vector=True))  # type: ignore[arg-type]
        memories = [from_payload(r.id, r.payload or {}, r.vector) for r in records]
        return [m for m in memories if m.user_id == user_id]

    async def page(
        self,
        user_id: str,
        filters: MemoryFilter | None = None,
        *,
        limit: int = 50,
        cursor: str | None = None,
        with_vectors: bool = True,
    ) -> MemoryPage:
        request = qe.ScrollRequest(
            offset=cursor if cursor and is_memory_id(cursor) else None,
            limit=limit,
            filter=_filter(user_id, filters),
            with_payload=True,
            with_vector=with_vectors,
        )
        records, next_id = await self._run(lambda s: s.scroll(request))
        memories = [from_payload(r.id, r.payload or {}, r.vector) for r in records]
        return MemoryPage(memories=memories, next_cursor=str(next_id) if next_id is not None else None)

    async def search(
        self, user_id: str, vector: list[float], *, limit: int = 10, filters: MemoryFilter | None = None
    ) -> list[ScoredMemory]:
        request = qe.QueryRequest(
            limit=limit,
            query=qe.Query.Nearest(vector),
            filter=_filter(user_id, filters),
            with_payload=True,
            with_vector=True,
        )
        points = await self._run(lambda s: s.query(request))
        return [ScoredMemory(memory=from_payload(p.id, p.payload or {}, p.vector), score=p.score) for p in points]

    async def update(self, user_id: str, memory_id: str, **changes: Any) -> Memory | None:
        current = await self.get(user_id, memory_id)
        if current is None:
            return None
        updated = apply_changes(current, changes)
        await self.upsert([updated])
        return updated

    async def delete(self, user_id: str, memory_id: str) -> bool:
        if await self.get(user_id, memory_id) is None:
            return False
        await self._run(lambda s: _delete_and_vacuum(s, qe.UpdateOperation.delete_points([memory_id])))
        return True

    async def delete_user(self, user_id: str) -> int:
        only_user = _filter(user_id, None)
        assert only_user is not None
        count = await self.count(user_id)
        await self._run(lambda s: _delete_and_vacuum(s, qe.UpdateOperation.delete_points_by_filter(only_user)))
        return count

    async def count(self, user_id: str | None = None, filters: MemoryFilter | None = None) -> int:
        request = qe.CountRequest(exact=True, filter=_filter(user_id, filters))
        return await self._run(lambda s: s.count(request))

    async def ready(self) -> bool:
        await self._run(lambda s: s.info())
        return True

    async def close(self) -> None:
        def close(shard: qe.EdgeShard) -> None:
            shard.flush()
            shard.close()

        await self._run(close)


def _delete_and_vacuum(shard: qe.EdgeShard, operation: qe.UpdateOperation) -> None:
    shard.update(operation)
    shard.optimize()
    shard.flush()
