"""POST /v1/conversations against the real Redis stream."""

from __future__ import annotations

import httpx
import pytest

from service.wiring import Components
from tests.conftest import bearer

pytestmark = pytest.mark.integration


def conversation(user: str = "u1", conv: str = "c1", text: str = "I am vegetarian and I love hiking.") -> dict:
    return {
        "user_id": user,
        "conversation_id": conv,
        "messages": [
            {"role": "user", "content": text, "timestamp": "2026-11-01T10:00:00Z"},
            {"role": "assistant", "content": "Noted! Any favourite trails?"},
        ],
    }


async def test_accepts_queues_and_replays_harmlessly(client: httpx.AsyncClient, app_key: str, components: Components):
    first = await client.post("/v1/conversations", json=conversation(), headers=bearer(app_key))
    assert first.status_code == 202 and first.json()["status"] == "queued"
    again = await client.post("/v1/conversations", json=conversation(), headers=bearer(app_key))
    assert again.status_code == 202 and again.json() == {
        **first.json(),
        "status": "duplicate",
        "detail": again.json()["detail"],
    }
    assert await components.redis.xlen(components.settings.stream_key) == 1

    stored = await components.conversations.load("acme:u1", "c1")
    assert stored is not None and stored.conversation.messages[0].content.startswith("I am vegetarian")
    assert stored.entry_id == first.json()["entry_id"]
    entry = (await components.redis.xrange(components.settings.stream_key))[0][1]
    assert b"vegetarian" not in b"".join(entry.values()), "the stream carries ids, not conversation text"

    grown = conversation()
    grown["messages"].append({"role": "user", "content": "Mostly in the Alps."})
    more = await client.post("/v1/conversations", json=grown, headers=bearer(app_key))
    assert more.json()["status"] == "queued" and more.json()["entry_id"] != first.json()["entry_id"]


async def test_raw_conversation_expires_after_retention(
    client: httpx.AsyncClient, app_key: str, components: Components
):
    await client.post("/v1/conversations", json=conversation(), headers=bearer(app_key))
    ttl = await components.redis.ttl(components.conversations.conv_key("acme:u1", "c1"))
    assert 0 < ttl <= components.settings.conversation_retention_s


@pytest.mark.parametrize(
    ("mutate", "status", "says"),
    [
        (lambda c: c.update(messages=[]), 422, "at least 1"),
        (lambda c: c["messages"][0].update(role="robot"), 422, "role"),
        (lambda c: c.update(user_id="bad:id"), 422, "user_id"),
        (lambda c: c.update(user_id=""), 422, "user_id"),
        (lambda c: c["messages"][0].update(content=""), 422, "content"),
        (lambda c: c["messages"][0].update(content="null\x00byte"), 422, "NUL"),
        (lambda c: c["messages"][0].update(content=12), 422, "content"),
        (lambda c: c.update(messages=[{"role": "user", "content": "x"}] * 501), 413, "at most 500"),
        (lambda c: c["messages"][0].update(content="x" * 20_001), 413, "at most 20000"),
    ],
)
async def test_bad_conversations_get_clear_errors(client, app_key, components: Components, mutate, status, says):
    body = conversation()
    mutate(body)
    response = await client.post("/v1/conversations", json=body, headers=bearer(app_key))
    assert response.status_code == status, response.text
    assert says in response.text
    assert await components.redis.xlen(components.settings.stream_key) == 0


async def test_oversize_body_and_invalid_utf8(client: httpx.AsyncClient, app_key: str, components: Components):
    huge = b'{"user_id": "u1", "conversation_id": "c1", "messages": [' + b" " * 1_100_000 + b"]}"
    response = await client.post(
        "/v1/conversations", content=huge, headers={**bearer(app_key), "content-type": "application/json"}
    )
    assert response.status_code == 413 and "body over" in response.json()["detail"]
    broken = b'{"user_id": "u1", "conversation_id": "c1", "messages": [{"role": "user", "content": "\xff\xfe"}]}'
    response = await client.post(
        "/v1/conversations", content=broken, headers={**bearer(app_key), "content-type": "application/json"}
    )
    assert response.status_code == 400 and "parsing the body" in response.text
    surrogate = '{"user_id": "u1", "conversation_id": "c1", "messages": [{"role": "user", "content": "\\ud800"}]}'
    response = await client.post(
        "/v1/conversations", content=surrogate, headers={**bearer(app_key), "content-type": "application/json"}
    )
    assert response.status_code == 422 and "unicode" in response.text
    assert await components.redis.xlen(components.settings.stream_key) == 0


async def test_unicode_and_injection_text_is_stored_verbatim(
    client: httpx.AsyncClient, app_key: str, components: Components
):
    text = "Ich heiße Zoë 🧗 — '; DROP TABLE users; -- {{7*7}} <script>alert(1)</script>"
    response = await client.post("/v1/conversations", json=conversation(text=text), headers=bearer(app_key))
    assert response.status_code == 202
    stored = await components.conversations.load("acme:u1", "c1")
    assert stored is not None and stored.conversation.messages[0].content == text


async def test_ingest_needs_an_app_key(client: httpx.AsyncClient, app_key: str):
    assert (await client.post("/v1/conversations", json=conversation())).status_code == 401
    assert (await client.post("/v1/conversations", json=conversation(), headers=bearer("hfk_nope"))).status_code == 401
    token = (await client.post("/v1/users/u1/token", headers=bearer(app_key))).json()["token"]
    assert (await client.post("/v1/conversations", json=conversation(), headers=bearer(token))).status_code == 403
