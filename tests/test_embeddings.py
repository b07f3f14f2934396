"""The committed int8 MiniLM embedder: unit-norm 384-d vectors whose geometry means something."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from memory.embeddings import Embedder, mean_pool_normalize

MODEL_DIR = Path(__file__).resolve().parents[1] / "models" / "embedder"


def test_mean_pool_ignores_padding() -> None:
    hidden = np.array([[[1.0, 0.0], [3.0, 0.0], [100.0, 100.0]]], dtype=np.float32)
    mask = np.array([[1, 1, 0]])
    pooled = mean_pool_normalize(hidden, mask)
    np.testing.assert_allclose(pooled, [[1.0, 0.0]], atol=1e-6)


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
