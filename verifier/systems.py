"""Rows shared by the model card (`verifier.export`) and `heedful eval verifier`.

The baselines at both threshold rules, and P(supported) from a PyTorch checkpoint, computed one way for both
reports so that their numbers stay comparable.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from verifier.baselines import cosine_scores, word_overlap_scores
from verifier.config import TOKENIZER_FILE
from verifier.encoding import load_tokenizer
from verifier.evaluate import SystemResult, evaluate, evaluate_best_f1
from verifier.pairs import Pair


def baseline_results(pairs: Sequence[Pair], base_model: Path | None = None) -> list[SystemResult]:
    """Word overlap and embedding cosine, each at the verifier's recall rule and at its best F1 (an oracle)."""
    if base_model is None:
        from verifier.train import default_base  # imports torch: only when the baselines run

        base_model = Path(default_base())
    overlap = word_overlap_scores(pairs)
    cosine = cosine_scores(pairs, base_model)
    return [
        evaluate("word overlap", pairs, overlap),
        evaluate_best_f1("word overlap", pairs, overlap),
        evaluate("embedding cosine", pairs, cosine),
        evaluate_best_f1("embedding cosine", pairs, cosine),
    ]


def checkpoint_scores(
    checkpoint: Path, texts: Sequence[tuple[str, str]], max_length: int, pad_id: int, threads: int
) -> list[float]:
    """P(supported) from the PyTorch fp32 checkpoint `heedful train verifier` writes."""
    import torch

    from verifier.onnx_export import load_checkpoint
    from verifier.torch_scoring import torch_scores

    torch.set_num_threads(threads)
    model = load_checkpoint(checkpoint)
    tokenizer = load_tokenizer(checkpoint / TOKENIZER_FILE, max_length)
    return torch_scores(model, tokenizer, texts, pad_id)
