"""One user with 10,000 memories: the list walks all of them page by page, export returns all of them,
and /respond (context-only) still answers, with the memory that matters among the 10,000 found."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from memory import metrics
from memory.model import Evidence, Memory, MemoryKind
from selector import Selection, Selector
from service.respond import MAX_CONSIDERED
from service.wiring import Components
from tests.api.test_ingest import conversation
from tests.conftest import bearer

pytestmark = pytest.mark.integration

MEMORIES = 10_000
BATCH = 2_500
# Filler far from food: each text is repeated with a number and reuses its base text's real embedding.
FILLER = [
    "enjoys stargazing with a small telescope",
    "works as a civil engineer on bridges",
    "plays chess online in the evenings",
    "collects vintage fountain pens",
    "is learning to play the cello",
    "prefers answers in bullet points",
    "follows Formula 1 racing",
    "lives in a flat in Rotterdam",
    "has two cats named Pixel and Byte",
    "reads science fiction novels",
    "practises calligraphy on weekends",
    "volunteers at a public library",
    "is studying for a pilot licence",
    "restores old motorcycles",
    "likes jazz from the 1960s",
    "writes a blog about typography",
]
NEEDLE = "is severely allergic to peanuts"
PROMPT = "Can you suggest a snack I could take to work? Keep my allergy in mind."


@pytest.fixture
async def hoarder(client: httpx.AsyncClient, app_key: str, components: Components) -> set[str]:
    """acme's `hoarder`: 10,000 filler memories and one about a peanut allergy, upserted in batches."""
    await client.post("/v1/conversations", json=conversation("hoarder"), headers=bearer(app_key))
    vectors = await components.embed([*FILLER, NEEDLE])
    evidence = [Evidence(conversation_id="c1", turn_ids=[0], quote="(seeded)")]
    memories = [
        Memory.new(
            "acme:hoarder",
            f"{FILLER[i % len(FILLER)]} (note {i})",
            embedding=vectors[i % len(FILLER)],
            evidence=evidence,
        )
        for i in range(MEMORIES)
    ]
    memories.append(
        Memory.new("acme:hoarder", NEEDLE, kind=MemoryKind.profile, embedding=vectors[-1], evidence=evidence)
    )
    for start in range(0, len(memories), BATCH):
        await components.store.upsert(memories[start : start + BATCH])
    return {m.id for m in memories}


async def test_list_export_and_respond_with_ten_thousand_memories(
    client: httpx.AsyncClient, app_key: str, hoarder: set[str]
):
    """One user with 10,001 memories: list page by page, export, user state, /respond context-only.

    Lost: nothing: every memory is listed exactly once across the pages and all are exported, the user state
    counts all of them, and /respond finds the one that matters among them."""
    listed: list[str] = []
    cursor: str | None = None
    for _ in range(MEMORIES // 200 + 2):
        params = {"user_id": "hoarder", "limit": 200, **({"cursor": cursor} if cursor else {})}
        page = await client.get("/v1/memories", params=params, headers=bearer(app_key))
        assert page.status_code == 200, page.text
        listed += [m["id"] for m in page.json()["memories"]]
        if (cursor := page.json()["next_cursor"]) is None:
            break
    assert cursor is None, "the pages did not end"
    assert len(listed) == len(set(listed)) == len(hoarder) and set(listed) == hoarder

    export = await client.get("/v1/memories/export", params={"user_id": "hoarder"}, headers=bearer(app_key))
    assert export.status_code == 200
    assert sorted(m["id"] for m in export.json()["memories"]) == sorted(hoarder)

    state = (await client.get("/v1/users/hoarder", headers=bearer(app_key))).json()
    assert state["memories"] == state["active_memories"] == len(hoarder)

    ask = {"user_id": "hoarder", "messages": [{"role": "user", "content": PROMPT}], "options": {"generate": False}}
    filled = metrics.STATEMENT_VECTORS_FILLED._value.get()
    response = await client.post("/respond", json=ask, headers=bearer(app_key))  # the default selector
    assert response.status_code == 200, response.text
    assert response.json()["memories_considered"] == MAX_CONSIDERED
    # seeded without statement vectors (as before they existed): the shortlist's are embedded and written back
    assert metrics.STATEMENT_VECTORS_FILLED._value.get() == filled + MAX_CONSIDERED
    # the one memory that matters is among those considered, not left to where it falls in storage order:
    # the similarity baseline's single best pick out of 10,001 is it
    ask["options"] = {"generate": False, "selector": "embedding", "max_memories": 1}
    body = (await client.post("/respond", json=ask, headers=bearer(app_key))).json()
    assert body["memories_considered"] == MAX_CONSIDERED
    assert [m["text"] for m in body["memories"]] == [NEEDLE]
    assert NEEDLE in body["system_prompt"]


class OwnSpace:
    """The embedding selector with a prompt vector in a space of its own, as a classifier with a fine-tuned prompt
    encoder has (selector.prompt_encoder): useless, here deliberately so, for searching the store."""

    name = "embedding"
    embeds_prompt = True
    prompt_vector_searches_store = False

    def __init__(self, inner: Selector):
        self._inner = inner

    def embed_prompt(self, prompt: str) -> np.ndarray:
        return -self._inner.embed_prompt(prompt)  # the store's farthest memories, if it were searched with

    def missing_vectors(self, memories: list[Memory]) -> list[Memory]:
        return self._inner.missing_vectors(memories)

    async def select(
        self, prompt: str, memories: list[Memory], prompt_vector: np.ndarray | None = None
    ) -> list[Selection]:
        return await self._inner.select(prompt, memories)


async def test_the_shortlist_is_searched_in_the_stores_space(
    client: httpx.AsyncClient, app_key: str, hoarder: set[str], components: Components, monkeypatch: pytest.MonkeyPatch
):
    """More memories than the selector is offered: the shortlist comes from a store search with the store
    embedder's vector whenever the selector's own prompt vector is in another space."""
    monkeypatch.setitem(components.selectors, "embedding", OwnSpace(components.selector("embedding")))
    ask = {
        "user_id": "hoarder",
        "messages": [{"role": "user", "content": PROMPT}],
        "options": {"generate": False, "selector": "embedding", "max_memories": 1},
    }
    body = (await client.post("/respond", json=ask, headers=bearer(app_key))).json()
    assert body["memories_considered"] == MAX_CONSIDERED
    assert [m["text"] for m in body["memories"]] == [NEEDLE]
