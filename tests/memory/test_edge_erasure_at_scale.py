"""A deleted memory's text leaves the embedded shard's files in a store of more than 10,000 memories.

The store-contract test greps the data directory after an erasure in a store of two memories; that
passed while one deleted memory in a segment of more than 10,000 points stayed on disk
(docs/scaling.md, "Erasure"). Every memory here carries 16 random capital letters: the engine
compresses repetitive payload text, so a marker that is not random may be absent from files that hold
it. Each test first finds its marker on disk, so it cannot pass by looking for the wrong bytes.
"""

from __future__ import annotations

import string
from pathlib import Path

import numpy as np
import pytest
import qdrant_edge as qe

from memory.model import Evidence, Memory
from memory.store import to_payload
from memory.stores.edge import EdgeMemoryStore
from memory.stores.filters import KEYWORD_FIELDS, TEXT_FIELD

pytestmark = pytest.mark.integration

USERS, PER_USER = 120, 100  # 12,000 memories: one deleted is below the old 0.0001 deleted fraction
DIM = 384
LETTERS = np.array(list(string.ascii_uppercase))


def population(seed: int) -> list[Memory]:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((USERS * PER_USER, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    memories = []
    for i, vector in enumerate(vectors.tolist()):
        text = f"likes topic {i % 97} {''.join(rng.choice(LETTERS, 16))}"
        evidence = [Evidence(conversation_id=f"c{i // PER_USER}", turn_ids=[0], quote=text)]
        memories.append(Memory.new(f"app:u{i // PER_USER}", text, embedding=vector, evidence=evidence))
    return memories


def marker_of(memory: Memory) -> bytes:
    return memory.text.split()[-1].encode()


def on_disk(root: Path, marker: bytes) -> list[Path]:
    """Files holding the marker as stored (payload) or lower-cased (the full-text index's tokens)."""
    needles = (marker, marker.lower())
    return [p for p in root.rglob("*") if p.is_file() and any(n in p.read_bytes() for n in needles)]


async def test_one_deleted_memory_leaves_the_disk_in_a_store_of_12000(tmp_path: Path) -> None:
    """As bench/scale.py's probe: a user erased, then one memory of another user deleted.

    The first erasure leaves the points in a rewritten segment of 11,900 (with the old config, an HNSW
    graph built on them); one deleted point of those was below the old threshold.
    """
    memories = population(seed=1)
    erased, victim = memories[0], memories[7 * PER_USER + 42]
    path = tmp_path / "edge"
    store = EdgeMemoryStore(path)
    try:
        await store.upsert(memories)
        assert await store.delete_user(erased.user_id) == PER_USER
        assert on_disk(path, marker_of(erased)) == []
        assert on_disk(path, marker_of(victim)), "control: the marker must be found before the delete"
        assert await store.delete(victim.user_id, victim.id)
        assert on_disk(path, marker_of(victim)) == []
        assert await store.get(victim.user_id, victim.id) is None
        assert await store.count() == len(memories) - PER_USER - 1
        assert await store.count(victim.user_id) == PER_USER - 1
    finally:
        await store.close()


def write_with_the_old_config(path: Path, memories: list[Memory], deleted: Memory) -> None:
    """A shard as the store configured it before: vacuum only above 0.0001 deleted, indexing by default.

    The deleted point stays in its segment: the old store's optimize() after the delete would not have
    vacuumed one point of 12,000 either (it would have built the HNSW graph, which takes long here).
    """
    config = qe.EdgeConfig(
        vectors=qe.EdgeVectorParams(size=DIM, distance=qe.Distance.Cosine),
        optimizers=qe.EdgeOptimizersConfig(deleted_threshold=0.0001, vacuum_min_vector_number=1),
        wal_enabled=False,
    )
    shard = qe.EdgeShard.create(str(path), config)
    for field in KEYWORD_FIELDS:
        shard.update(qe.UpdateOperation.create_field_index(field, qe.PayloadSchemaType.Keyword))
    shard.update(qe.UpdateOperation.create_field_index(TEXT_FIELD, qe.PayloadSchemaType.Text))
    points = [qe.Point(m.id, m.embedding, to_payload(m)) for m in memories if m.embedding is not None]
    shard.update(qe.UpdateOperation.upsert_points(points))
    shard.update(qe.UpdateOperation.delete_points([deleted.id]))
    shard.flush()
    shard.close()


async def test_reopening_a_shard_written_before_removes_what_its_deletes_left(tmp_path: Path) -> None:
    memories = population(seed=2)
    victim = memories[3 * PER_USER + 5]
    path = tmp_path / "edge"
    path.mkdir()
    write_with_the_old_config(path, memories, victim)
    assert on_disk(path, marker_of(victim)), "control: the old config left the deleted memory on disk"
    store = EdgeMemoryStore(path)
    try:
        assert on_disk(path, marker_of(victim)) == []
        assert await store.count() == len(memories) - 1
        kept = memories[3 * PER_USER + 6]
        got = await store.get(kept.user_id, kept.id)
        assert got is not None and got.text == kept.text
    finally:
        await store.close()
