"""Scores to decisions to numbers, with *unsupported* as the positive class (paper Table 2)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from verifier.pairs import UNSUPPORTED, Pair

# The paper's verifier is tuned for recall on unsupported attributes (its RoBERTa: recall
# 0.926, F1 0.726): a wrongly stored attribute costs more than a wrongly flagged one, which is
# sent back for revision rather than lost.
TARGET_UNSUPPORTED_RECALL = 0.9


@dataclass(frozen=True)
class Metrics:
    accuracy: float
    precision: float
    recall: float
    f1: float
    n: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def flagged(scores: Sequence[float] | np.ndarray, threshold: float) -> np.ndarray:
    """True where the pair is judged unsupported: P(supported) below the threshold."""
    return np.asarray(scores, dtype=np.float64) < threshold


def metrics(labels: Sequence[int], scores: Sequence[float], threshold: float) -> Metrics:
    truth = np.asarray(labels) == UNSUPPORTED
    pred = flagged(scores, threshold)
    tp = int(np.sum(pred & truth))
    fp = int(np.sum(pred & ~truth))
    fn = int(np.sum(~pred & truth))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Metrics(float(np.mean(pred == truth)), precision, recall, f1, len(truth))


def threshold_for_recall(labels: Sequence[int], scores: Sequence[float], target: float) -> float:
    """The lowest threshold whose unsupported recall reaches `target` (fewest false flags).

    Pairs are flagged when score < threshold, so recall grows with the threshold; the
    smallest threshold that reaches the target flags the fewest supported pairs.
    """
    truth = np.asarray(labels) == UNSUPPORTED
    negatives = np.sort(np.asarray(scores, dtype=np.float64)[truth])
    if negatives.size == 0:
        raise ValueError("no unsupported pairs to set a threshold on")
    needed = int(np.ceil(target * negatives.size))
    # Flag the `needed` lowest-scored unsupported pairs: the threshold sits just above the last one.
    return float(np.nextafter(negatives[needed - 1], np.inf))


def best_f1_threshold(labels: Sequence[int], scores: Sequence[float]) -> float:
    """The threshold with the highest F1 on these labels (an optimistic, oracle setting)."""
    candidates = np.unique(np.asarray(scores, dtype=np.float64))
    if candidates.size > 2000:
        candidates = np.quantile(candidates, np.linspace(0, 1, 2001))
    best = max(candidates, key=lambda t: metrics(labels, scores, float(np.nextafter(t, np.inf))).f1)
    return float(np.nextafter(best, np.inf))


def recall_by_kind(pairs: Sequence[Pair], scores: Sequence[float], threshold: float) -> dict[str, float]:
    """Per kind: the share flagged for negatives (recall), the share kept for positives."""
    hits: dict[str, list[bool]] = defaultdict(list)
    for pair, is_flagged in zip(pairs, flagged(scores, threshold), strict=True):
        correct = bool(is_flagged) if pair.label == UNSUPPORTED else not is_flagged
        hits[pair.report_kind].append(correct)
    return {kind: float(np.mean(v)) for kind, v in sorted(hits.items())}
