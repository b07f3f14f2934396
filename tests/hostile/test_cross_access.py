"""Cross-user and cross-app access on every route the app serves, found from the app itself, so a route
added later is attacked without being listed here. Alice's user token, another app's key, that app's
token for its own user "bob", and no credential at all aim at app acme's bob: none of them sees any of
bob's data or changes it, and the user token and the anonymous caller get 401/403/404."""

from __future__ import annotations

import json
from dataclasses import dataclass

import httpx
import pytest

from service.wiring import Components
from tests.conftest import bearer
from tests.hostile.conftest import Seeded, aimed_at, seed_user, send, url
from tests.hostile.served import Operation, Schema, example

pytestmark = pytest.mark.integration

SECRET = "zephyr-9981"
DENIED = {401, 403, 404}


@dataclass(frozen=True)
class Attacker:
    name: str
    credential: str | None
    owns_a_bob: bool  # another app may have a user "bob" of its own (a different person): acting on him is fine


@pytest.fixture
async def bob(client: httpx.AsyncClient, app_key: str, components: Components) -> Seeded:
    seeded = await seed_user(client, app_key, components, "bob", f"flies a glider named {SECRET}", "keeps bees")
    rated = {"user_id": "bob", "response_id": seeded.response_id, "rating": 5, "comment": f"loved {SECRET}"}
    assert (await client.post("/v1/feedback", json=rated, headers=bearer(app_key))).status_code == 201
    # one of bob's conversations failed extraction, as the worker records it
    failure = {"tenant": "acme:bob", "conversation": seeded.conversation_id, "error": f"parse error near {SECRET}"}
    await components.redis.xadd(components.settings.dead_letter_stream, {**failure, "attempts": "3"})
    return seeded


@pytest.fixture
async def attackers(client: httpx.AsyncClient, app_key: str, components: Components) -> list[Attacker]:
    await seed_user(client, app_key, components, "alice", "likes green tea")
    alice_token = (await client.post("/v1/users/alice/token", headers=bearer(app_key))).json()["token"]
    globex = await components.keys.create("globex")
    globex_bob = (await client.post("/v1/users/bob/token", headers=bearer(globex))).json()["token"]
    return [
        Attacker("alice's user token", alice_token, owns_a_bob=False),
        Attacker("another app's key", globex, owns_a_bob=True),
        Attacker("another app's token for its own bob", globex_bob, owns_a_bob=True),
        Attacker("no credential", None, owns_a_bob=False),
    ]


def aims_at_a_user(op: Operation, schema: Schema) -> bool:
    body = json.dumps(schema.resolve(op.body)) if op.body else ""
    names = {*op.path_params, *op.query_params}
    return bool(names & {"user_id", "memory_id"}) or '"user_id"' in body or '"user"' in body


def targets(op: Operation, bob: Seeded) -> list[str]:
    """Bob's resource named outright, and (for one memory) by id alone, as if it were the caller's own."""
    aimed = [url(op, bob)]
    if "memory_id" in op.path_params and "user_id" in op.query_params:
        aimed.append(url(op, bob, query=""))
    return aimed


async def footprint(components: Components, user: Seeded) -> dict[str, object]:
    """Everything heedful holds for acme's bob, to compare before and after the attacks."""
    tenant, redis, log = f"acme:{user.user_id}", components.redis, components.conversations
    page = await components.store.page(tenant, limit=200)
    dead = await redis.xrange(components.settings.dead_letter_stream)
    return {
        "memories": sorted((m.id, m.text, m.status, m.updated_at.isoformat()) for m in page.memories),
        "user": await redis.hgetall(log.user_key(tenant)),
        "conversation": await redis.hgetall(log.conv_key(tenant, user.conversation_id)),
        "responses": await redis.hgetall(f"{log.user_key(tenant)}:responses"),
        "feedback": await redis.lrange(f"{log.user_key(tenant)}:feedback", 0, -1),
        "queued": [e for e, f in await redis.xrange(components.settings.stream_key) if f[b"tenant"] == tenant.encode()],
        "dead letters": [e for e, f in dead if f[b"tenant"] == tenant.encode()],
    }


async def test_no_one_else_reaches_bobs_data_on_any_route(
    client: httpx.AsyncClient,
    app_key: str,
    components: Components,
    schema: Schema,
    bob: Seeded,
    attackers: list[Attacker],
):
    """Alice's user token, another app's key, that app's token for its own bob and no credential, on every route.

    Lost: nothing: bob's footprint (memories, conversation, responses, feedback, queued and dead-lettered entries)
    is identical before and after, no answer carries any of his markers, the attempts aimed at a user are denied
    (401/403/404), and bob's own app still sees his data."""
    markers = [SECRET, "keeps bees", bob.conversation_id, bob.response_id, "acme:bob", *(m.id for m in bob.memories)]
    before = await footprint(components, bob)
    tried = 0
    for op in schema.operations:
        body = json.dumps(example(schema, op.body, aimed_at(bob))).encode() if op.body else None
        for attacker in attackers:
            for target in targets(op, bob):
                response = await send(client, op, target, body, attacker.credential)
                tried += 1
                where = f"{attacker.name}: {op.method} {target} -> {response.status_code}"
                sent = target + (body or b"").decode()  # an id the attacker sent may be echoed back: not a leak
                leaked = [m for m in markers if m in response.text and m not in sent]
                assert not leaked, f"{where} leaked {leaked}: {response.text[:300]}"
                if aims_at_a_user(op, schema) and not attacker.owns_a_bob:
                    assert response.status_code in DENIED, f"{where}: {response.text[:200]}"
                if "memory_id" in op.path_params:  # bob's memory id is nobody else's memory
                    named = "user_id=" in target  # an app key must name the user: 422 without one
                    assert response.status_code in (DENIED if named else DENIED | {422}), (
                        f"{where}: {response.text[:200]}"
                    )
    assert tried >= 4 * len(schema.operations)
    assert await footprint(components, bob) == before, "an attack changed bob's data"

    # the control: bob's own app sees what the attackers did not, through the same kind of request
    own = await client.get("/v1/memories/export", params={"user_id": "bob"}, headers=bearer(app_key))
    assert SECRET in own.text


async def test_a_user_token_is_bound_to_its_app_and_user(
    client: httpx.AsyncClient, app_key: str, components: Components, bob: Seeded
):
    """Bob's own token works for bob only; a token signed with another secret or naming bob in another app
    does not reach acme's bob.

    Lost: nothing: bob's token re-signed for another app gets 404, one signed with a guessed secret or unsigned
    gets 401."""
    import jwt

    token = (await client.post("/v1/users/bob/token", headers=bearer(app_key))).json()["token"]
    assert SECRET in (await client.get("/v1/memories", headers=bearer(token))).text
    claims = jwt.decode(token, options={"verify_signature": False})
    secret = components.settings.token_secret.get_secret_value()  # type: ignore[union-attr]
    other_app = jwt.encode({**claims, "app": "globex"}, secret, algorithm="HS256")
    assert (await client.get("/v1/memories", headers=bearer(other_app))).status_code == 404
    forged = jwt.encode({**claims, "sub": "bob"}, "a guessed secret, long enough to sign with", algorithm="HS256")
    assert (await client.get("/v1/memories", headers=bearer(forged))).status_code == 401
    unsigned = jwt.encode(claims, None, algorithm="none")
    assert (await client.get("/v1/memories", headers=bearer(unsigned))).status_code == 401
