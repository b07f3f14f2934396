"""The per-prompt decision rules: how scores become relevant / not relevant."""

from __future__ import annotations

import numpy as np
import pytest

from selector.calibration import (
    GlobalThreshold,
    ScoredGroup,
    TopShareRule,
    mean_within_auc,
    pooled_f1,
    rule_from_dict,
    top_share_grid,
    tune,
)


def test_top_share_keeps_at_most_the_share() -> None:
    scores = np.array([0.9, 0.8, 0.95, 0.7, 0.85, 0.99, 0.75, 0.9, 0.8, 0.9])
    keep = TopShareRule(share=0.2, floor=0.5).decide(scores)
    assert keep.sum() == 2
    assert set(np.flatnonzero(keep)) == {5, 2}


def test_floor_makes_nothing_relevant_possible() -> None:
    keep = TopShareRule(share=0.5, floor=0.6).decide(np.array([0.1, 0.3, 0.59, 0.2]))
    assert not keep.any()


def test_a_single_memory_is_selected_only_above_the_floor() -> None:
    rule = TopShareRule(share=0.2, floor=0.6)
    assert rule.decide(np.array([0.7])).tolist() == [True]
    assert rule.decide(np.array([0.5])).tolist() == [False]


def test_no_memories_no_selection() -> None:
    assert TopShareRule(0.3, 0.5).decide(np.array([])).shape == (0,)
    assert GlobalThreshold(0.5).decide(np.array([])).shape == (0,)


def test_global_threshold_is_inclusive() -> None:
    assert GlobalThreshold(0.5).decide(np.array([0.49, 0.5, 0.9])).tolist() == [False, True, True]


@pytest.mark.parametrize("rule", [GlobalThreshold(0.42), TopShareRule(0.25, 0.6)])
def test_rules_round_trip_through_config(rule: object) -> None:
    assert rule_from_dict(rule.to_dict()) == rule  # type: ignore[attr-defined]


def test_tune_picks_the_rule_with_best_f1() -> None:
    # Two users; in each the top-scored memory is the relevant one, and every score is low in
    # the second user: a per-prompt share finds both, no single cutoff can.
    groups = [
        ScoredGroup(np.array([0.9, 0.8, 0.7, 0.6]), np.array([1, 0, 0, 0])),
        ScoredGroup(np.array([0.3, 0.2, 0.1, 0.05]), np.array([1, 0, 0, 0])),
    ]
    best = tune([GlobalThreshold(0.85), GlobalThreshold(0.25), TopShareRule(0.25, 0.0)], groups)
    assert best == TopShareRule(0.25, 0.0)
    assert pooled_f1(best, groups) == 1.0


def test_grid_covers_the_human_selection_rate() -> None:
    shares = {r.share for r in top_share_grid()}  # type: ignore[attr-defined]
    assert min(shares) <= 0.1 and max(shares) >= 0.4


def test_tune_weighs_each_label_source_the_same() -> None:
    # A small set wants the top memory only; a large one wants the top two. Pooled, the large set's
    # 40 items would outvote the small set's 4; as a mean of the two F1s, the small set counts as much.
    small = [ScoredGroup(np.array([0.9, 0.8, 0.2, 0.1]), np.array([1, 0, 0, 0]))]
    large = [ScoredGroup(np.array([0.9, 0.8, 0.2, 0.1]), np.array([1, 1, 0, 0]))] * 10
    top_one, top_two = TopShareRule(0.25, 0.0), TopShareRule(0.5, 0.0)
    assert tune([top_one, top_two], small) == top_one
    assert tune([top_one, top_two], large) == top_two
    # top_one: (1.0 + 0.667) / 2 = 0.833; top_two: (0.667 + 1.0) / 2 = 0.833: a tie, the first wins.
    assert tune([top_one, top_two], small, large) == top_one
    assert tune([top_two, top_one], small, large) == top_two


def test_mean_within_auc_ranks_inside_each_group_and_skips_one_label_groups() -> None:
    groups = [
        ScoredGroup(np.array([0.9, 0.1, 0.2]), np.array([1, 0, 0])),  # perfect: 1.0
        ScoredGroup(np.array([0.01, 0.02, 0.03]), np.array([0, 1, 0])),  # low scores, ranked 2nd of 3: 0.5
        ScoredGroup(np.array([0.5, 0.6]), np.array([0, 0])),  # no relevant memory: no AUC, skipped
    ]
    assert mean_within_auc(groups) == 0.75
