"""(snippet, attribute) -> model inputs, with the `tokenizers` library only.

Training and the ONNX runtime both encode through this module, so the truncation rule and
padding are identical in both (and the API process never imports transformers or torch).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tokenizers import Encoding, Tokenizer

# Attributes are one short statement; a pathological one is cut so that the snippet, not the
# attribute, always keeps most of the token budget.
MAX_ATTRIBUTE_CHARS = 400


def load_tokenizer(path: Path, max_length: int) -> Tokenizer:
    """The tokenizer with the verifier's truncation rule and no fixed padding.

    Only the snippet is truncated, from the left: the user's latest turn is at its end and
    is the evidence that matters most, the partner's earlier text the least.
    """
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length, strategy="only_first", direction="left")
    return tokenizer


def tokenize(tokenizer: Tokenizer, pairs: Sequence[tuple[str, str]]) -> list[Encoding]:
    return tokenizer.encode_batch([(snippet, attribute[:MAX_ATTRIBUTE_CHARS]) for snippet, attribute in pairs])


def pad(encodings: Sequence[Encoding], pad_id: int) -> dict[str, np.ndarray]:
    """Token ids, attention mask and segment ids, padded to the longest pair in this batch."""
    length = max(len(e.ids) for e in encodings)
    input_ids = np.full((len(encodings), length), pad_id, dtype=np.int64)
    attention_mask = np.zeros((len(encodings), length), dtype=np.int64)
    token_type_ids = np.zeros((len(encodings), length), dtype=np.int64)
    for row, e in enumerate(encodings):
        input_ids[row, : len(e.ids)] = e.ids
        attention_mask[row, : len(e.ids)] = 1
        token_type_ids[row, : len(e.ids)] = e.type_ids
    return {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}


def length_batches(encodings: Sequence[Encoding], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length, so padding to the batch's longest is cheap."""
    order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
