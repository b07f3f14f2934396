"""The zero-shot LLM row: a chat model reads each (snippet, attribute) and answers SUPPORTED or UNSUPPORTED.

Any `LLM` backend runs the same code (the embedded SmolLM2 or a server from `memory.llm.factory`). An answer
that does not parse, or a call that fails, counts as supported (not flagged): a gate that cannot decide lets
the attribute through, and the row reports the share of answers that parsed.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from memory.llm import LLM, LLMError, TruncatedJSON
from memory.prompts import support
from verifier.metrics import metrics, recall_by_kind
from verifier.pairs import Pair

ZERO_SHOT_RULE = "zero-shot prompt"
# Flagged answers become score 0, the rest 1, so the score-based metrics apply at this threshold.
_DECISION = 0.5
MAX_CONCURRENCY = 8  # a server batches concurrent requests; the embedded model queues them


@dataclass(frozen=True)
class Judgement:
    supported: bool | None  # None: the answer said neither SUPPORTED nor UNSUPPORTED
    error: str | None = None  # the call failed (LLMError); counted as not parsable


async def judge(llm: LLM, pair: Pair) -> Judgement:
    try:
        completion = await llm.complete(
            support.messages(pair.snippet, pair.attribute),
            max_tokens=support.MAX_TOKENS,
            json_schema=support.json_schema(),
        )
    except TruncatedJSON as exc:  # cut before the JSON closed: the word may still be there
        return Judgement(support.parse(exc.text))
    except LLMError as exc:
        return Judgement(None, str(exc)[:200])
    return Judgement(support.parse(completion.text))


async def judge_all(llm: LLM, pairs: Sequence[Pair], max_concurrency: int = MAX_CONCURRENCY) -> list[Judgement]:
    slots = asyncio.Semaphore(max_concurrency)

    async def one(pair: Pair) -> Judgement:
        async with slots:
            return await judge(llm, pair)

    return list(await asyncio.gather(*(one(p) for p in pairs)))


def zero_shot_row(name: str, pairs: Sequence[Pair], judgements: Sequence[Judgement], seconds: float) -> dict[str, Any]:
    """The row as the tables print it: no scores, so no threshold and no AUC; plus the parsable share."""
    scores = [0.0 if j.supported is False else 1.0 for j in judgements]
    labels = [p.label for p in pairs]
    return {
        "name": name,
        "threshold": None,
        "rule": ZERO_SHOT_RULE,
        **metrics(labels, scores, _DECISION).as_dict(),
        "auc": None,
        "by_kind": recall_by_kind(pairs, scores, _DECISION),
        "parsable": float(np.mean([j.supported is not None for j in judgements])) if judgements else 0.0,
        "errors": sum(j.error is not None for j in judgements),
        "first_error": next((j.error for j in judgements if j.error), None),
        "seconds_per_pair": seconds / len(judgements) if judgements else 0.0,
    }


async def run_zero_shot(name: str, llm: LLM, pairs: Sequence[Pair]) -> dict[str, Any]:
    """Judges every pair with `llm`, closes it, and returns its row."""
    started = time.monotonic()
    try:
        judgements = await judge_all(llm, pairs)
    finally:
        await llm.aclose()
    return zero_shot_row(name, pairs, judgements, time.monotonic() - started)


def stratified_sample(pairs: Sequence[Pair], n: int, seed: int) -> list[int]:
    """Indices of `n` pairs, each kind in proportion to its share (largest remainder), in input order.

    Proportional, so the sample keeps the split's class balance and its precision compares with the
    full table's; every kind keeps at least one pair when `n` allows, so the per-kind table has no gaps.
    """
    by_kind: dict[str, list[int]] = defaultdict(list)
    for i, pair in enumerate(pairs):
        by_kind[pair.report_kind].append(i)
    n = min(n, len(pairs))
    kinds = sorted(by_kind)
    exact = {k: n * len(by_kind[k]) / len(pairs) for k in kinds} if pairs else {}
    quota = {k: int(exact[k]) for k in kinds}
    for k in sorted(kinds, key=lambda k: exact[k] - quota[k], reverse=True)[: n - sum(quota.values())]:
        quota[k] += 1
    if n >= len(kinds):
        for k in kinds:
            if quota[k] == 0:
                donor = max((d for d in kinds if quota[d] > 1), key=lambda d: quota[d] - exact[d])
                quota[donor] -= 1
                quota[k] = 1
    rng = random.Random(seed)
    return sorted(i for k in kinds for i in rng.sample(by_kind[k], quota[k]))
