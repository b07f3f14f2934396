"""The committed selector models, loaded for real (int8 embedder + ONNX head + tuned rules)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from memory.embeddings import Embedder, stored_memories
from memory.model import Memory
from selector import BACKENDS, NoPromptVector, Selector, UnknownBackend, build

pytestmark = pytest.mark.integration

MODELS = Path(__file__).resolve().parents[2] / "models"
UNRELATED = [
    "The user has two dogs.",
    "The user enjoys hiking in the mountains.",
    "The user's favorite color is blue.",
    "The user lives in Chicago.",
    "The user plays the guitar.",
    "The user supports Manchester United.",
    "The user likes spicy food.",
    "The user is learning Spanish.",
]


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder.load(MODELS / "embedder")


@pytest.fixture(scope="module", params=["classifier", "embedding", "bm25"])
def selector(request: pytest.FixtureRequest, embedder: Embedder) -> Selector:
    return build(request.param, MODELS, embedder)


def memories(texts: list[str], embedder: Embedder, stored: bool = True) -> list[Memory]:
    """Memories as the store holds them: the text's vector and the statement's (None when not `stored`)."""
    return stored_memories("u1", texts, embedder) if stored else [Memory.new("u1", t) for t in texts]


@pytest.mark.parametrize("backend", ["classifier", "embedding", "bm25"])
async def test_vectors_are_asked_for_once(backend: str, embedder: Embedder) -> None:
    """Memories read without vectors: a vector backend asks for them until it has seen them, then never."""
    selector = build(backend, MODELS, embedder)
    with_vectors = memories(UNRELATED, embedder)
    without = [m.model_copy(update={"embedding": None, "statement_embedding": None}) for m in with_vectors]
    wants_vectors = backend != "bm25"
    assert selector.missing_vectors(without) == (without if wants_vectors else [])
    assert selector.missing_vectors(with_vectors) == []
    first = await selector.select("Recommend a hiking trail near Chicago.", with_vectors)
    assert selector.missing_vectors(without) == []
    again = await selector.select("Recommend a hiking trail near Chicago.", without)
    assert [(s.memory.id, s.score) for s in again] == [(s.memory.id, s.score) for s in first]


@pytest.mark.parametrize("backend", ["classifier", "embedding"])
async def test_a_memory_is_scored_as_a_statement(backend: str, embedder: Embedder) -> None:
    """The vector backends score "is vegetarian" as "The user is vegetarian.", their training data's form: the
    stored statement vector, or the statement embedded here for a memory stored without one."""
    prompt = "Plan a dinner for four."
    fragment, statement = "is vegetarian", "The user is vegetarian."

    async def score(memory: Memory) -> float:
        return (await build(backend, MODELS, embedder).select(prompt, [memory]))[0].score

    as_statement_text = await score(memories([statement], embedder)[0])
    assert await score(memories([fragment], embedder)[0]) == pytest.approx(as_statement_text, abs=1e-5)
    assert await score(Memory.new("u1", fragment)) == pytest.approx(as_statement_text, abs=1e-5)
    (text_vector,) = embedder.embed([fragment])
    as_fragment = Memory.new("u1", fragment, statement_embedding=text_vector.tolist())
    assert abs(await score(as_fragment) - as_statement_text) > 1e-3  # the fragment's own vector scores otherwise


LONG_PROMPT = (
    "Recommend a hiking trail near Chicago. "
    + "I have read many trail guides, blog posts and forum threads about the region over the years. " * 12
    + "Which one would you pick for a Saturday in October?"
)


@pytest.mark.parametrize("prompt", ["Recommend a hiking trail near Chicago.", LONG_PROMPT])
async def test_a_prompt_vector_computed_ahead_gives_the_same_selection(
    selector: Selector, embedder: Embedder, prompt: str
) -> None:
    """The Responder embeds the prompt with `embed_prompt` beside its store read and hands it over: same answer."""
    mems = memories(UNRELATED, embedder)
    own = await selector.select(prompt, mems)
    if not selector.embeds_prompt:
        with pytest.raises(NoPromptVector, match="embeds no prompt"):
            selector.embed_prompt(prompt)
        return
    handed = await selector.select(prompt, mems, prompt_vector=selector.embed_prompt(prompt))
    assert [(s.memory.id, s.relevant) for s in handed] == [(s.memory.id, s.relevant) for s in own]
    assert [s.score for s in handed] == pytest.approx([s.score for s in own], abs=1e-6)
    assert selector.embeds_prompt == (selector.name != "bm25")


async def test_the_classifier_embeds_a_long_prompts_head_and_tail_only(embedder: Embedder) -> None:
    """The committed classifier was trained on prompts cut to their first and last tokens and is served so,
    through its own fine-tuned prompt encoder when it has one (memories keep the store's embedder)."""
    selector = build("classifier", MODELS, embedder)
    tokens = selector.prompt_tokens  # type: ignore[attr-defined]
    assert tokens is not None and tokens < 256
    classifier_dir = MODELS / "selector" / "classifier"
    encoder_name = json.loads((classifier_dir / "config.json").read_text()).get("prompt_encoder")
    encoder = Embedder.load(classifier_dir / encoder_name) if encoder_name else embedder
    assert selector.prompt_vector_searches_store == (encoder is embedder)
    np.testing.assert_allclose(selector.embed_prompt(LONG_PROMPT), encoder.embed([LONG_PROMPT], max_tokens=tokens)[0])
    assert float(selector.embed_prompt(LONG_PROMPT) @ encoder.embed([LONG_PROMPT])[0]) < 0.999


async def test_an_edited_memory_is_scored_by_its_new_text(embedder: Embedder) -> None:
    """An edit keeps the id and replaces text and vector; a vector seen before the edit must not be reused."""
    selector = build("embedding", MODELS, embedder)
    before = memories(UNRELATED, embedder)
    prompt = "Which trumpet mouthpiece suits jazz?"
    await selector.select(prompt, before)
    (vector,) = embedder.embed(["The user plays the trumpet in a jazz band."])
    new_text = {"text": "The user plays the trumpet in a jazz band.", "embedding": None, "statement_embedding": None}
    edited = before[0].model_copy(update=new_text)
    out = await selector.select(prompt, [edited, *before[1:]])
    assert out[0].memory.id == edited.id
    assert out[0].score == pytest.approx(float(vector @ embedder.embed([prompt])[0]), abs=1e-5)


async def test_empty_memory_list_selects_nothing(selector: Selector) -> None:
    assert await selector.select("Any prompt at all?", []) == []


async def test_one_selection_per_memory_best_first(selector: Selector, embedder: Embedder) -> None:
    mems = memories(UNRELATED, embedder)
    out = await selector.select("Recommend a hiking trail near Chicago.", mems)
    assert sorted(s.memory.id for s in out) == sorted(m.id for m in mems)
    assert [s.score for s in out] == sorted((s.score for s in out), reverse=True)


@pytest.mark.parametrize("stored", [True, False])
async def test_classifier_selects_a_clearly_relevant_memory(embedder: Embedder, stored: bool) -> None:
    selector = build("classifier", MODELS, embedder)
    mems = memories(["The user prefers concise code examples.", *UNRELATED], embedder, stored=stored)
    out = await selector.select("Explain how to write a Python decorator.", mems)
    chosen = [s.memory.text for s in out if s.relevant]
    assert chosen == ["The user prefers concise code examples."]


@pytest.mark.parametrize(
    ("prompt", "relevant"),
    [
        ("Can you suggest a dinner recipe for tonight?", "The user is vegetarian."),
        ("How do I fix a memory leak in my Python web server?", "The user is a backend developer who writes Python."),
        ("Recommend some dog food brands.", "The user has two dogs."),
    ],
)
async def test_classifier_ranks_the_relevant_memory_first(embedder: Embedder, prompt: str, relevant: str) -> None:
    # Ranking only: implicit matches sit near the tuned floor (docs/selector.md, known limits) and move
    # across it from one retraining to the next, so whether they are selected is not asserted.
    selector = build("classifier", MODELS, embedder)
    out = await selector.select(prompt, memories([relevant, *[u for u in UNRELATED if u != relevant]], embedder))
    assert out[0].memory.text == relevant


async def test_classifier_selects_nothing_for_an_unrelated_prompt(embedder: Embedder) -> None:
    selector = build("classifier", MODELS, embedder)
    out = await selector.select("What is 17 × 23?", memories(UNRELATED, embedder))
    assert not any(s.relevant for s in out)


async def test_bm25_selects_nothing_without_shared_words(embedder: Embedder) -> None:
    out = await build("bm25", MODELS).select("What is 17 × 23?", memories(UNRELATED, embedder))
    assert not any(s.relevant for s in out)


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(UnknownBackend):
        build("magic", MODELS)
    assert "classifier" in BACKENDS
