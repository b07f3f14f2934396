"""Baseline: Okapi BM25 of each memory against the prompt, one cutoff tuned on train.

The paper's Table 3 BM25 row (F1 0.243): attributes share almost no words with prompts
(FINDINGS), so this is a floor to beat, not a candidate. The corpus for document frequencies
is the user's own memories, the only collection a request sees.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections import Counter
from pathlib import Path

import numpy as np

from memory.model import Memory
from selector import NoPromptVector, Selection, selections
from selector.calibration import DecisionRule, rule_from_dict

# Robertson & Zaragoza's usual defaults.
K1 = 1.5
B = 0.75
# Words every attribute starts with ("The user ...") or that carry no topic.
_STOPWORD_TEXT = """
a an and are as at be but by can do does for from has have how i in is it its may me my of on or so
that the their them they this to user users was we what when which who will with would you your
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def tokenize(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in STOPWORDS]


def bm25_scores(query: str, documents: list[str]) -> np.ndarray:
    docs = [tokenize(d) for d in documents]
    if not docs:
        return np.zeros(0, dtype=np.float32)
    avg_len = max(sum(len(d) for d in docs) / len(docs), 1e-9)
    df = Counter(w for d in docs for w in set(d))
    n = len(docs)
    idf = {w: math.log(1 + (n - f + 0.5) / (f + 0.5)) for w, f in df.items()}
    terms = set(tokenize(query))
    scores = []
    for d in docs:
        tf = Counter(d)
        norm = K1 * (1 - B + B * len(d) / avg_len)
        scores.append(sum(idf[t] * tf[t] * (K1 + 1) / (tf[t] + norm) for t in terms if t in tf))
    return np.array(scores, dtype=np.float32)


class BM25Selector:
    name = "bm25"
    embeds_prompt = False
    prompt_vector_searches_store = False

    def __init__(self, rule: DecisionRule):
        self.rule = rule

    @classmethod
    def load(cls, baselines_file: Path) -> BM25Selector:
        return cls(rule_from_dict(json.loads(baselines_file.read_text())["bm25"]["rule"]))

    def embed_prompt(self, prompt: str) -> np.ndarray:
        raise NoPromptVector("the bm25 selector embeds no prompt (BM25 reads words)")

    def missing_vectors(self, memories: list[Memory]) -> list[Memory]:
        return []  # words only

    def score(self, prompt: str, memories: list[Memory]) -> np.ndarray:
        return bm25_scores(prompt, [m.text for m in memories])

    async def select(
        self, prompt: str, memories: list[Memory], prompt_vector: np.ndarray | None = None
    ) -> list[Selection]:
        """`prompt_vector` is not used: BM25 reads words."""
        if not memories:
            return []
        # Pure Python: a user with thousands of memories would otherwise stall the loop.
        scores = await asyncio.to_thread(self.score, prompt, memories)
        return selections(memories, scores.tolist(), self.rule.decide(scores).tolist())
