"""Baseline: cosine similarity between the prompt and each memory, one cutoff tuned on train.

The paper's Table 3 embedding-similarity row (F1 0.384 on its human labels): similarity is
not relevance, which is why the default is a trained decision.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np

from memory.embeddings import Embedder
from memory.model import Memory
from selector import Selection, selections
from selector.calibration import DecisionRule, rule_from_dict
from selector.classifier import MemoryVectors


class EmbeddingSelector:
    name = "embedding"
    embeds_prompt = True
    prompt_vector_searches_store = True

    def __init__(self, embedder: Embedder, rule: DecisionRule):
        self._embedder = embedder
        self._memory_vectors = MemoryVectors(embedder)
        self.rule = rule

    @classmethod
    def load(cls, baselines_file: Path, embedder: Embedder) -> EmbeddingSelector:
        config = json.loads(baselines_file.read_text())
        return cls(embedder, rule_from_dict(config["embedding"]["rule"]))

    def embed_prompt(self, prompt: str) -> np.ndarray:
        return self._embedder.embed([prompt])[0]

    def missing_vectors(self, memories: list[Memory]) -> list[Memory]:
        return self._memory_vectors.missing(memories)

    def score(self, prompt: str, memories: list[Memory], prompt_vector: np.ndarray | None = None) -> np.ndarray:
        vector = self.embed_prompt(prompt) if prompt_vector is None else prompt_vector
        return self._memory_vectors.matrix(memories) @ vector

    async def select(
        self, prompt: str, memories: list[Memory], prompt_vector: np.ndarray | None = None
    ) -> list[Selection]:
        if not memories:
            return []
        scores = await asyncio.to_thread(self.score, prompt, memories, prompt_vector)
        return selections(memories, scores.tolist(), self.rule.decide(scores).tolist())
