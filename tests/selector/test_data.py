"""Relevance data loaders: a held-out prompt leaves every source, PrefEval included; PrefEval's near misses;
attributes as the extractor phrases memories."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from memory.phrasing import as_extracted, as_statement
from selector.data import (
    PREFEVAL_NEAR_MISSES,
    PREFEVAL_NEGATIVES,
    Example,
    as_served,
    load_prefeval,
    load_training,
    prompt_key,
)


def test_a_held_out_prefeval_question_is_not_trained_on(tmp_path: Path) -> None:
    explicit = tmp_path / "prefeval" / "explicit_preference"
    explicit.mkdir(parents=True)
    for topic, items in {"food": ["dinner", "lunch", "snacks"], "travel": ["trains", "hotels", "maps"]}.items():
        rows = [{"question": f"Help me with {x}?", "preference": f"I like {x}."} for x in items]
        (explicit / f"{topic}.json").write_text(json.dumps(rows))

    everything = load_training(tmp_path, set(), {"prefeval"})
    kept = load_training(tmp_path, {prompt_key("Help me with  DINNER?")}, {"prefeval"})

    assert len(everything) == 6 * (1 + PREFEVAL_NEGATIVES)
    assert len(kept) == 5 * (1 + PREFEVAL_NEGATIVES)
    assert all(e.prompt != "Help me with dinner?" for e in kept)


VOCABULARY = ("dinner", "snack", "train", "seat", "bus", "map")


def bag_of_words(texts: Sequence[str]) -> np.ndarray:
    """A stand-in for the embedder in this one-function test: unit word-count vectors over VOCABULARY."""
    counts = np.array([[t.lower().count(w) for w in VOCABULARY] for t in texts], dtype=np.float32) + 1e-3
    return counts / np.linalg.norm(counts, axis=1, keepdims=True)


def test_a_near_miss_is_the_nearest_preference_of_another_category(tmp_path: Path) -> None:
    explicit = tmp_path / "prefeval" / "explicit_preference"
    explicit.mkdir(parents=True)
    files = {
        "food_dinner": [("Help me plan dinner?", "I like pasta.")],
        # Nearest to the dinner question overall, but a sibling topic: it may well be relevant, never a near miss.
        "food_snacks": [("Snack ideas?", "Dinner, always dinner.")],
        "travel_rail": [
            ("Which train?", "I take the dinner train."),
            ("Which seat?", "I like window seats."),
            ("Bus or map?", "I avoid night buses."),
        ],
        "shop_maps": [("Which atlas?", "I collect old maps."), ("Paper or screen?", "I read on paper.")],
    }
    for topic, rows in files.items():
        (explicit / f"{topic}.json").write_text(json.dumps([{"question": q, "preference": p} for q, p in rows]))

    random_only = load_prefeval(tmp_path)
    near = load_prefeval(tmp_path, embed=bag_of_words)

    dinner = [e for e in near if e.group == "prefeval:food_dinner:0"]
    assert [(e.attribute, e.label) for e in dinner[: 1 + PREFEVAL_NEAR_MISSES]] == [
        ("I like pasta.", 1),
        ("I take the dinner train.", 0),
    ]
    assert len(dinner) == 1 + PREFEVAL_NEGATIVES
    assert len({e.attribute for e in dinner}) == len(dinner)  # the random draws skip the near miss
    # Without an embedder every negative is drawn at random from other topics, as before near misses.
    assert len(random_only) == len(near) == 7 * (1 + PREFEVAL_NEGATIVES)
    for e in random_only:
        own = next(p for rows in files.values() for q, p in rows if q == e.prompt)
        assert (e.attribute == own) == bool(e.label)


@pytest.mark.parametrize(
    ("attribute", "memory", "restated"),
    [
        ("The user is vegetarian.", "is vegetarian", "The user is vegetarian."),
        ("The user's son is in junior high.", "their son is in junior high", "The user's son is in junior high."),
        (
            "I strongly dislike games with pixel art graphics.",
            "strongly dislikes games with pixel art graphics",
            "The user strongly dislikes games with pixel art graphics.",
        ),
        ("My dog is old.", "their dog is old", "The user's dog is old."),
        ("is vegetarian", "is vegetarian", "The user is vegetarian."),
    ],
)
def test_attributes_as_the_extractor_stores_memories_and_restated(attribute: str, memory: str, restated: str) -> None:
    assert as_extracted(attribute) == memory
    assert as_statement(attribute) == restated


def test_examples_as_served_keep_their_groups_and_labels() -> None:
    data = [
        Example("Plan a dinner.", "I am vegetarian.", 1, "prefeval:food:0", "prefeval"),
        Example("Plan a dinner.", "The user likes jazz.", 0, "prefeval:food:0", "prefeval"),
    ]
    assert as_served(data) == [
        Example("Plan a dinner.", "The user is vegetarian.", 1, "prefeval:food:0", "prefeval"),
        Example("Plan a dinner.", "The user likes jazz.", 0, "prefeval:food:0", "prefeval"),
    ]


def test_training_with_near_misses_but_no_embedder_is_refused(tmp_path: Path) -> None:
    from selector.train import TrainConfig, train_classifier

    with pytest.raises(ValueError, match="near_miss_embed"):
        train_classifier(tmp_path, set(), None, TrainConfig(prefeval_near_misses=True), tmp_path / "out")  # type: ignore[arg-type]
