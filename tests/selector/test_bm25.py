"""BM25 baseline scoring."""

from __future__ import annotations

from selector.bm25 import bm25_scores, tokenize


def test_shared_words_score_and_boilerplate_does_not() -> None:
    scores = bm25_scores("Suggest a vegetarian dinner", ["The user is vegetarian.", "The user has a cat."])
    assert scores[0] > 0
    assert scores[1] == 0  # "The user" is in every attribute: stopwords


def test_tokenize_drops_stopwords_and_case() -> None:
    assert tokenize("The USER loves Jazz!") == ["loves", "jazz"]


def test_no_documents() -> None:
    assert bm25_scores("anything", []).shape == (0,)
