"""The default selector: a trained head over precomputed MiniLM embeddings, then a per-prompt rule.

Per request: embed the prompt once (int8 MiniLM: the classifier's own fine-tuned prompt encoder when
it was trained with one, else the store's embedder), score every memory's statement vector
(`Memory.statement_embedding`, "The user is vegetarian.") with the head (one small onnxruntime call
for all of them), then decide with the tuned rule (selector.calibration). Memories stored without a
statement vector are embedded here; nothing else depends on the number of memories.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import onnxruntime as ort

from memory.embeddings import Embedder, session_options
from memory.model import Memory
from memory.phrasing import as_statement
from selector import Selection, selections
from selector.calibration import DecisionRule, rule_from_dict

HEAD_FILE = "head.onnx"
CONFIG_FILE = "config.json"
# The classifier's own prompt encoder (selector.prompt_encoder), when it was trained with one; memories
# are always embedded by the store's embedder.
ENCODER_DIR = "prompt_encoder"


# Vectors kept per process; 20k x 384 float32 is ~30 MB of the API's 1 GB budget.
VECTOR_CACHE_SIZE = 20_000


def _key(memory: Memory) -> tuple[str, str]:
    # An edit keeps a memory's id and replaces its text and vector (PATCH /v1/memories/{id}): the text
    # is part of the key, so an edited memory is never scored with its old vector.
    return memory.id, memory.text


class MemoryVectors:
    """Memories' statement vectors as one float32 matrix, cached by memory id and text.

    The selector scores a memory as a statement ("The user is vegetarian."), the form of its training
    data, not as the extractor's fragment ("is vegetarian"), which it ranks worse (docs/selector.md,
    "Memory form"). The vector depends only on the text, so (id, text) always maps to the same one. The
    cache saves reading the stored vectors at all (the Responder asks `missing` first and reads only
    those; reading 200 costs more than the rest of the load), their list -> array conversion, and
    embedding memories stored without one (written before statement vectors existed).
    """

    def __init__(self, embedder: Embedder, capacity: int = VECTOR_CACHE_SIZE):
        self._embedder = embedder
        self._capacity = capacity
        self._vectors: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def missing(self, memories: list[Memory]) -> list[Memory]:
        """The memories that carry no statement vector and have none here: `matrix` would embed them."""
        with self._lock:
            return [m for m in memories if m.statement_embedding is None and _key(m) not in self._vectors]

    def matrix(self, memories: list[Memory]) -> np.ndarray:
        if not memories:
            return np.zeros((0, self._embedder.dim), dtype=np.float32)
        keys = [_key(m) for m in memories]
        with self._lock:  # select() runs in worker threads, several requests at once
            known = {key: self._vectors[key] for key in keys if key in self._vectors}
            for key in known:
                self._vectors.move_to_end(key)
        fresh = self._vectors_for([m for m, key in zip(memories, keys, strict=True) if key not in known])
        with self._lock:
            for key, vector in fresh.items():
                self._vectors[key] = vector
            while len(self._vectors) > self._capacity:
                self._vectors.popitem(last=False)
        return np.stack([known[key] if key in known else fresh[key] for key in keys])

    def _vectors_for(self, memories: list[Memory]) -> dict[tuple[str, str], np.ndarray]:
        stored = [m for m in memories if m.statement_embedding is not None]
        unstored = [m for m in memories if m.statement_embedding is None]
        out: dict[tuple[str, str], np.ndarray] = {}
        if stored:
            matrix = np.asarray([m.statement_embedding for m in stored], dtype=np.float32)
            out.update(zip(map(_key, stored), matrix, strict=True))
        if unstored:
            vectors = self._embedder.embed([as_statement(m.text) for m in unstored])
            out.update(zip(map(_key, unstored), vectors, strict=True))
        return out


class ClassifierSelector:
    name = "classifier"
    embeds_prompt = True

    def __init__(
        self,
        head: ort.InferenceSession,
        rule: DecisionRule,
        embedder: Embedder,
        prompt_tokens: int | None = None,
        prompt_encoder: Embedder | None = None,
    ):
        self._head = head
        self.rule = rule
        self._memory_vectors = MemoryVectors(embedder)
        # Prompts go through the classifier's fine-tuned encoder when it has one, else the store's embedder.
        self._prompt_encoder = prompt_encoder or embedder
        self.prompt_vector_searches_store = prompt_encoder is None
        # The prompt is embedded from at most this many tokens, its head and tail (None: the embedder's
        # 256). The head was trained on prompts embedded the same way (selector.train).
        self.prompt_tokens = prompt_tokens

    @classmethod
    def load(cls, model_dir: Path, embedder: Embedder, threads: int = 1) -> ClassifierSelector:
        config = json.loads((model_dir / CONFIG_FILE).read_text())
        head = ort.InferenceSession(
            str(model_dir / HEAD_FILE), sess_options=session_options(threads), providers=["CPUExecutionProvider"]
        )
        encoder = config.get("prompt_encoder")
        if encoder and not (model_dir / encoder).is_dir():
            # The head was trained on this encoder's vectors: scoring stock embeddings with it would be wrong.
            raise FileNotFoundError(f"{model_dir / CONFIG_FILE} names a prompt encoder {encoder!r} that is missing")
        prompt_encoder = Embedder.load(model_dir / encoder, threads=threads) if encoder else None
        return cls(head, rule_from_dict(config["rule"]), embedder, config.get("prompt_tokens"), prompt_encoder)

    def embed_prompt(self, prompt: str) -> np.ndarray:
        return self._prompt_encoder.embed([prompt], max_tokens=self.prompt_tokens)[0]

    def missing_vectors(self, memories: list[Memory]) -> list[Memory]:
        return self._memory_vectors.missing(memories)

    def score(self, prompt: str, memories: list[Memory], prompt_vector: np.ndarray | None = None) -> np.ndarray:
        """Probability that each memory should change the answer (CPU-bound: call off the loop).

        `prompt_vector` is the prompt's embedding when the caller already has it (embedded here if None).
        """
        vector = self.embed_prompt(prompt) if prompt_vector is None else prompt_vector
        (scores,) = self._head.run(
            ["scores"],
            {"prompt": vector.reshape(1, -1).astype(np.float32), "memories": self._memory_vectors.matrix(memories)},
        )
        return np.asarray(scores, dtype=np.float32)

    async def select(
        self, prompt: str, memories: list[Memory], prompt_vector: np.ndarray | None = None
    ) -> list[Selection]:
        if not memories:
            return []
        scores = await asyncio.to_thread(self.score, prompt, memories, prompt_vector)
        return selections(memories, scores.tolist(), self.rule.decide(scores).tolist())
