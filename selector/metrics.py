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
    tp = int((y & p).sum())
    precision = tp / p.sum() if p.sum() else 0.0
    recall = tp / y.sum() if y.sum() else 0.0
    f1 = 2 * tp / (y.sum() + p.sum()) if (y.sum() + p.sum()) else 0.0
    return BinaryMetrics(
        accuracy=float((y == p).mean()) if len(y) else 0.0,
        precision=float(precision),
        recall=float(recall),
        f1=float(f1),
        selection_rate=float(p.mean()) if len(p) else 0.0,
        n=len(y),
    )
