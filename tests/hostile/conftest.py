"""Hostile-input fixtures: the suite's real components, sharing one embedded SmolLM2 across this folder
(routes that generate, like /v1/chat/completions, are attacked too), and the app's routes from its schema."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from memory.llm.embedded import EmbeddedLLM, convert_packaged_gguf
from memory.model import Memory
from service.app import create_app
from service.settings import Settings
from service.wiring import Components, build
from tests.api.test_ingest import conversation
from tests.api.test_memories import remember
from tests.conftest import bearer, purge
from tests.hostile.served import Operation, Schema, operations

ROOT = Path(__file__).resolve().parents[2]
HANG_S = 30  # far above any honest answer, even on a busy machine; a request stuck on its input shows here
MODEL_CACHE = Path(os.environ.get("HEEDFUL_TEST_SMOLLM2_CACHE", ROOT / "var" / "models" / "smollm2"))


@pytest.fixture(scope="session")
def shared_llm() -> Iterator[EmbeddedLLM]:
    """One model for the folder, on one torch thread, loaded before any request is timed."""
    llm = EmbeddedLLM(convert_packaged_gguf(MODEL_CACHE), threads=1)
    asyncio.run(llm.load())
    yield llm
    asyncio.run(llm.aclose())


@pytest.fixture
async def components(settings: Settings, shared_llm: EmbeddedLLM) -> AsyncIterator[Components]:
    built = await build(settings)
    own_llm, built.llm = built.llm, shared_llm
    await built.start()
    yield built
    built.llm = own_llm  # close the one built here, never the shared one
    await built.close()
    purge(settings)


@pytest.fixture
def schema(components: Components) -> Schema:
    return operations(create_app(components=components))


@dataclass(frozen=True)
class Seeded:
    """A user of app `acme` with one conversation, memories and a recorded response."""

    user_id: str
    conversation_id: str
    memories: list[Memory]
    response_id: str


async def seed_user(client: httpx.AsyncClient, app_key: str, components: Components, user: str, *texts: str) -> Seeded:
    conversation_id = f"{user}-conv-1"
    posted = await client.post("/v1/conversations", json=conversation(user, conversation_id), headers=bearer(app_key))
    assert posted.status_code == 202, posted.text
    memories = await remember(components, f"acme:{user}", *texts)
    ask = {
        "user_id": user,
        "messages": [{"role": "user", "content": "What do I enjoy?"}],
        "options": {"generate": False},
    }
    responded = await client.post("/respond", json=ask, headers=bearer(app_key))
    assert responded.status_code == 200, responded.text
    return Seeded(user, conversation_id, memories, responded.json()["response_id"])


def aimed_at(user: Seeded) -> dict[str, Any]:
    """Field values that make a generated body act on `user` (and keep generating routes cheap)."""
    return {
        "user_id": user.user_id,
        "user": user.user_id,
        "response_id": user.response_id,
        "conversation_id": "hostile-1",
        "messages": [{"role": "user", "content": "What should I pack for a weekend away?"}],
        "options": {"generate": False},
        "max_tokens": 1,
        "rating": 4,
        "status": "active",
    }


def url(op: Operation, user: Seeded, path: dict[str, str] | None = None, query: str | None = None) -> str:
    """The route's URL aimed at `user`; `path` and `query` replace parameters with raw (encoded) text."""
    values = {"user_id": user.user_id, "memory_id": user.memories[0].id, "name": "me.html", **(path or {})}
    target = op.path.format(**{p: values[p] for p in op.path_params})
    if query is not None:
        return f"{target}?{query}"
    return f"{target}?user_id={user.user_id}" if "user_id" in op.query_params else target


async def send(
    client: httpx.AsyncClient, op: Operation, target: str, body: bytes | None, key: str | None
) -> httpx.Response:
    """One request, failed if it takes longer than any honest answer would."""
    headers = {**(bearer(key) if key else {}), "content-type": "application/json"}
    request = client.request(op.method, target, content=body, headers=headers)
    return await asyncio.wait_for(request, HANG_S)
