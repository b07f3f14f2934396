"""The committed int8 MiniLM embedder: unit-norm 384-d vectors whose geometry means something."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from memory.embeddings import MAX_TOKENS, Embedder, head_and_tail, mean_pool_normalize

MODEL_DIR = Path(__file__).resolve().parents[1] / "models" / "embedder"


def test_mean_pool_ignores_padding() -> None:
    hidden = np.array([[[1.0, 0.0], [3.0, 0.0], [100.0, 100.0]]], dtype=np.float32)
    mask = np.array([[1, 1, 0]])
    pooled = mean_pool_normalize(hidden, mask)
    np.testing.assert_allclose(pooled, [[1.0, 0.0]], atol=1e-6)


def test_head_and_tail_keeps_both_ends_and_the_special_tokens() -> None:
    ids = [101, *range(1, 21), 102]  # [CLS] 1..20 [SEP]
    assert head_and_tail(ids, 11) == [101, 1, 2, 3, 4, 5, 6, 18, 19, 20, 102]
    assert head_and_tail(ids, 22) == ids
    assert head_and_tail(ids, 100) == ids


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder.load(MODEL_DIR, threads=1)


@pytest.mark.integration
def test_shape_dtype_and_unit_norm(embedder: Embedder) -> None:
    vectors = embedder.embed(["I like hiking.", "Prefers short answers with bullet points."])
    assert embedder.dim == 384
    assert vectors.shape == (2, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


@pytest.mark.integration
def test_paraphrases_score_higher_than_unrelated(embedder: Embedder) -> None:
    anchor, paraphrase, unrelated = embedder.embed(
        ["I have two dogs at home.", "The user owns a pair of dogs.", "Quarterly tax filing deadlines for companies."]
    )
    assert anchor @ paraphrase > anchor @ unrelated + 0.3


@pytest.mark.integration
def test_batch_equals_single(embedder: Embedder) -> None:
    texts = ["short", "a somewhat longer sentence about cooking vegetarian food", "I am a nurse.", ""]
    batched = embedder.embed(texts)
    singles = np.vstack([embedder.embed([t]) for t in texts])
    np.testing.assert_allclose(batched, singles, atol=1e-4)


@pytest.mark.integration
def test_empty_input(embedder: Embedder) -> None:
    assert embedder.embed([]).shape == (0, 384)


@pytest.mark.integration
def test_padded_batches_stay_close_to_single_runs() -> None:
    texts = ["short", "a somewhat longer sentence about cooking vegetarian food", "I am a nurse."]
    batched = Embedder.load(MODEL_DIR, batch_size=8).embed(texts)
    alone = Embedder.load(MODEL_DIR).embed(texts)
    assert ((batched * alone).sum(axis=1) > 0.97).all()


@pytest.mark.integration
def test_a_clipped_embedding_reads_the_head_and_tail_only(embedder: Embedder) -> None:
    head, tail = "I want a vegetarian dinner recipe.", "Please keep it under thirty minutes."
    edge = "My kitchen is small and the oven is old. " * 5  # ~55 tokens on either side of the middle

    def text(middle: str, end: str) -> str:
        return " ".join([head, edge, middle * 20, edge, end])

    long_a = text("We moved here from Ohio last spring. ", tail)
    long_b = text("It rains a lot and the bus is late. ", tail)
    other_tail = text("We moved here from Ohio last spring. ", "What wine goes with it?")
    a, b, c = embedder.embed([long_a, long_b, other_tail], max_tokens=32)
    np.testing.assert_allclose(a, b, atol=1e-6)  # the middle is never read
    assert float(a @ c) < 0.99  # the tail is
    np.testing.assert_allclose(np.linalg.norm(a), 1.0, atol=1e-5)
    # A text within the cut, or a cut at the embedder's own limit, is embedded exactly as without one.
    np.testing.assert_allclose(embedder.embed([head], max_tokens=32), embedder.embed([head]), atol=1e-6)
    np.testing.assert_allclose(embedder.embed([long_a], max_tokens=MAX_TOKENS), embedder.embed([long_a]), atol=1e-6)


@pytest.mark.integration
def test_a_huge_text_is_clipped_without_reading_all_of_it(embedder: Embedder) -> None:
    """1 MB of text: the clipped path tokenizes its two ends only and still keeps the true tail."""
    huge = "start here " + "filler words " * 90_000 + "the real question comes last"
    reference = "start here " + "filler words " * 2_000 + "the real question comes last"
    np.testing.assert_allclose(
        embedder.embed([huge], max_tokens=48), embedder.embed([reference], max_tokens=48), atol=1e-6
    )
