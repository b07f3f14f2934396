"""The verifier at run time: int8 ONNX model + `tokenizers`, no torch, no transformers.

verifier = Verifier.load(settings.models_dir / "verifier", threads=1)
scores = verifier.score([(format_snippet(turns), "Likes hiking.")])
keep = [verifier.supported(s) for s in scores]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from verifier.config import CONFIG_FILE, SUPPORTED_INDEX, VerifierConfig
from verifier.encoding import length_batches, load_tokenizer, pad, tokenize

# Pairs per ONNX call, whatever the caller hands over at once. Batches are cut from length-sorted
# pairs and padded to their own longest pair, so a long snippet does not make every short one pay
# for its padding. Small calls are faster per pair on this CPU: 512 val pairs in one `score` call,
# one thread, scored 138 / 159 / 155 / 134 / 111 pairs/s at 1 / 4 / 8 / 16 / 32 pairs per ONNX
# call (2026-12-02; larger batches' activations outgrow the caches). 8 keeps most of the gain while
# the attention matrices of long snippets stay small.
DEFAULT_BATCH_SIZE = 8


class VerifierModelMissing(FileNotFoundError):
    """The model directory or one of its files is not there (train and export it first)."""


class Verifier:
    def __init__(self, session: ort.InferenceSession, tokenizer: Tokenizer, config: VerifierConfig) -> None:
        self._session = session
        self._tokenizer = tokenizer
        self._config = config
        self._inputs = {i.name for i in session.get_inputs()}
        self.threshold = config.threshold

    @classmethod
    def load(cls, model_dir: Path, threads: int = 1) -> Verifier:
        """Load the model directory written by `verifier.export` (models/verifier/ in the repo).

        `threads` bounds onnxruntime's intra-op pool; pin it in latency-critical processes
        (FINDINGS.md: unpinned thread pools were 30x slower on the busy 2-core machine).
        """
        model_dir = Path(model_dir)
        config_path = model_dir / CONFIG_FILE
        if not config_path.is_file():
            raise VerifierModelMissing(
                f"no verifier model at {model_dir} (missing {CONFIG_FILE}); "
                "build it with `heedful train verifier` then `python -m verifier.export`"
            )
        config = VerifierConfig.load(model_dir)
        for name in (config.onnx_file, config.tokenizer_file):
            if not (model_dir / name).is_file():
                raise VerifierModelMissing(f"verifier model at {model_dir} is incomplete: missing {name}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(model_dir / config.onnx_file), options, providers=["CPUExecutionProvider"])
        tokenizer = load_tokenizer(model_dir / config.tokenizer_file, config.max_length)
        return cls(session, tokenizer, config)

    def score(self, pairs: Sequence[tuple[str, str]], batch_size: int = DEFAULT_BATCH_SIZE) -> list[float]:
        """P(supported) for each (snippet, attribute), in input order."""
        if not pairs:
            return []
        scores = np.zeros(len(pairs), dtype=np.float64)
        encodings = tokenize(self._tokenizer, pairs)
        for batch in length_batches(encodings, batch_size):
            inputs = pad([encodings[i] for i in batch], self._config.pad_id)
            feed = {name: array for name, array in inputs.items() if name in self._inputs}
            (logits,) = self._session.run(None, feed)
            scores[batch] = _softmax(logits)[:, SUPPORTED_INDEX]
        return scores.tolist()

    def supported(self, score: float) -> bool:
        """True when the attribute may be stored; below the threshold it is flagged for revision."""
        return score >= self.threshold


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)
