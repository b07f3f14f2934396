"""The paper's Table 3 measures for a binary relevant/irrelevant decision."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class BinaryMetrics:
    accuracy: float
    precision: float
    recall: float
    f1: float
    selection_rate: float  # share of items marked relevant
    n: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def binary_metrics(labels: np.ndarray, predicted: np.ndarray) -> BinaryMetrics:
    y, p = labels.astype(bool), predicted.astype(bool)
    return counted_metrics(tp=(y & p).sum(), fp=(~y & p).sum(), fn=(y & ~p).sum(), tn=(~y & ~p).sum())


def counted_metrics(*, tp: float, fp: float, fn: float, tn: float) -> BinaryMetrics:
    """From a confusion matrix, whose counts may be expected values (selector.annotators)."""
    tp, fp, fn, tn = float(tp), float(fp), float(fn), float(tn)
    n = tp + fp + fn + tn
    return BinaryMetrics(
        accuracy=(tp + tn) / n if n else 0.0,
        precision=tp / (tp + fp) if tp + fp else 0.0,
        recall=tp / (tp + fn) if tp + fn else 0.0,
        f1=2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
        selection_rate=(tp + fp) / n if n else 0.0,
        n=round(n),
    )
