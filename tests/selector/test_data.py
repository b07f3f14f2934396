"""Relevance data loaders: a held-out prompt leaves every source, PrefEval included."""

from __future__ import annotations

import json
from pathlib import Path

from selector.data import PREFEVAL_NEGATIVES, load_training, prompt_key


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
