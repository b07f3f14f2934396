"""The classifier's trained head: relevance of a memory to a prompt from their two embeddings.

Training only (imports torch). The exported ONNX graph takes the prompt's embedding (1, 384)
and the memories' embeddings (n, 384) and returns n probabilities; the pair features
[u, v, u*v, |u-v|] are built inside the graph, so serving is one embed + one small run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

EMBEDDING_DIM = 384
OPSET = 17


class PairHead(nn.Module):
    """Logistic regression (hidden=0) or a one-hidden-layer MLP on [u, v, u*v, |u-v|], plus, with
    rank > 0, a low-rank bilinear term (P u) . (Q v).

    The elementwise features let a dimension of the prompt meet only the same dimension of the memory,
    so the logistic head learned mostly which memories are relevant to anything (its val AUC was ~0.85
    from the memory's embedding alone). The bilinear term lets any prompt direction meet any memory
    direction. Left free (weight decay 0.05) it raised within-user AUC on every held-out set and lost
    plain matches ("Recommend some dog food brands." ranked "likes spicy food" over "has two dogs"); a
    stronger decay on it alone (HeadConfig.interaction_decay) keeps part of the gain and the plain
    matches (docs/selector.md, "Head and prompt cut").
    """

    def __init__(self, dim: int = EMBEDDING_DIM, hidden: int = 0, rank: int = 0):
        super().__init__()
        self.dim = dim
        layers: list[nn.Module] = [nn.Linear(4 * dim, 1)]
        if hidden:
            layers = [nn.Linear(4 * dim, hidden), nn.GELU(), nn.Dropout(0.2), nn.Linear(hidden, 1)]
        self.net = nn.Sequential(*layers)
        self.rank = rank
        if rank:
            self.prompt_map = nn.Linear(dim, rank, bias=False)
            self.memory_map = nn.Linear(dim, rank, bias=False)

    def logits(self, prompt: torch.Tensor, memories: torch.Tensor) -> torch.Tensor:
        u = prompt.expand(memories.shape[0], -1)
        features = torch.cat([u, memories, u * memories, (u - memories).abs()], dim=1)
        out = self.net(features).squeeze(1)
        if self.rank:
            out = out + (self.prompt_map(u) * self.memory_map(memories)).sum(dim=1)
        return out

    def forward(self, prompt: torch.Tensor, memories: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(prompt, memories))


@dataclass(frozen=True)
class HeadConfig:
    hidden: int = 0
    rank: int = 0
    epochs: int = 8
    lr: float = 2e-3
    weight_decay: float = 0.05
    interaction_decay: float = 1.0  # AdamW weight decay on the bilinear maps only
    batch_size: int = 64
    seed: int = 0


def balanced_weights(labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Source weights rescaled so positives and negatives carry equal total weight."""
    pos, neg = weights[labels == 1].sum(), weights[labels == 0].sum()
    total = pos + neg
    return np.where(labels == 1, weights * total / (2 * pos), weights * total / (2 * neg))


def train_head(
    prompts: np.ndarray, attributes: np.ndarray, labels: np.ndarray, weights: np.ndarray, config: HeadConfig
) -> PairHead:
    """Weighted binary cross-entropy on (prompt embedding, attribute embedding) pairs."""
    torch.manual_seed(config.seed)
    u, v = torch.from_numpy(prompts), torch.from_numpy(attributes)
    y = torch.from_numpy(labels.astype(np.float32))
    w = torch.from_numpy(balanced_weights(labels, weights).astype(np.float32))
    head = PairHead(u.shape[1], config.hidden, config.rank)
    groups: list[dict[str, object]] = [{"params": list(head.net.parameters()), "weight_decay": config.weight_decay}]
    if config.rank:
        bilinear = [*head.prompt_map.parameters(), *head.memory_map.parameters()]
        groups.append({"params": bilinear, "weight_decay": config.interaction_decay})
    optimizer = torch.optim.AdamW(groups, lr=config.lr)  # type: ignore[arg-type]
    head.train()
    for _ in range(config.epochs):
        for batch in torch.randperm(len(y)).split(config.batch_size):
            loss = nn.functional.binary_cross_entropy_with_logits(head.logits(u[batch], v[batch]), y[batch], w[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return head.eval()


def predict(head: PairHead, prompts: np.ndarray, attributes: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return head(torch.from_numpy(prompts), torch.from_numpy(attributes)).numpy()


def export_head(head: PairHead, path: Path) -> None:
    prompt, memories = torch.zeros(1, head.dim), torch.zeros(3, head.dim)
    torch.onnx.export(
        head.eval(),
        (prompt, memories),
        str(path),
        input_names=["prompt", "memories"],
        output_names=["scores"],
        dynamic_axes={"memories": {0: "n"}, "scores": {0: "n"}},
        opset_version=OPSET,
        dynamo=False,
    )
