"""The MemoryStore contract, run against both adapters.

`edge` is the real Qdrant engine on disk; `server` is the qdrant-client adapter against qdrant-client's
local mode (no Qdrant server binary ships on PyPI), which checks the adapter's calls and filters.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import qdrant_edge as qe
from qdrant_client import AsyncQdrantClient
from qdrant_client import models as qm

from memory.model import Evidence, Memory, MemoryKind, MemoryStatus, memory_id
from memory.store import STATEMENT_VECTOR, MemoryFilter, MemoryStore, fill_all_statement_vectors, to_payload
from memory.stores.edge import EdgeMemoryStore
from memory.stores.qdrant_server import QdrantServerMemoryStore

pytestmark = pytest.mark.integration


def vector_for(text: str) -> list[float]:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
    v = np.random.default_rng(seed).standard_normal(384).astype(np.float32)
    return (v / np.linalg.norm(v)).tolist()


def make(user: str, text: str, **fields: object) -> Memory:
    evidence = [Evidence(conversation_id="c1", turn_ids=[0], quote=text)]
    return Memory.new(user, text, embedding=vector_for(text), evidence=evidence, **fields)


@pytest.fixture(params=["edge", "server"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MemoryStore]:
    if request.param == "edge":
        s: MemoryStore = EdgeMemoryStore(tmp_path / "edge")
    else:
        server = QdrantServerMemoryStore(AsyncQdrantClient(location=":memory:"), "test_memories")
        await server.ensure_collection()
        s = server
    yield s
    await s.close()


async def test_upsert_is_idempotent_by_user_and_normalized_text(store: MemoryStore) -> None:
    first = make("alice", "Prefers bullet points.")
    again = make("alice", "  prefers   BULLET points ")
    assert first.id == again.id == memory_id("alice", "prefers bullet points")
    await store.upsert([first])
    await store.upsert([again])
    assert await store.count("alice") == 1
    assert make("bob", "Prefers bullet points.").id != first.id


async def test_get_list_and_count_are_scoped_to_one_user(store: MemoryStore) -> None:
    mine = make("alice", "is vegetarian", kind=MemoryKind.profile)
    theirs = make("bob", "is a pilot")
    await store.upsert([mine, theirs])
    got = await store.get("alice", mine.id)
    assert got is not None and got.text == "is vegetarian" and got.evidence[0].quote == "is vegetarian"
    assert got.embedding is not None and len(got.embedding) == 384
    assert await store.get("alice", theirs.id) is None
    assert await store.get("alice", "not-a-uuid") is None
    assert [m.id for m in (await store.page("alice")).memories] == [mine.id]
    assert await store.count("alice") == 1 and await store.count() == 2


async def test_list_filters_and_paginates(store: MemoryStore) -> None:
    memories = [make("alice", f"likes topic number {i}") for i in range(7)]
    memories.append(make("alice", "is a night owl", kind=MemoryKind.profile, status=MemoryStatus.disabled))
    await store.upsert(memories)
    seen: list[str] = []
    cursor = None
    while True:
        page = await store.page("alice", limit=3, cursor=cursor)
        seen += [m.id for m in page.memories]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sorted(seen) == sorted(m.id for m in memories)
    disabled = await store.page("alice", MemoryFilter(status=MemoryStatus.disabled))
    assert [m.text for m in disabled.memories] == ["is a night owl"]
    profile = await store.page("alice", MemoryFilter(kind=MemoryKind.profile))
    assert [m.text for m in profile.memories] == ["is a night owl"]
    owl = await store.page("alice", MemoryFilter(text="owl"))
    assert [m.text for m in owl.memories] == ["is a night owl"]
    assert await store.count("alice", MemoryFilter(status=MemoryStatus.active)) == 7


async def test_list_without_vectors_is_the_same_list(store: MemoryStore) -> None:
    memories = [make("alice", f"likes topic number {i}") for i in range(4)]
    await store.upsert(memories)
    full = (await store.page("alice")).memories
    bare = (await store.page("alice", with_vectors=False)).memories
    assert all(m.embedding is not None and len(m.embedding) == 384 for m in full)
    assert all(m.embedding is None for m in bare)
    assert [m.model_dump() for m in bare] == [m.model_dump() for m in full]


async def test_both_vectors_come_back_and_search_uses_the_texts(store: MemoryStore) -> None:
    both = make("alice", "is vegetarian", statement_embedding=vector_for("The user is vegetarian."))
    text_only = make("alice", "keeps bees")
    await store.upsert([both, text_only])
    got = {m.text: m for m in await store.get_many("alice", [both.id, text_only.id])}
    assert got["is vegetarian"].embedding == pytest.approx(vector_for("is vegetarian"), abs=1e-6)
    assert got["is vegetarian"].statement_embedding == pytest.approx(vector_for("The user is vegetarian."), abs=1e-6)
    assert got["keeps bees"].embedding is not None and got["keeps bees"].statement_embedding is None
    listed = {m.text: m for m in (await store.page("alice")).memories}
    assert listed["is vegetarian"].statement_embedding == got["is vegetarian"].statement_embedding
    bare = (await store.page("alice", with_vectors=False)).memories
    assert all(m.embedding is None and m.statement_embedding is None for m in bare)
    # the statement's vector is never what a search matches
    hit = await store.search("alice", vector_for("The user is vegetarian."), limit=2)
    assert all(h.score < 0.5 for h in hit)
    exact = (await store.search("alice", vector_for("is vegetarian"), limit=1))[0]
    assert exact.memory.text == "is vegetarian" and exact.memory.statement_embedding is not None


async def test_a_read_of_the_statement_vectors_leaves_the_texts_unread(store: MemoryStore) -> None:
    both = make("alice", "is vegetarian", statement_embedding=vector_for("The user is vegetarian."))
    text_only = make("alice", "keeps bees")
    await store.upsert([both, text_only, make("bob", "plays chess")])
    ids = [both.id, text_only.id]
    got = {m.text: m for m in await store.get_many("alice", ids, with_vectors=[STATEMENT_VECTOR])}
    assert got["is vegetarian"].statement_embedding == pytest.approx(vector_for("The user is vegetarian."), abs=1e-6)
    assert got["is vegetarian"].embedding is None
    assert got["keeps bees"].statement_embedding is None and got["keeps bees"].embedding is None
    assert got["is vegetarian"].model_dump() == both.model_dump()
    bare = await store.get_many("alice", ids, with_vectors=False)
    assert {m.text for m in bare} == set(got) and all(m.embedding is None for m in bare)


async def test_a_new_text_drops_the_old_statement_vector(store: MemoryStore) -> None:
    m = make("alice", "likes jazz", statement_embedding=vector_for("The user likes jazz."))
    await store.upsert([m])
    disabled = await store.update("alice", m.id, status=MemoryStatus.disabled)
    assert disabled is not None and disabled.statement_embedding is not None  # kept: same text
    edited = await store.update("alice", m.id, text="likes bebop jazz", embedding=vector_for("likes bebop jazz"))
    assert edited is not None and edited.statement_embedding is None
    stored = await store.get("alice", m.id)
    assert stored is not None and stored.statement_embedding is None
    new = vector_for("The user likes bebop jazz.")
    restated = await store.update("alice", m.id, text="likes bebop", statement_embedding=new)
    stored = await store.get("alice", m.id)
    assert restated is not None and stored is not None
    assert stored.statement_embedding == pytest.approx(new, abs=1e-6)


async def test_statement_vectors_are_filled_only_where_the_text_is_unchanged(store: MemoryStore) -> None:
    kept, edited, theirs = make("alice", "keeps bees"), make("alice", "likes jazz"), make("bob", "plays chess")
    await store.upsert([kept, edited, theirs])
    await store.update("alice", edited.id, text="likes bebop", embedding=vector_for("likes bebop"))
    filled = [
        m.model_copy(update={"statement_embedding": vector_for(f"The user {m.text}.")}) for m in (kept, edited, theirs)
    ]
    assert await store.fill_statement_vectors("alice", filled) == 1  # not the edited one, not bob's
    got = {m.id: m for m in await store.get_many("alice", [kept.id, edited.id])}
    assert got[kept.id].statement_embedding == pytest.approx(vector_for("The user keeps bees."), abs=1e-6)
    assert got[kept.id].embedding == pytest.approx(vector_for("keeps bees"), abs=1e-6)
    assert got[kept.id].model_dump() == kept.model_dump()  # the payload is untouched
    assert got[edited.id].statement_embedding is None
    bob = await store.get("bob", theirs.id)
    assert bob is not None and bob.statement_embedding is None


async def test_every_memory_without_a_statement_vector_gets_one(store: MemoryStore) -> None:
    has = make("alice", "is vegetarian", statement_embedding=vector_for("The user is vegetarian."))
    old = [make("alice", f"likes topic {i}") for i in range(4)] + [make("bob", "plays chess")]
    await store.upsert([has, *old])
    assert {m.id for m in (await store.without_statement(limit=100)).memories} == {m.id for m in old}

    async def embed(texts: list[str]) -> list[list[float]]:
        return [vector_for(t) for t in texts]

    assert await fill_all_statement_vectors(store, embed, batch=2) == {"seen": 5, "filled": 5}  # 3 pages
    assert (await store.without_statement()).memories == []
    bob = await store.get("bob", old[-1].id)
    assert bob is not None and bob.statement_embedding == pytest.approx(vector_for("The user plays chess."), abs=1e-6)


async def test_search_stays_within_one_user(store: MemoryStore) -> None:
    await store.upsert([make("alice", "plays the cello"), make("bob", "plays the cello too")])
    hits = await store.search("alice", vector_for("plays the cello too"), limit=5)
    assert [h.memory.user_id for h in hits] == ["alice"]
    exact = await store.search("alice", vector_for("plays the cello"), limit=1)
    assert exact[0].memory.text == "plays the cello" and exact[0].score == pytest.approx(1.0, abs=1e-4)


async def test_update_changes_status_text_and_vector(store: MemoryStore) -> None:
    m = make("alice", "likes jazz")
    await store.upsert([m])
    disabled = await store.update("alice", m.id, status=MemoryStatus.disabled)
    assert disabled is not None and disabled.status is MemoryStatus.disabled
    assert disabled.updated_at >= m.updated_at
    edited = await store.update("alice", m.id, text="likes bebop jazz", embedding=vector_for("likes bebop jazz"))
    assert edited is not None
    hit = (await store.search("alice", vector_for("likes bebop jazz"), limit=1))[0]
    assert hit.memory.text == "likes bebop jazz" and hit.score == pytest.approx(1.0, abs=1e-4)
    assert await store.update("bob", m.id, status=MemoryStatus.active) is None


async def test_delete_one_and_delete_user(store: MemoryStore) -> None:
    a1, a2, b1 = make("alice", "a one"), make("alice", "a two"), make("bob", "b one")
    await store.upsert([a1, a2, b1])
    assert not await store.delete("bob", a1.id)  # another user's id deletes nothing
    assert await store.delete("alice", a1.id)
    assert await store.get("alice", a1.id) is None
    assert await store.delete_user("alice") == 1
    assert await store.count("alice") == 0 and await store.count("bob") == 1


async def test_edge_store_survives_close_and_reopen_without_leftovers(tmp_path: Path) -> None:
    path = tmp_path / "edge"
    store = EdgeMemoryStore(path)
    keep, erase = make("alice", "keeps bees"), make("carol", "secret-marker-xyzzy hobby")
    await store.upsert([keep, erase])
    await store.delete_user("carol")
    await store.close()

    reopened = EdgeMemoryStore(path)
    got = await reopened.get("alice", keep.id)
    assert got is not None and got.text == "keeps bees"
    assert await reopened.count() == 1
    await reopened.close()
    leftovers = [p for p in path.rglob("*") if p.is_file() and b"secret-marker-xyzzy" in p.read_bytes()]
    assert leftovers == [], f"erased text still on disk in {leftovers}"


async def test_an_edge_shard_from_before_statement_vectors_opens_and_takes_them(tmp_path: Path) -> None:
    """A shard written with the text vector only (the config before statement vectors) keeps its memories."""
    path = tmp_path / "edge"
    old = make("alice", "keeps bees")
    text_only = qe.EdgeVectorParams(size=384, distance=qe.Distance.Cosine)
    shard = qe.EdgeShard.create(str(path), qe.EdgeConfig(vectors=text_only, wal_enabled=False))
    shard.update(qe.UpdateOperation.upsert_points([qe.Point(old.id, old.embedding, to_payload(old))]))
    shard.flush()
    shard.close()

    store = EdgeMemoryStore(path)
    got = await store.get("alice", old.id)
    assert got is not None and got.text == "keeps bees" and got.statement_embedding is None
    (statement_only,) = await store.get_many("alice", [old.id], with_vectors=[STATEMENT_VECTOR])
    assert statement_only.text == "keeps bees" and statement_only.statement_embedding is None
    new = make("alice", "is vegetarian", statement_embedding=vector_for("The user is vegetarian."))
    await store.upsert([new])
    await store.close()
    reopened = EdgeMemoryStore(path)
    stored = await reopened.get("alice", new.id)
    assert stored is not None and stored.statement_embedding is not None
    assert await reopened.count("alice") == 2
    await reopened.close()


async def test_a_server_collection_from_before_statement_vectors_takes_them() -> None:
    client = AsyncQdrantClient(location=":memory:")
    await client.create_collection("old", vectors_config=qm.VectorParams(size=384, distance=qm.Distance.COSINE))
    store = QdrantServerMemoryStore(client, "old")
    await store.ensure_collection()
    memory = make("alice", "is vegetarian", statement_embedding=vector_for("The user is vegetarian."))
    await store.upsert([memory])
    stored = await store.get("alice", memory.id)
    assert stored is not None and stored.statement_embedding is not None
    (statement_only,) = await store.get_many("alice", [memory.id], with_vectors=[STATEMENT_VECTOR])
    assert statement_only.statement_embedding == stored.statement_embedding and statement_only.embedding is None
    await store.close()


async def test_a_server_fill_skips_a_memory_edited_after_it_was_read() -> None:
    """The server adapter reads, then writes (no lock spans both): an edit in between must not get the old text's
    statement vector. The edit is made right after the adapter's read, through the adapter itself."""
    client = AsyncQdrantClient(location=":memory:")
    store = QdrantServerMemoryStore(client, "race")
    await store.ensure_collection()
    memory = make("alice", "likes jazz")
    await store.upsert([memory])
    read = client.retrieve

    async def read_then_edit(*args: Any, **kwargs: Any) -> Any:
        records = await read(*args, **kwargs)
        client.retrieve = read  # type: ignore[method-assign]  # the edit's own reads go through untouched
        await store.update("alice", memory.id, text="likes bebop", embedding=vector_for("likes bebop"))
        return records

    client.retrieve = read_then_edit  # type: ignore[method-assign]
    stale = memory.model_copy(update={"statement_embedding": vector_for("The user likes jazz.")})
    await store.fill_statement_vectors("alice", [stale])

    stored = await store.get("alice", memory.id)
    assert stored is not None and stored.text == "likes bebop" and stored.statement_embedding is None
    fresh = stored.model_copy(update={"statement_embedding": vector_for("The user likes bebop.")})
    assert await store.fill_statement_vectors("alice", [fresh]) == 1
    filled = await store.get("alice", memory.id)
    assert filled is not None and filled.statement_embedding == pytest.approx(fresh.statement_embedding, abs=1e-6)
    await store.close()
