"""Turning one prompt's memory scores into relevant / not relevant.

FINDINGS (selector): scores of a trained model mean different things from one prompt to the
next, so a single global cutoff selects all or nothing on an unseen prompt; ranking a user's
memories and keeping a share did better. `TopShareRule` keeps at most the top `share` of a
user's memories for this prompt, and of those only the ones scoring at least `floor`: the floor
is what keeps "nothing is relevant" a possible answer. `GlobalThreshold` is the paper's
baseline shape. Both are tuned by `tune`, on out-of-fold scores (cross-validation by prompt).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from selector.metrics import binary_metrics


class DecisionRule(Protocol):
    def decide(self, scores: np.ndarray) -> np.ndarray: ...

    def to_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class GlobalThreshold:
    threshold: float

    def decide(self, scores: np.ndarray) -> np.ndarray:
        return np.asarray(scores) >= self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "global", "threshold": self.threshold}


@dataclass(frozen=True)
class TopShareRule:
    share: float  # at most this share of one user's memories is selected for one prompt
    floor: float  # and only memories scoring at least this

    def decide(self, scores: np.ndarray) -> np.ndarray:
        scores = np.asarray(scores)
        keep = np.zeros(len(scores), dtype=bool)
        k = math.ceil(self.share * len(scores))
        top = np.argsort(-scores, kind="stable")[:k]
        keep[top] = scores[top] >= self.floor
        return keep

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "top_share", "share": self.share, "floor": self.floor}


def rule_from_dict(d: dict[str, Any]) -> DecisionRule:
    if d["kind"] == "global":
        return GlobalThreshold(float(d["threshold"]))
    if d["kind"] == "top_share":
        return TopShareRule(float(d["share"]), float(d["floor"]))
    raise ValueError(f"unknown decision rule {d['kind']!r}")


@dataclass(frozen=True)
class ScoredGroup:
    """One user x prompt: the scores of that user's memories and their human labels."""

    scores: np.ndarray
    labels: np.ndarray


def pooled_f1(rule: DecisionRule, groups: Sequence[ScoredGroup]) -> float:
    predicted = np.concatenate([rule.decide(g.scores) for g in groups])
    labels = np.concatenate([g.labels for g in groups])
    return binary_metrics(labels, predicted).f1


def mean_within_auc(groups: Sequence[ScoredGroup]) -> float:
    """Mean ROC AUC inside each group that holds both labels: how well one user's memories are ranked,
    which is what a per-user rule needs (a pooled AUC also mixes in how scores compare across prompts)."""
    from sklearn.metrics import roc_auc_score  # evaluation only: serving never imports sklearn

    return float(np.mean([roc_auc_score(g.labels, g.scores) for g in groups if 0 < g.labels.sum() < len(g.labels)]))


def tune(
    candidates: Iterable[DecisionRule], groups: Sequence[ScoredGroup], *more: Sequence[ScoredGroup]
) -> DecisionRule:
    """The candidate with the best F1 over all items (first wins ties: grids go strict to lax).

    With `more` sets of groups (other label sources), the best mean of the sets' pooled F1s: each set
    counts the same, however many items it has.
    """
    sets = (groups, *more)
    best: DecisionRule | None = None
    best_f1 = -1.0
    for rule in candidates:
        f1 = sum(pooled_f1(rule, s) for s in sets) / len(sets)
        if f1 > best_f1:
            best, best_f1 = rule, f1
    if best is None:
        raise ValueError("no candidate rules")
    return best


def global_grid(scores: np.ndarray, steps: int = 200) -> list[DecisionRule]:
    """Cutoffs at quantiles of the observed scores, high to low (works for any score scale)."""
    qs = np.quantile(scores, np.linspace(1.0, 0.0, steps))
    return [GlobalThreshold(float(t)) for t in np.unique(qs)[::-1]]


def top_share_grid() -> list[DecisionRule]:
    """Shares 5%..60% around the human rate (~20% relevant, paper Table 3), floors over [0, 0.9]."""
    shares = np.round(np.arange(0.05, 0.6001, 0.025), 3)
    floors = np.round(np.arange(0.9, -0.0001, -0.05), 3)
    return [TopShareRule(float(s), float(f)) for f in floors for s in shares]
