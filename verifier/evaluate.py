"""Evaluation of any scorer on verifier pairs: the numbers in the model card and docs."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from verifier.metrics import (
    TARGET_UNSUPPORTED_RECALL,
    Metrics,
    best_f1_threshold,
    flagged,
    metrics,
    recall_by_kind,
    threshold_for_recall,
)
from verifier.pairs import UNSUPPORTED, Pair


@dataclass(frozen=True)
class SystemResult:
    name: str
    threshold: float
    rule: str  # how the threshold was set
    metrics: Metrics
    by_kind: dict[str, float]
    auc: float  # threshold-free: how well the scores rank unsupported below supported

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "threshold": self.threshold,
            "rule": self.rule,
            **self.metrics.as_dict(),
            "auc": self.auc,
            "by_kind": self.by_kind,
        }


def evaluate(name: str, pairs: Sequence[Pair], scores: Sequence[float], threshold: float | None = None) -> SystemResult:
    """Metrics at `threshold`, or at the val threshold that reaches the recall target."""
    labels = [p.label for p in pairs]
    rule = "given"
    if threshold is None:
        threshold = threshold_for_recall(labels, scores, TARGET_UNSUPPORTED_RECALL)
        rule = f"unsupported recall >= {TARGET_UNSUPPORTED_RECALL} on val"
    return SystemResult(
        name,
        threshold,
        rule,
        metrics(labels, scores, threshold),
        recall_by_kind(pairs, scores, threshold),
        auc(labels, scores),
    )


def evaluate_best_f1(name: str, pairs: Sequence[Pair], scores: Sequence[float]) -> SystemResult:
    """The scorer at its best-F1 threshold on val: an upper bound, for baselines."""
    labels = [p.label for p in pairs]
    result = evaluate(name, pairs, scores, best_f1_threshold(labels, scores))
    return SystemResult(result.name, result.threshold, "best F1 on val (oracle)", *_rest(result))


def _rest(result: SystemResult) -> tuple[Metrics, dict[str, float], float]:
    return result.metrics, result.by_kind, result.auc


def auc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """P(a random unsupported pair scores below a random supported one)."""
    from sklearn.metrics import roc_auc_score  # training-side dependency only

    truth = np.asarray(labels) == UNSUPPORTED
    if truth.all() or not truth.any():
        return float("nan")
    return float(roc_auc_score(truth, -np.asarray(scores, dtype=np.float64)))


def cross_fitted(pairs: Sequence[Pair], scores: Sequence[float]) -> Metrics:
    """Threshold chosen on one half of the val dialogues, measured on the other, both ways.

    Choosing and reporting on the same split flatters the result; this estimate does not.
    """
    halves = np.array([int(hashlib.md5(p.group.encode()).hexdigest(), 16) % 2 for p in pairs])
    labels = np.array([p.label for p in pairs])
    values = np.asarray(scores, dtype=np.float64)
    predicted = np.zeros(len(pairs), dtype=bool)
    for half in (0, 1):
        fit, apply = halves != half, halves == half
        threshold = threshold_for_recall(labels[fit].tolist(), values[fit].tolist(), TARGET_UNSUPPORTED_RECALL)
        predicted[apply] = flagged(values[apply].tolist(), threshold)
    # Re-express the pooled decisions as scores around a 0.5 threshold to reuse `metrics`.
    return metrics(labels.tolist(), np.where(predicted, 0.0, 1.0).tolist(), 0.5)
