"""The verifier's model directory: what the runtime needs besides the weights."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

CONFIG_FILE = "config.json"
TOKENIZER_FILE = "tokenizer.json"
ONNX_FILE = "model.int8.onnx"

# The classifier's output order, fixed at training time: P(supported) is the score.
LABELS = ("unsupported", "supported")
SUPPORTED_INDEX = 1


@dataclass
class VerifierConfig:
    threshold: float  # scores below it are flagged unsupported
    max_length: int  # tokens per (snippet, attribute) pair, after left-truncating the snippet
    pad_id: int
    base_model: str
    onnx_file: str = ONNX_FILE
    tokenizer_file: str = TOKENIZER_FILE
    labels: list[str] = field(default_factory=lambda: list(LABELS))
    snippet_format: str = "format_snippet v1: 'USER: ...' / 'OTHER: ...', one line per turn"

    def save(self, model_dir: Path) -> None:
        (model_dir / CONFIG_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, model_dir: Path) -> VerifierConfig:
        data = json.loads((model_dir / CONFIG_FILE).read_text(encoding="utf-8"))
        return cls(**data)
