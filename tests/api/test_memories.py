"""/v1/memories and /v1/users: listing, editing, disabling, deleting, export, pause, tokens and access."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from memory.model import Evidence, Memory, MemoryKind
from memory.store import attach_statement_vectors
from service.wiring import Components
from tests.api.test_ingest import conversation
from tests.conftest import bearer

pytestmark = pytest.mark.integration


async def remember(
    components: Components, tenant: str, *texts: str, kind: MemoryKind = MemoryKind.preference
) -> list[Memory]:
    vectors = await components.embed(list(texts))
    memories = [
        Memory.new(tenant, t, kind=kind, embedding=v, evidence=[Evidence(conversation_id="c1", turn_ids=[0], quote=t)])
        for t, v in zip(texts, vectors, strict=True)
    ]
    await attach_statement_vectors(memories, components.embed)  # as the extraction worker stores them
    await components.store.upsert(memories)
    return memories


@pytest.fixture
async def alice(client: httpx.AsyncClient, app_key: str, components: Components) -> list[Memory]:
    await client.post("/v1/conversations", json=conversation("alice"), headers=bearer(app_key))
    return await remember(
        components, "acme:alice", "prefers short answers", "is vegetarian", "enjoys hiking in the Alps"
    )


async def test_list_filter_get_and_paginate(client: httpx.AsyncClient, app_key: str, alice: list[Memory]):
    listed = (await client.get("/v1/memories", params={"user_id": "alice"}, headers=bearer(app_key))).json()
    assert sorted(m["text"] for m in listed["memories"]) == sorted(m.text for m in alice)
    assert all(m["user_id"] == "alice" and m["evidence"] for m in listed["memories"])
    hits = (
        await client.get("/v1/memories", params={"user_id": "alice", "q": "vegetarian"}, headers=bearer(app_key))
    ).json()
    assert [m["text"] for m in hits["memories"]] == ["is vegetarian"]
    page = (await client.get("/v1/memories", params={"user_id": "alice", "limit": 2}, headers=bearer(app_key))).json()
    assert len(page["memories"]) == 2 and page["next_cursor"]
    one = await client.get(f"/v1/memories/{alice[1].id}", params={"user_id": "alice"}, headers=bearer(app_key))
    assert one.json()["text"] == "is vegetarian"


async def test_edit_reembeds_and_disable_enable(
    client: httpx.AsyncClient, app_key: str, alice: list[Memory], components: Components
):
    target = alice[2]
    edited = await client.patch(
        f"/v1/memories/{target.id}",
        params={"user_id": "alice"},
        json={"text": "enjoys sailing"},
        headers=bearer(app_key),
    )
    assert edited.status_code == 200 and edited.json()["text"] == "enjoys sailing"
    query = (await components.embed(["sailing on a boat"]))[0]
    top = (await components.store.search("acme:alice", query, limit=1))[0]
    assert top.memory.id == target.id and top.memory.text == "enjoys sailing"
    stored = await components.store.get("acme:alice", target.id)
    assert stored is not None and stored.embedding is not None
    assert np.dot(stored.embedding, (await components.embed(["enjoys sailing"]))[0]) == pytest.approx(1.0, abs=1e-3)
    (statement,) = await components.embed(["The user enjoys sailing."])  # what the selector scores
    assert stored.statement_embedding == pytest.approx(statement, abs=1e-5)

    disabled = await client.patch(
        f"/v1/memories/{target.id}", params={"user_id": "alice"}, json={"status": "disabled"}, headers=bearer(app_key)
    )
    assert disabled.json()["status"] == "disabled"
    active = (
        await client.get("/v1/memories", params={"user_id": "alice", "status": "active"}, headers=bearer(app_key))
    ).json()
    assert target.id not in [m["id"] for m in active["memories"]]
    enabled = await client.patch(
        f"/v1/memories/{target.id}", params={"user_id": "alice"}, json={"status": "active"}, headers=bearer(app_key)
    )
    assert enabled.json()["status"] == "active"
    bad = await client.patch(
        f"/v1/memories/{target.id}", params={"user_id": "alice"}, json={"status": "superseded"}, headers=bearer(app_key)
    )
    assert bad.status_code == 422
    empty = await client.patch(
        f"/v1/memories/{target.id}", params={"user_id": "alice"}, json={}, headers=bearer(app_key)
    )
    assert empty.status_code == 422 and "nothing to change" in empty.text


async def test_delete_one_and_export(
    client: httpx.AsyncClient, app_key: str, alice: list[Memory], components: Components
):
    gone = await client.delete(f"/v1/memories/{alice[0].id}", params={"user_id": "alice"}, headers=bearer(app_key))
    assert gone.status_code == 204
    assert await components.store.get("acme:alice", alice[0].id) is None
    again = await client.delete(f"/v1/memories/{alice[0].id}", params={"user_id": "alice"}, headers=bearer(app_key))
    assert again.status_code == 404
    export = await client.get("/v1/memories/export", params={"user_id": "alice"}, headers=bearer(app_key))
    assert export.status_code == 200 and "attachment" in export.headers["content-disposition"]
    assert sorted(m["text"] for m in export.json()["memories"]) == ["enjoys hiking in the Alps", "is vegetarian"]


async def test_pause_accepts_but_stores_nothing(
    client: httpx.AsyncClient, app_key: str, alice: list[Memory], components: Components
):
    state = (await client.post("/v1/users/alice/pause", headers=bearer(app_key))).json()
    assert state["paused"] is True
    before = await components.redis.xlen(components.settings.stream_key)
    response = await client.post(
        "/v1/conversations", json=conversation("alice", "c2", "I moved to Lisbon."), headers=bearer(app_key)
    )
    assert response.status_code == 202 and response.json()["status"] == "paused"
    assert await components.redis.xlen(components.settings.stream_key) == before
    assert await components.conversations.load("acme:alice", "c2") is None
    resumed = (await client.post("/v1/users/alice/resume", headers=bearer(app_key))).json()
    assert resumed["paused"] is False
    response = await client.post(
        "/v1/conversations", json=conversation("alice", "c2", "I moved to Lisbon."), headers=bearer(app_key)
    )
    assert response.json()["status"] == "queued"


async def test_unknown_user_is_404_with_a_message(client: httpx.AsyncClient, app_key: str):
    response = await client.get("/v1/memories", params={"user_id": "nobody"}, headers=bearer(app_key))
    assert response.status_code == 404 and "no user 'nobody'" in response.json()["detail"]
    assert (await client.get("/v1/memories", headers=bearer(app_key))).status_code == 422


async def test_user_token_reaches_only_its_own_memories(
    client: httpx.AsyncClient, app_key: str, alice: list[Memory], components: Components
):
    await client.post("/v1/conversations", json=conversation("bob"), headers=bearer(app_key))
    bobs = await remember(components, "acme:bob", "is a pilot")
    token = (await client.post("/v1/users/alice/token", headers=bearer(app_key))).json()["token"]
    mine = (await client.get("/v1/memories", headers=bearer(token))).json()
    assert len(mine["memories"]) == 3
    as_bob = {"user_id": "bob"}
    assert (await client.get("/v1/memories", params=as_bob, headers=bearer(token))).status_code == 404
    assert (await client.get(f"/v1/memories/{bobs[0].id}", params=as_bob, headers=bearer(token))).status_code == 404
    assert (await client.get(f"/v1/memories/{bobs[0].id}", headers=bearer(token))).status_code == 404
    assert (
        await client.patch(
            f"/v1/memories/{bobs[0].id}", params=as_bob, json={"status": "disabled"}, headers=bearer(token)
        )
    ).status_code == 404
    assert (
        await client.patch(f"/v1/memories/{bobs[0].id}", json={"status": "disabled"}, headers=bearer(token))
    ).status_code == 404
    assert (await client.delete(f"/v1/memories/{bobs[0].id}", headers=bearer(token))).status_code == 404
    assert (await client.delete("/v1/memories", params=as_bob, headers=bearer(token))).status_code == 404
    assert (await client.post("/v1/users/bob/pause", headers=bearer(token))).status_code == 404
    assert (await client.post("/v1/users/bob/token", headers=bearer(token))).status_code == 403
    assert await components.store.get("acme:bob", bobs[0].id) is not None


async def test_app_key_cannot_reach_another_apps_users(
    client: httpx.AsyncClient, app_key: str, alice: list[Memory], components: Components
):
    other = await components.keys.create("globex")
    assert (await client.get("/v1/memories", params={"user_id": "alice"}, headers=bearer(other))).status_code == 404
    assert (
        await client.get(f"/v1/memories/{alice[0].id}", params={"user_id": "alice"}, headers=bearer(other))
    ).status_code == 404
    assert (await client.delete("/v1/memories", params={"user_id": "alice"}, headers=bearer(other))).status_code == 404
    # globex may have its own "alice": same id, a different person
    await client.post("/v1/conversations", json=conversation("alice"), headers=bearer(other))
    theirs = (await client.get("/v1/memories", params={"user_id": "alice"}, headers=bearer(other))).json()
    assert theirs["memories"] == []
    assert await components.store.count("acme:alice") == 3


async def test_tokens_expire_and_forgeries_fail(
    client: httpx.AsyncClient, app_key: str, alice: list[Memory], components: Components
):
    import jwt

    expired = jwt.encode(
        {"sub": "alice", "app": "acme", "aud": "heedful:user", "exp": 1},
        components.settings.token_secret.get_secret_value(),
        algorithm="HS256",
    )  # type: ignore[union-attr]
    response = await client.get("/v1/memories", headers=bearer(expired))
    assert response.status_code == 401 and "expired" in response.text
    forged = jwt.encode(
        {"sub": "alice", "app": "acme", "aud": "heedful:user", "exp": 4_000_000_000}, "guess", algorithm="HS256"
    )
    assert (await client.get("/v1/memories", headers=bearer(forged))).status_code == 401
    assert (await client.get("/v1/memories", headers={"Authorization": "Basic abc"})).status_code == 401


async def test_only_health_is_open(client: httpx.AsyncClient, app_key: str):
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/metrics")).status_code == 401
    metrics = await client.get("/metrics", headers=bearer(app_key))
    assert metrics.status_code == 200 and "heedful_http_requests_total" in metrics.text
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"redis": "ok", "store": "ok", "embedder": "ok"}


async def test_rate_limit_per_credential(tmp_path, app_key: str):
    from service.app import create_app
    from service.wiring import build
    from tests.conftest import purge, test_settings

    settings = test_settings(tmp_path, rate_limit_per_minute=3)
    components = await build(settings)
    app = create_app(components=components)
    app.state.components = components
    key = await components.keys.create("tiny")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        codes = [
            (await c.get("/v1/memories", params={"user_id": "x"}, headers=bearer(key))).status_code for _ in range(4)
        ]
        assert codes == [404, 404, 404, 429]
        limited = await c.get("/v1/memories", params={"user_id": "x"}, headers=bearer(key))
        assert "per minute" in limited.json()["detail"] and int(limited.headers["retry-after"]) <= 60
        other = await components.keys.create("other")
        assert (await c.get("/v1/memories", params={"user_id": "x"}, headers=bearer(other))).status_code == 404
    await components.close()
    purge(settings)
