"""Production store: a Qdrant server or cluster through qdrant-client.

One collection for all users; `user_id` is a keyword payload index marked `is_tenant`, which Qdrant
uses to co-locate each tenant's points (multitenancy guide). Every call filters on `user_id`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qdrant_client import AsyncQdrantClient
from qdrant_client import models as qm
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from memory.model import Memory
from memory.store import (
    STATEMENT_VECTOR,
    TEXT_VECTOR,
    MemoryFilter,
    MemoryPage,
    ScoredMemory,
    StoreUnavailable,
    apply_changes,
    from_payload,
    is_memory_id,
    statement_vectors_to_fill,
    to_payload,
    to_vectors,
    vector_selection,
)
from memory.stores.filters import KEYWORD_FIELDS, TEXT_FIELD, filter_terms


def _filter(user_id: str | None, filters: MemoryFilter | None) -> qm.Filter | None:
    exact, text = filter_terms(user_id, filters)
    must: list[Any] = [qm.FieldCondition(key=k, match=qm.MatchValue(value=v)) for k, v in exact.items()]
    if text:
        must.append(qm.FieldCondition(key=TEXT_FIELD, match=qm.MatchText(text=text)))
    return qm.Filter(must=must) if must else None


class QdrantServerMemoryStore:
    def __init__(self, client: AsyncQdrantClient, collection: str, dim: int = 384) -> None:
        self._client = client
        self._collection = collection
        self._dim = dim

    @classmethod
    async def connect(cls, url: str, collection: str, api_key: str | None = None) -> QdrantServerMemoryStore:
        store = cls(AsyncQdrantClient(url=url, api_key=api_key), collection)
        await store.ensure_collection()
        return store

    async def ensure_collection(self) -> None:
        if await self._client.collection_exists(self._collection):
            await self._add_statement_vector()
            return
        params = qm.VectorParams(size=self._dim, distance=qm.Distance.COSINE)
        await self._client.create_collection(
            self._collection, vectors_config={TEXT_VECTOR: params, STATEMENT_VECTOR: params}
        )
        tenant = qm.KeywordIndexParams(type=qm.KeywordIndexType.KEYWORD, is_tenant=True)
        await self._client.create_payload_index(self._collection, "user_id", field_schema=tenant)
        for field in KEYWORD_FIELDS[1:]:
            await self._client.create_payload_index(self._collection, field, qm.PayloadSchemaType.KEYWORD)
        await self._client.create_payload_index(self._collection, TEXT_FIELD, qm.PayloadSchemaType.TEXT)

    async def _add_statement_vector(self) -> None:
        """A collection created before memories had a statement vector gets one (Qdrant 1.18's "create
        vector name"); its memories get theirs when rewritten, on first use by /respond, or from
        `heedful store fill-statements`."""
        info = await self._client.get_collection(self._collection)
        vectors = info.config.params.vectors
        if isinstance(vectors, dict) and STATEMENT_VECTOR in vectors:
            return
        dense = qm.DenseVectorConfig(size=self._dim, distance=qm.Distance.COSINE)
        await self._client.create_vector_name(self._collection, STATEMENT_VECTOR, qm.DenseVectorNameConfig(dense=dense))

    async def upsert(self, memories: list[Memory]) -> None:
        if not memories:
            return
        points = [qm.PointStruct(id=m.id, vector=to_vectors(m), payload=to_payload(m)) for m in memories]  # type: ignore[arg-type]
        await self._call(self._client.upsert(self._collection, points=points, wait=True))

    async def get(self, user_id: str, memory_id: str) -> Memory | None:
        found = await self.get_many(user_id, [memory_id])
        return found[0] if found else None

    async def get_many(
        self, user_id: str, memory_ids: list[str], *, with_vectors: bool | Sequence[str] = True
    ) -> list[Memory]:
        ids: list[Any] = [i for i in memory_ids if is_memory_id(i)]
        if not ids:
            return []
        records = await self._call(
            self._client.retrieve(
                self._collection, ids=ids, with_payload=True, with_vectors=vector_selection(with_vectors)
            )
        )
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
        records, next_id = await self._call(
            self._client.scroll(
                self._collection,
                scroll_filter=_filter(user_id, filters),
                limit=limit,
                offset=cursor if cursor and is_memory_id(cursor) else None,
                with_payload=True,
                with_vectors=with_vectors,
            )
        )
        memories = [from_payload(r.id, r.payload or {}, r.vector) for r in records]
        return MemoryPage(memories=memories, next_cursor=str(next_id) if next_id is not None else None)

    async def search(
        self, user_id: str, vector: list[float], *, limit: int = 10, filters: MemoryFilter | None = None
    ) -> list[ScoredMemory]:
        response = await self._call(
            self._client.query_points(
                self._collection,
                query=vector,
                query_filter=_filter(user_id, filters),
                limit=limit,
                with_payload=True,
                with_vectors=True,
            )
        )
        return [
            ScoredMemory(memory=from_payload(p.id, p.payload or {}, p.vector), score=p.score) for p in response.points
        ]

    async def update(self, user_id: str, memory_id: str, **changes: Any) -> Memory | None:
        current = await self.get(user_id, memory_id)
        if current is None:
            return None
        updated = apply_changes(current, changes)
        await self.upsert([updated])
        return updated

    async def fill_statement_vectors(self, user_id: str, memories: list[Memory]) -> int:
        ids: list[Any] = [m.id for m in memories if is_memory_id(m.id)]
        if not ids:
            return 0
        records = await self._call(
            self._client.retrieve(self._collection, ids=ids, with_payload=True, with_vectors=False)
        )
        stored = [from_payload(r.id, r.payload or {}) for r in records]
        vectors = statement_vectors_to_fill(user_id, memories, stored)
        if not vectors:
            return 0
        # Written only where the point is still as read: an edit between the read and this write moves its
        # `updated_at` (memory.store.apply_changes), and the write skips it rather than give the new text the old
        # text's vector (the edge store reads, compares and writes under its lock instead). `updated_at` is not
        # indexed, so the server compares the stored value itself. `update_filter` on update_vectors is in the API
        # reference of Qdrant 1.17 (not 1.13's); the deploy runs 1.18.
        read_at = {str(r.id): (r.payload or {})["updated_at"] for r in records}
        unchanged = qm.Filter(
            should=[
                qm.Filter(
                    must=[
                        qm.HasIdCondition(has_id=[i]),
                        qm.FieldCondition(key="updated_at", match=qm.MatchValue(value=read_at[i])),
                    ]
                )
                for i in vectors
            ]
        )
        points = [qm.PointVectors(id=i, vector={STATEMENT_VECTOR: v}) for i, v in vectors.items()]
        await self._call(
            self._client.update_vectors(self._collection, points=points, update_filter=unchanged, wait=True)
        )
        return len(vectors)

    async def without_statement(self, *, limit: int = 256, cursor: str | None = None) -> MemoryPage:
        records, next_id = await self._call(
            self._client.scroll(
                self._collection,
                scroll_filter=qm.Filter(must_not=[qm.HasVectorCondition(has_vector=STATEMENT_VECTOR)]),
                limit=limit,
                offset=cursor if cursor and is_memory_id(cursor) else None,
                with_payload=True,
                with_vectors=False,
            )
        )
        memories = [from_payload(r.id, r.payload or {}) for r in records]
        return MemoryPage(memories=memories, next_cursor=str(next_id) if next_id is not None else None)

    async def delete(self, user_id: str, memory_id: str) -> bool:
        if await self.get(user_id, memory_id) is None:
            return False
        selector = qm.PointIdsList(points=[memory_id])
        await self._call(self._client.delete(self._collection, points_selector=selector, wait=True))
        return True

    async def delete_user(self, user_id: str) -> int:
        count = await self.count(user_id)
        only_user = _filter(user_id, None)
        assert only_user is not None
        selector = qm.FilterSelector(filter=only_user)
        await self._call(self._client.delete(self._collection, points_selector=selector, wait=True))
        return count

    async def count(self, user_id: str | None = None, filters: MemoryFilter | None = None) -> int:
        result = await self._call(
            self._client.count(self._collection, count_filter=_filter(user_id, filters), exact=True)
        )
        return int(result.count)

    async def ready(self) -> bool:
        return bool(await self._call(self._client.collection_exists(self._collection)))

    async def close(self) -> None:
        await self._client.close()

    @staticmethod
    async def _call(awaitable: Any) -> Any:
        try:
            return await awaitable
        except (ResponseHandlingException, UnexpectedResponse, OSError) as exc:
            raise StoreUnavailable(f"Qdrant server: {exc}") from exc
