"""`heedful store fill-statements` on an embedded store holding memories from before statement vectors: each
gets the real embedder's vector of its text as a statement, and a second run finds nothing left."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest

from memory.embeddings import Embedder
from memory.model import Memory
from memory.stores.edge import EdgeMemoryStore
from service.cli import main
from service.settings import get_settings

pytestmark = pytest.mark.integration

MODELS = Path(__file__).resolve().parents[2] / "models"


def test_fill_statements_gives_old_memories_their_vectors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    embedder = Embedder.load(MODELS / "embedder")
    texts = ["is vegetarian", "has two dogs"]
    old = [Memory.new("acme:ann", t, embedding=v.tolist()) for t, v in zip(texts, embedder.embed(texts), strict=True)]

    async def write() -> None:
        store = EdgeMemoryStore(tmp_path / "qdrant-edge")
        await store.upsert(old)
        await store.close()

    async def read() -> dict[str, Memory]:
        store = EdgeMemoryStore(tmp_path / "qdrant-edge")
        try:
            return {m.text: m for m in await store.get_many("acme:ann", [m.id for m in old])}
        finally:
            await store.close()

    asyncio.run(write())  # the CLI runs its own event loop, so this test is synchronous
    monkeypatch.setenv("HEEDFUL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HEEDFUL_MODELS_DIR", str(MODELS))
    get_settings.cache_clear()
    try:
        assert main(["store", "fill-statements", "--batch", "1"]) == 0
        assert json.loads(capsys.readouterr().out) == {"seen": 2, "filled": 2}
        assert main(["store", "fill-statements"]) == 0
        assert json.loads(capsys.readouterr().out) == {"seen": 0, "filled": 0}
    finally:
        get_settings.cache_clear()

    stored = asyncio.run(read())
    statements = embedder.embed(["The user is vegetarian.", "The user has two dogs."])
    for text, statement in zip(texts, statements, strict=True):
        assert np.dot(stored[text].statement_embedding, statement) == pytest.approx(1.0, abs=1e-4)
