"""Sentence embeddings with all-MiniLM-L6-v2 on onnxruntime (no torch in the serving process).

The ONNX graph (written by `memory.embedder_export`) maps token ids to the last hidden
state; mean pooling over real tokens and L2 normalization happen here, exactly as
sentence-transformers' all-MiniLM-L6-v2 pipeline (Transformer -> Pooling(mean) -> Normalize).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Encoding, Tokenizer

from memory.model import Memory
from memory.phrasing import as_statement

MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
EMBEDDING_DIM = 384
# all-MiniLM-L6-v2 was trained with 256-token inputs (its sentence_bert_config.json).
MAX_TOKENS = 256
# One text per run by default. The int8 graph quantizes activations with one scale per run
# (dynamic quantization), so a text batched with others comes out slightly different
# (cosine ~0.99 to itself alone, measured at export). One text per run keeps a text's vector
# a function of the text alone, and is the fastest path for the one-prompt-per-request case.
# Bulk jobs that accept that drift may pass a larger batch_size (~1.5x throughput at 32).
BATCH_SIZE = 1


def session_options(threads: int) -> ort.SessionOptions:
    """Pinned intra-op threads: onnxruntime's default (all cores) thrashes on a shared box."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


def load_tokenizer(path: Path, max_tokens: int = MAX_TOKENS) -> Tokenizer:
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.enable_truncation(max_length=max_tokens)
    # Pad only to the longest text of each batch (dynamic padding), never to max_tokens.
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    return tokenizer


def head_and_tail(ids: list[int], max_tokens: int) -> list[int]:
    """At most `max_tokens` ids: [CLS], the first 2/3 and the last 1/3 of the text's tokens, [SEP].

    A request's intent is usually at its start, but a pasted text followed by the question
    ("<code> why does this fail?") puts it at the end; keeping both ends serves either.
    """
    if len(ids) <= max_tokens:
        return ids
    body = ids[1:-1]
    keep = max_tokens - 2
    tail = keep // 3
    return [ids[0], *body[: keep - tail], *body[len(body) - tail :], ids[-1]]


def untruncated(tokenizer: Tokenizer) -> Tokenizer:
    """A copy of the tokenizer that neither truncates nor pads (for `clipped_ids`)."""
    full = Tokenizer.from_str(tokenizer.to_str())
    full.no_truncation()
    full.no_padding()
    return full


def clipped_ids(tokenizer: Tokenizer, text: str, max_tokens: int) -> list[int]:
    """The text's ids as `Embedder.embed(..., max_tokens)` embeds them: `head_and_tail` of the untruncated
    encoding (`tokenizer` from `untruncated`). The selector's prompt-encoder training uses it too."""
    # The untruncated encoding is needed for the true tail, but a huge text need not be tokenized
    # whole: a MiniLM token covers at most a few dozen characters ([UNK] words aside), so its two
    # ends by characters hold every token that can be kept.
    span = 32 * max_tokens
    if len(text) > 2 * span:
        text = f"{text[:span]} {text[-span:]}"
    return head_and_tail(tokenizer.encode(text).ids, max_tokens)


def ids_to_arrays(rows: list[list[int]]) -> dict[str, np.ndarray]:
    """Right-padded id rows (pad id 0) with their attention mask; one segment."""
    width = max(len(r) for r in rows)
    input_ids = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, r in enumerate(rows):
        input_ids[i, : len(r)] = r
        mask[i, : len(r)] = 1
    return {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(input_ids)}


def encodings_to_arrays(encodings: list[Encoding]) -> dict[str, np.ndarray]:
    return {
        "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
    }


def mean_pool_normalize(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    weights = mask[:, :, None].astype(np.float32)
    summed = (hidden * weights).sum(axis=1)
    pooled = summed / np.clip(weights.sum(axis=1), 1e-9, None)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)


class Embedder:
    """Unit-norm 384-d sentence embeddings; `embed` is CPU-bound, call it off the event loop."""

    dim = EMBEDDING_DIM

    def __init__(self, session: ort.InferenceSession, tokenizer: Tokenizer, batch_size: int = BATCH_SIZE):
        self._session = session
        self._tokenizer = tokenizer
        self._batch_size = batch_size
        self._input_names = {i.name for i in session.get_inputs()}
        self._full_tokenizer: Tokenizer | None = None

    @classmethod
    def load(cls, model_dir: Path, threads: int = 1, batch_size: int = BATCH_SIZE) -> Embedder:
        session = ort.InferenceSession(
            str(model_dir / MODEL_FILE),
            sess_options=session_options(threads),
            providers=["CPUExecutionProvider"],
        )
        return cls(session, load_tokenizer(model_dir / TOKENIZER_FILE), batch_size)

    def embed(self, texts: list[str], max_tokens: int | None = None) -> np.ndarray:
        """One unit vector per text. `max_tokens` below MAX_TOKENS embeds each text's head and tail only
        (`head_and_tail`): the selector's prompt embedding, whose cost grows with the prompt's length."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        # Sorted by length so that each batch pads only to a length close to its texts' own.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self._batch_size):
            idx = order[start : start + self._batch_size]
            batch = [texts[i] for i in idx]
            if max_tokens is None or max_tokens >= MAX_TOKENS:
                out[idx] = self._embed_arrays(encodings_to_arrays(self._tokenizer.encode_batch(batch)))
            else:
                out[idx] = self._embed_arrays(ids_to_arrays([self._clipped_ids(t, max_tokens) for t in batch]))
        return out

    def _clipped_ids(self, text: str, max_tokens: int) -> list[int]:
        if self._full_tokenizer is None:
            self._full_tokenizer = untruncated(self._tokenizer)
        return clipped_ids(self._full_tokenizer, text, max_tokens)

    def _embed_arrays(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        feeds = {name: value for name, value in arrays.items() if name in self._input_names}
        (hidden,) = self._session.run(["last_hidden_state"], feeds)
        return mean_pool_normalize(hidden, arrays["attention_mask"])


def stored_memories(user_id: str, texts: list[str], embedder: Embedder) -> list[Memory]:
    """Memories of `texts` with both vectors, the text's and the statement's, as the extraction worker stores
    them: what evaluations and benchmarks give a selector."""
    vectors, statements = embedder.embed(texts), embedder.embed([as_statement(t) for t in texts])
    return [
        Memory.new(user_id, t, embedding=v.tolist(), statement_embedding=s.tolist())
        for t, v, s in zip(texts, vectors, statements, strict=True)
    ]
