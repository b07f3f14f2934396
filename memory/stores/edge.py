"""The embedded default: the Qdrant engine in-process (qdrant-edge-py), one shard on disk.

The engine is synchronous; calls run in a worker thread under one lock so the event loop never blocks
and the shard sees one writer at a time. One process owns the shard: in embedded mode the extraction
worker runs inside the API process (see service/wiring.py).

Erasure is physical, not only logical: the write-ahead log is off (every write is flushed before it is
acknowledged instead) and every delete is followed by a vacuum of the segments it touched, so a deleted
memory's text does not linger in WAL pages or old segments on disk. Segments are sealed at
SEGMENT_POINTS and never get a vector graph, so that vacuum rewrites a few small segments and never
indexes anything (docs/scaling.md, "Erasure").
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import qdrant_edge as qe

from memory.model import Memory
from memory.store import (
    STATEMENT_VECTOR,
    TEXT_VECTOR,
    MemoryFilter,
    MemoryPage,
    ScoredMemory,
    apply_changes,
    from_payload,
    is_memory_id,
    statement_vectors_to_fill,
    to_payload,
    to_vectors,
    vector_selection,
)
from memory.stores.filters import KEYWORD_FIELDS, TEXT_FIELD, filter_terms

T = TypeVar("T")

# A segment is sealed (made read-only; new points go to a fresh one) once it holds this many points, and
# a vacuum rewrites whole segments, so this bounds what one delete rewrites. bench/scale.py at 100,000
# memories (10 segments), shared 2-core machine: erasing a user took 0.4-1.0 s, deleting one memory
# 1.4-1.8 s; an unsealed segment of 100,000 points took 6-11 s to vacuum. More segments cost reads a
# little: every filtered read visits each one (docs/scaling.md, "Erasure").
# Qdrant's optimizer documentation: "if the number of points is less than 10000, using any index would
# be less efficient than a brute force scan", so a segment this size loses nothing by having no graph.
SEGMENT_POINTS = 10_000
BYTES_PER_KB = 1024
FLOAT32_BYTES = 4
# Above any segment's size: every filtered search is an exact scan of the points the payload index
# selects (a user's ~100-10,000), and the graph-less segments are never searched as graphs.
FULL_SCAN_THRESHOLD_KB = 1 << 30
VECTOR_NAMES = (TEXT_VECTOR, STATEMENT_VECTOR)


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
        config = _config(dim)
        if (path / "edge_config.json").exists():
            _add_statement_vector(path, dim)
            # load() writes `config` over the shard's stored one; optimizing once here, before the store
            # serves, brings a shard written under an older config in line: earlier deletes' leftovers
            # vacuumed, HNSW graphs dropped, an oversized open segment sealed (docs/scaling.md)
            shard = qe.EdgeShard.load(str(path), config)
            shard.optimize()
            shard.flush()
            return shard
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
        points = [qe.Point(m.id, to_vectors(m), to_payload(m)) for m in memories]  # type: ignore[arg-type]

        def write(shard: qe.EdgeShard) -> None:
            shard.update(qe.UpdateOperation.upsert_points(points))
            shard.flush()
            _seal_if_full(shard)

        await self._run(write)

    async def get(self, user_id: str, memory_id: str) -> Memory | None:
        found = await self.get_many(user_id, [memory_id])
        return found[0] if found else None

    async def get_many(
        self, user_id: str, memory_ids: list[str], *, with_vectors: bool | Sequence[str] = True
    ) -> list[Memory]:
        ids = [i for i in memory_ids if is_memory_id(i)]
        vectors = vector_selection(with_vectors)
        records = await self._run(lambda s: s.retrieve(ids, with_payload=True, with_vector=vectors))  # type: ignore[arg-type]
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

    async def fill_statement_vectors(self, user_id: str, memories: list[Memory]) -> int:
        ids = [m.id for m in memories if is_memory_id(m.id)]
        if not ids:
            return 0

        def fill(shard: qe.EdgeShard) -> int:  # read, compare and write under one lock: no edit slips between
            records = shard.retrieve(ids, with_payload=True, with_vector=False)  # type: ignore[arg-type]
            stored = [from_payload(r.id, r.payload or {}) for r in records]
            vectors = statement_vectors_to_fill(user_id, memories, stored)
            if vectors:
                points = [qe.PointVectors(i, {STATEMENT_VECTOR: v}) for i, v in vectors.items()]
                shard.update(qe.UpdateOperation.update_vectors(points))  # type: ignore[arg-type]
                shard.flush()
                _seal_if_full(shard)  # as after every write
            return len(vectors)

        return await self._run(fill)

    async def without_statement(self, *, limit: int = 256, cursor: str | None = None) -> MemoryPage:
        request = qe.ScrollRequest(
            offset=cursor if cursor and is_memory_id(cursor) else None,
            limit=limit,
            filter=qe.Filter(must_not=[qe.HasVectorCondition(STATEMENT_VECTOR)]),
            with_payload=True,
            with_vector=False,
        )
        records, next_id = await self._run(lambda s: s.scroll(request))
        memories = [from_payload(r.id, r.payload or {}) for r in records]
        return MemoryPage(memories=memories, next_cursor=str(next_id) if next_id is not None else None)

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


def _add_statement_vector(path: Path, dim: int) -> None:
    """A shard written before memories had a statement vector gets that vector's (empty) storage: the engine
    refuses a config whose vectors differ from the segments'. Its memories get theirs when rewritten, on
    first use by /respond, or from `heedful store fill-statements`."""
    stored = json.loads((path / "edge_config.json").read_text())
    if STATEMENT_VECTOR in stored.get("vectors", {}):
        return
    shard = qe.EdgeShard.load(str(path), None)
    shard.update(qe.UpdateOperation.create_dense_vector(STATEMENT_VECTOR, dim, qe.Distance.Cosine))
    shard.flush()
    shard.close()


def _config(dim: int) -> qe.EdgeConfig:
    """The shard's configuration: small sealed segments without graphs, vacuumed on any delete.

    At 1,000,000 memories the default config had one user's erasure build the HNSW graph of the 900,000
    points written since the previous delete: 29 minutes under the store's lock, 7.2 GB peak RSS, and
    searches were no faster afterwards (1.3-1.4 ms p50 either way; docs/scaling.md). heedful never needs
    the graph: every query filters on one user's keyword-indexed id, and Qdrant's query planning then
    retrieves the points "using payload index ... if cardinality is below threshold" and scores them
    exactly. So there is no graph, but the indexing optimizer still runs: its threshold is the only size
    at which the engine seals the open segment, and a vacuum rewrites whole segments.
    """
    segment_kb = SEGMENT_POINTS * dim * FLOAT32_BYTES // BYTES_PER_KB
    return qe.EdgeConfig(
        vectors={name: qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine) for name in VECTOR_NAMES},
        # m=0 is Qdrant's documented way to skip the collection-wide graph (multitenancy guide);
        # payload_m=0 skips the per-value graphs too
        hnsw_config=qe.HnswIndexConfig(m=0, ef_construct=100, full_scan_threshold=FULL_SCAN_THRESHOLD_KB, payload_m=0),
        optimizers=qe.EdgeOptimizersConfig(
            # vacuum a segment on its first deleted point: erased text must leave the segment files (the
            # vacuum runs when the deleted fraction is *above* the threshold; 0.0001 spared one deleted
            # memory in any segment of more than 10,000 points)
            deleted_threshold=0.0,
            vacuum_min_vector_number=1,
            # seal the open segment at SEGMENT_POINTS ("indexing" it without a graph, as above) ...
            indexing_threshold=segment_kb,
            # ... and never merge segments past that size, so no vacuum rewrites more than one such segment
            max_segment_size=segment_kb,
            # default_segment_number stays automatic: with the size cap it only lets the merge optimizer
            # fold segments that vacuums shrank back together, up to SEGMENT_POINTS
            prevent_unoptimized=False,
        ),
        wal_enabled=False,
    )


def _seal_if_full(shard: qe.EdgeShard) -> None:
    """Seals the open segment once SEGMENT_POINTS points sit outside sealed segments.

    The engine writes every new point into one open segment and seals it only when optimized, so without
    this the first delete after a large fill would rewrite every point written since the last delete.
    """
    info = shard.info()
    # indexed_vectors_count counts each sealed point's named vectors: two, or one for a memory stored before
    # statement vectors. Half of it is a lower bound on the sealed points, so this over-estimates the open
    # segment and may run the optimizer early; it then seals nothing (0.07 ms on a 60,000-point shard).
    open_points = info.points_count - info.indexed_vectors_count // len(VECTOR_NAMES)
    if open_points >= SEGMENT_POINTS:
        shard.optimize()
        if shard.info().segments_count != info.segments_count:
            shard.flush()


def _delete_and_vacuum(shard: qe.EdgeShard, operation: qe.UpdateOperation) -> None:
    shard.update(operation)
    shard.optimize()
    shard.flush()
