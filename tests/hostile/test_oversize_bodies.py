"""Oversize bodies on every route that reads one, found from the app's own schema: a body one byte over
`HEEDFUL_MAX_BODY_BYTES`, once with its length declared and once streamed in chunks with no length, so the
limit cannot be dodged by leaving the header out. Each body is otherwise valid and aimed at a real user."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from service.wiring import Components
from tests.conftest import bearer
from tests.hostile.conftest import HANG_S, Seeded, aimed_at, seed_user, url
from tests.hostile.served import Schema, example, put, string_paths
from tests.hostile.test_cross_access import footprint

pytestmark = pytest.mark.integration

CHUNK = 64 * 1024


@pytest.fixture
async def alice(client: httpx.AsyncClient, app_key: str, components: Components) -> Seeded:
    return await seed_user(client, app_key, components, "alice", "enjoys hiking in the Alps")


async def chunks(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), CHUNK):
        yield body[start : start + CHUNK]


async def oversize_answers(
    client: httpx.AsyncClient, app_key: str, limit: int, user: Seeded, schema: Schema
) -> dict[str, httpx.Response]:
    """ "<route> (declared|streamed)" -> the answer to a valid body for `user`, padded to `limit` + 1 bytes."""
    answers: dict[str, httpx.Response] = {}
    headers = {**bearer(app_key), "content-type": "application/json"}
    for op in schema.operations:
        if op.body is None:
            continue
        base = example(schema, op.body, aimed_at(user))
        path, _ = next(string_paths(schema, op.body))
        unpadded = len(json.dumps(put(schema, base, op.body, path, "")).encode())
        body = json.dumps(put(schema, base, op.body, path, "x" * (limit + 1 - unpadded))).encode()
        assert len(body) == limit + 1
        for how, content in (("declared", body), ("streamed", chunks(body))):
            request = client.request(op.method, url(op, user), content=content, headers=headers)
            answers[f"{op} ({how})"] = await asyncio.wait_for(request, HANG_S)
    assert len(answers) >= 10, sorted(answers)
    return answers


async def test_a_body_over_the_limit_is_refused_declared_or_streamed(
    client: httpx.AsyncClient, app_key: str, components: Components, alice: Seeded, schema: Schema
):
    """Every route with a body gets one byte too many, with a Content-Length and chunked without one.

    Lost: nothing: a declared oversize body gets 413 naming the limit, a streamed one is refused with a 4xx
    (see the next test for which), and everything heedful holds for the user (memories, conversation,
    responses, feedback, queued entries) is unchanged afterwards."""
    limit = components.settings.max_body_bytes
    before = await footprint(components, alice)
    answers = await oversize_answers(client, app_key, limit, alice, schema)
    for where, response in answers.items():
        assert 400 <= response.status_code < 500, f"{where}: {response.status_code} {response.text[:200]}"
        if where.endswith("(declared)"):
            assert response.status_code == 413 and f"over {limit} bytes" in response.json()["detail"], where
    assert await footprint(components, alice) == before


async def test_a_streamed_body_over_the_limit_gets_413_as_documented(
    client: httpx.AsyncClient, app_key: str, components: Components, alice: Seeded, schema: Schema
):
    """README and BodyLimit promise 413 for a body over the limit "by header or by counting what arrives".

    Lost: nothing (the previous test shows the body is refused and nothing stored). A chunked oversize body
    used to get 400: FastAPI turned the limit's exception into "There was an error parsing the body"."""
    limit = components.settings.max_body_bytes
    answers = await oversize_answers(client, app_key, limit, alice, schema)
    wrong = {where: r.status_code for where, r in answers.items() if r.status_code != 413}
    assert wrong == {}
