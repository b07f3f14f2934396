"""DELETE /v1/memories erases a user: afterwards no store holds their id or their words."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from service.wiring import Components
from tests.api.test_ingest import conversation
from tests.api.test_memories import remember
from tests.conftest import bearer

pytestmark = pytest.mark.integration

SECRET_WORDS = "zanzibar-quokka-7731"


async def redis_mentions(components: Components, needles: list[bytes]) -> list[str]:
    """Every key under the test prefix whose name or value mentions a needle."""
    found = []
    async for key in components.redis.scan_iter(f"{components.settings.key_prefix}*"):
        kind = (await components.redis.type(key)).decode()
        if kind == "string":
            blobs = [await components.redis.get(key) or b""]
        elif kind == "hash":
            blobs = [k + v for k, v in (await components.redis.hgetall(key)).items()]
        elif kind == "set":
            blobs = list(await components.redis.smembers(key))
        elif kind == "stream":
            blobs = [b"".join(k + v for k, v in fields.items()) for _, fields in await components.redis.xrange(key)]
        else:
            blobs = []
        for needle in needles:
            if needle in key or any(needle in blob for blob in blobs):
                found.append(f"{key.decode()} ({kind})")
    return found


def files_mentioning(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


async def test_erase_leaves_nothing_of_the_user_anywhere(
    client: httpx.AsyncClient, app_key: str, components: Components, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)
    text = f"My codename is {SECRET_WORDS} and I collect stamps."
    for conv in ("c1", "c2"):
        response = await client.post(
            "/v1/conversations", json=conversation("erin", conv, text), headers=bearer(app_key)
        )
        assert response.status_code == 202
    # one entry is in flight: delivered to a worker, not yet acknowledged
    settings = components.settings
    delivered = await components.redis.xreadgroup(
        settings.consumer_group, "worker-1", {settings.stream_key: ">"}, count=1
    )
    assert delivered and delivered[0][1]
    await components.redis.xadd(
        settings.dead_letter_stream, {"tenant": "acme:erin", "conversation": "c0", "error": "boom"}
    )
    memories = await remember(components, "acme:erin", f"goes by the codename {SECRET_WORDS}", "collects stamps")
    await client.post("/v1/conversations", json=conversation("frank", "c1", "I like tea."), headers=bearer(app_key))
    await remember(components, "acme:frank", "likes tea")
    edited = await client.patch(
        f"/v1/memories/{memories[1].id}",
        params={"user_id": "erin"},
        json={"status": "disabled"},
        headers=bearer(app_key),
    )
    assert edited.status_code == 200
    needles = [b"acme:erin", SECRET_WORDS.encode(), b"collects stamps"]
    assert await redis_mentions(components, needles), "the test must see the user's data before erasing it"

    report = await client.delete("/v1/memories", params={"user_id": "erin"}, headers=bearer(app_key))
    assert report.status_code == 200
    assert report.json() == {"memories_deleted": 2, "stream_entries_deleted": 3}

    assert await redis_mentions(components, needles) == []
    assert await components.store.count("acme:erin") == 0
    pending = await components.redis.xpending(settings.stream_key, settings.consumer_group)
    assert pending["pending"] == 0
    assert files_mentioning(settings.data_dir, SECRET_WORDS.encode()) == []
    assert files_mentioning(settings.data_dir, b"collects stamps") == []
    service_log = "\n".join(
        r.getMessage() for r in caplog.records if not r.name.startswith("httpx")
    )  # httpx: the test's own client
    assert SECRET_WORDS not in service_log and "erin" not in service_log
    # the user is unknown now; another user of the app is untouched
    assert (await client.get("/v1/memories", params={"user_id": "erin"}, headers=bearer(app_key))).status_code == 404
    assert await components.store.count("acme:frank") == 1
    assert await components.conversations.load("acme:frank", "c1") is not None
    # the audit trail says what happened without saying who or what
    audit = await components.redis.xrange(components.audit.key)
    assert [fields[b"action"] for _, fields in audit] == [b"edit", b"erase_user"]
