"""Expected agreement of one annotator, and of a selector, with the pilot's votes (selector.annotators)."""

from __future__ import annotations

import numpy as np
import pytest

from selector.annotators import Judged, against_other_annotators, judged, one_annotator_vs_majority

UNANIMOUS = [Judged(1, 3, 3), Judged(0, 3, 0)]


def test_unanimous_annotators_agree_perfectly() -> None:
    assert one_annotator_vs_majority(UNANIMOUS).f1 == 1.0
    assert against_other_annotators(UNANIMOUS).f1 == 1.0


def test_a_selector_is_scored_against_the_others_label_whoever_is_left_out() -> None:
    split = Judged(1, 3, 2)  # left out: an assenter (2/3) leaves a 1-1 tie, the dissenter (1/3) a 2-0 "relevant"
    always = against_other_annotators([split], np.array([1]))
    assert always.precision == pytest.approx(2 / 3 * 0.5 + 1 / 3)
    assert always.recall == 1.0
    never = against_other_annotators([split], np.array([0]))
    assert never.recall == 0.0 and never.selection_rate == 0.0


def test_an_item_with_one_annotator_has_no_others_to_agree_with() -> None:
    assert against_other_annotators([Judged(1, 1, 1)]).n == 0


def test_rows_without_vote_counts_give_none() -> None:
    assert judged({"label": 1, "n_annotators": 3, "human_yes_rate": 2 / 3}) == Judged(1, 3, 2)
    assert judged({"label": 1}) is None
