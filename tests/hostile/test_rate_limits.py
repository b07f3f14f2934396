"""Rate limits per API key and per user token (`HEEDFUL_RATE_LIMIT_PER_MINUTE`, a fixed one-minute window
counted in Redis): a credential over its limit gets 429 with Retry-After, and no other credential pays for it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from memory.conversations import Conversation
from service.settings import Settings
from service.wiring import Components
from tests.api.test_ingest import conversation
from tests.api.test_memories import remember
from tests.conftest import bearer, test_settings

pytestmark = pytest.mark.integration

LIMIT = 5
WINDOW_S = 60
MARGIN_S = 10  # the requests below take well under a second; a window about to close is waited out


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return test_settings(tmp_path, rate_limit_per_minute=LIMIT)


async def known_user(components: Components, user: str) -> None:
    """A user of app acme with one conversation and one memory, written without going through the API."""
    await components.conversations.append(f"acme:{user}", Conversation.model_validate(conversation(user)))
    await remember(components, f"acme:{user}", "is vegetarian")


async def fresh_window() -> None:
    """Starts the test early in a window, so every request below is counted in the same one."""
    left = WINDOW_S - time.time() % WINDOW_S
    if left < MARGIN_S:
        await asyncio.sleep(left + 0.1)


async def statuses(client: httpx.AsyncClient, credential: str, times: int, user_id: str | None = None) -> list[int]:
    params = {"user_id": user_id} if user_id else {}
    return [
        (await client.get("/v1/memories", params=params, headers=bearer(credential))).status_code for _ in range(times)
    ]


def is_a_clear_429(response: httpx.Response) -> bool:
    retry = response.headers.get("retry-after", "")
    return (
        response.status_code == 429
        and "per minute" in response.json()["detail"]
        and retry.isdigit()
        and int(retry) <= WINDOW_S
    )


async def test_an_api_key_over_its_limit_gets_429_and_no_one_else_does(
    client: httpx.AsyncClient, app_key: str, components: Components
):
    """App acme's key sends its limit (5 a minute) of requests, then more, one of them a conversation.

    Lost: nothing: the refused conversation is not queued and its 429 carries Retry-After, so the app knows to
    send it again; another app's key and acme's own user token are still answered in the same minute."""
    other_app = await components.keys.create("globex")
    await known_user(components, "alice")
    await fresh_window()
    alice = (await client.post("/v1/users/alice/token", headers=bearer(app_key))).json()["token"]  # 1 of LIMIT
    assert await statuses(client, app_key, LIMIT - 1, user_id="nobody") == [404] * (LIMIT - 1)

    refused = await client.post("/v1/conversations", json=conversation("alice"), headers=bearer(app_key))
    assert is_a_clear_429(refused), refused.text
    assert await components.redis.xlen(components.settings.stream_key) == 1, "only alice's seeded conversation"
    assert is_a_clear_429(await client.get("/v1/memories", params={"user_id": "alice"}, headers=bearer(app_key)))

    assert await statuses(client, other_app, 1, user_id="nobody") == [404]
    assert await statuses(client, alice, 1) == [200], "a user token is counted apart from its app's key"


async def test_a_user_token_over_its_limit_gets_429_and_no_one_else_does(
    client: httpx.AsyncClient, app_key: str, components: Components
):
    """Alice's user token sends its limit (5 a minute) of requests, then more (one of them her own erasure);
    then a token issued to alice a second later tries.

    Lost: nothing: alice's memory is still there after the refused erasure, bob's token and the app's key are
    still answered, and the later token for alice is refused too (the limit is the user's, not one token's)."""
    for user in ("alice", "bob"):
        await known_user(components, user)
    await fresh_window()
    alice, bob = [
        (await client.post(f"/v1/users/{u}/token", headers=bearer(app_key))).json()["token"] for u in ("alice", "bob")
    ]
    assert await statuses(client, alice, LIMIT) == [200] * LIMIT

    erasure = await client.delete("/v1/memories", headers=bearer(alice))
    assert is_a_clear_429(erasure), erasure.text
    assert await components.store.count("acme:alice") == 1, "the refused erasure erased nothing"
    assert is_a_clear_429(await client.get("/v1/memories", headers=bearer(alice)))

    assert await statuses(client, bob, 1) == [200]
    assert await statuses(client, app_key, 1, user_id="nobody") == [404]
    await asyncio.sleep(1.1)  # a token's issue time is in whole seconds: a second later it is another token
    later = (await client.post("/v1/users/alice/token", headers=bearer(app_key))).json()["token"]
    assert later != alice
    assert is_a_clear_429(await client.get("/v1/memories", headers=bearer(later)))
