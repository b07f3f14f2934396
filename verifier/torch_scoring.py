"""P(supported) from a PyTorch checkpoint: for evaluation, the ONNX comparison and the benchmark."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from tokenizers import Tokenizer

from verifier.config import SUPPORTED_INDEX
from verifier.encoding import length_batches, pad, tokenize


@torch.inference_mode()
def torch_scores(
    model: torch.nn.Module,
    tokenizer: Tokenizer,
    pairs: Sequence[tuple[str, str]],
    pad_id: int,
    batch_size: int = 64,
    bf16: bool = False,
) -> list[float]:
    model.eval()
    scores = np.zeros(len(pairs), dtype=np.float64)
    encodings = tokenize(tokenizer, pairs)
    for batch in length_batches(encodings, batch_size):
        inputs = {k: torch.from_numpy(v) for k, v in pad([encodings[i] for i in batch], pad_id).items()}
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(**inputs).logits
        scores[batch] = torch.softmax(logits.float(), dim=-1)[:, SUPPORTED_INDEX].numpy()
    return scores.tolist()
