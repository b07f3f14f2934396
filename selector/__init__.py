"""Stage 2: which of a user's memories should change the answer to this prompt.

One interface, several backends, chosen by name through `build`:
- `classifier` (default): the prompt's MiniLM embedding against each memory's precomputed
  embedding, scored by a trained head, then a per-prompt decision rule (selector.calibration).
- `llm`: asks an LLM per memory, YES/NO with short reasoning (the paper's I.8 instruction).
- `embedding`, `bm25`: similarity baselines with thresholds tuned on the training split.

Every backend returns one Selection per memory, best first; "nothing is relevant" is a normal
answer (every `relevant` False), and an empty memory list gives an empty list.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from memory.model import Memory

if TYPE_CHECKING:
    import numpy as np

    from memory.embeddings import Embedder
    from memory.llm import LLM

T = TypeVar("T")

BACKENDS = ("classifier", "llm", "embedding", "bm25")
DEFAULT_BACKEND = "classifier"


@dataclass(frozen=True)
class Selection:
    memory: Memory
    score: float  # backend-specific; higher means more relevant
    relevant: bool


class Selector(Protocol):
    name: str
    # True when `select` embeds the prompt: a caller may compute that vector ahead with `embed_prompt`,
    # beside its store read, and pass it as `prompt_vector` (the Responder does; it saves the
    # embedding's time per request).
    embeds_prompt: bool
    # True when `embed_prompt`'s vector is in the store's embedding space, so a caller may also search the
    # store with it (the Responder's shortlist for users with very many memories). False for a classifier
    # with its own fine-tuned prompt encoder.
    prompt_vector_searches_store: bool

    def embed_prompt(self, prompt: str) -> np.ndarray:
        """The prompt's vector exactly as `select` computes it (CPU-bound: call off the loop).

        Only for backends whose `embeds_prompt` is True; the others raise `NoPromptVector`.
        """
        ...

    def missing_vectors(self, memories: list[Memory]) -> list[Memory]:
        """The memories whose stored vectors `select` needs and this selector does not hold yet.

        Callers read memories without vectors and then read only these: after a user's first request
        the vector backends hold them all, and the text backends never need them.
        """
        ...

    async def select(
        self, prompt: str, memories: list[Memory], prompt_vector: np.ndarray | None = None
    ) -> list[Selection]: ...


class NoPromptVector(TypeError):
    """`embed_prompt` was called on a backend that does not embed the prompt (check `embeds_prompt`)."""


class UnknownBackend(ValueError):
    """The configured selector backend name is not one of BACKENDS."""


def selections(memories: list[Memory], scores: list[float], relevant: list[bool]) -> list[Selection]:
    """One Selection per memory, best first (stable for ties, so input order breaks them)."""
    order = sorted(range(len(memories)), key=lambda i: -scores[i])
    return [Selection(memories[i], float(scores[i]), bool(relevant[i])) for i in order]


def build(backend: str, models_dir: Path, embedder: Embedder | None = None, llm: LLM | None = None) -> Selector:
    """The one place a backend is chosen; `models_dir` is the repo's models/ (holds selector/)."""
    selector_dir = models_dir / "selector"
    if backend == "classifier":
        from selector.classifier import ClassifierSelector

        return ClassifierSelector.load(selector_dir / "classifier", _require(embedder, backend))
    if backend == "embedding":
        from selector.embedding import EmbeddingSelector

        return EmbeddingSelector.load(selector_dir / "baselines.json", _require(embedder, backend))
    if backend == "bm25":
        from selector.bm25 import BM25Selector

        return BM25Selector.load(selector_dir / "baselines.json")
    if backend == "llm":
        from selector.llm import LLMSelector

        return LLMSelector(_require(llm, backend))
    raise UnknownBackend(f"unknown selector backend {backend!r}; expected one of {BACKENDS}")


def _require(part: T | None, backend: str) -> T:
    if part is None:
        raise ValueError(f"selector backend {backend!r} needs its embedder/LLM")
    return part
