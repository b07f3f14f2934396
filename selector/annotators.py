"""How well one human annotator agrees with the pilot's labels: reference rows for the selector table.

The target F1 (0.64, the paper's best model) means little without knowing how far people themselves agree
on these items. The pilot files give, per item, how many annotators judged it (`n_annotators`) and the share
who said relevant (`human_yes_rate`), not who said what; so the rows are expected values over drawing one of
the item's annotators at random:
- against the majority label (the files' `label`: relevant when more than half said so). The annotator's own
  vote is part of it, so this is an upper bound on what one person scores against these labels;
- against the other annotators' majority, a tie counting half relevant (leave one out): a fair comparison
  for one person, but against a label made of one vote fewer (two votes on val), so a noisier one. The
  selectors are scored against the same leave-one-out labels (`against_other_annotators` with their
  predictions), which puts a selector and one person on the same footing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from selector.metrics import BinaryMetrics, counted_metrics

ONE_ANNOTATOR = "one annotator"


@dataclass(frozen=True)
class Judged:
    label: int  # the majority label
    annotators: int
    said_relevant: int

    def chance_of(self, said: int) -> float:
        """That an annotator drawn at random said `said` (1 relevant)."""
        return (self.said_relevant if said else self.annotators - self.said_relevant) / self.annotators

    def others_relevant(self, said: int) -> float:
        """The label of the other annotators when the one left out said `said`: 1 or 0 by their majority,
        0.5 for a tie."""
        rest, votes = self.annotators - 1, self.said_relevant - said
        return 1.0 if 2 * votes > rest else 0.5 if 2 * votes == rest else 0.0


def judged(row: dict[str, Any]) -> Judged | None:
    """An item's vote counts, or None when its row does not give them (any file in the pilot format may be
    evaluated; these two fields are the pilot's own)."""
    if "n_annotators" not in row or "human_yes_rate" not in row:
        return None
    n = int(row["n_annotators"])
    return Judged(int(row["label"]), n, round(float(row["human_yes_rate"]) * n))


def one_annotator_vs_majority(items: Sequence[Judged]) -> BinaryMetrics:
    """One annotator drawn at random per item, against the majority label their own vote is part of."""
    counts = Counts()
    for item in items:
        for said in (1, 0):
            counts.add(said, item.chance_of(said), float(item.label))
    return counts.metrics()


def against_other_annotators(items: Sequence[Judged], predicted: np.ndarray | None = None) -> BinaryMetrics:
    """Predictions (None: one annotator drawn at random, left out) against the other annotators' label, in
    expectation over which annotator is left out."""
    counts = Counts()
    for i, item in enumerate(items):
        if item.annotators < 2:
            continue
        for said in (1, 0):
            guess = said if predicted is None else int(predicted[i])
            counts.add(guess, item.chance_of(said), item.others_relevant(said))
    return counts.metrics()


@dataclass
class Counts:
    """A confusion matrix of expected counts."""

    tp: float = 0.0
    fp: float = 0.0
    fn: float = 0.0
    tn: float = 0.0

    def add(self, guess: int, chance: float, relevant: float) -> None:
        """One possible case, weighted by its chance, against a label that is relevant with `relevant`."""
        if guess:
            self.tp += chance * relevant
            self.fp += chance * (1 - relevant)
        else:
            self.fn += chance * relevant
            self.tn += chance * (1 - relevant)

    def metrics(self) -> BinaryMetrics:
        return counted_metrics(tp=self.tp, fp=self.fp, fn=self.fn, tn=self.tn)
