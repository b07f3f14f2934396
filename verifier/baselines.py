"""What the trained verifier has to beat: word overlap and embedding cosine.

Both compare the attribute with the *user's* turns only (the evidence the memory may rest
on). FINDINGS.md: word overlap alone reached F1 ≈ 0.74 on rule-made negatives, so the
verifier is only worth its cost where it clearly beats it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from verifier.pairs import Pair
from verifier.snippet import USER_MARK
from verifier.words import overlap_share


def user_text(snippet: str) -> str:
    """The user's turns of a `format_snippet` string, without the speaker marks."""
    return " ".join(line[len(USER_MARK) :].strip() for line in snippet.splitlines() if line.startswith(USER_MARK))


def word_overlap_scores(pairs: Sequence[Pair]) -> list[float]:
    """Share of the attribute's content words said by the user: higher means better supported."""
    return [overlap_share(p.attribute, user_text(p.snippet)) for p in pairs]


def cosine_scores(pairs: Sequence[Pair], model_path: Path, batch_size: int = 64) -> list[float]:
    """Cosine similarity of all-MiniLM-L6-v2 embeddings of attribute and user turns."""
    from sentence_transformers import SentenceTransformer  # training-side dependency only

    model = SentenceTransformer(str(model_path), device="cpu")
    attributes = model.encode([p.attribute for p in pairs], batch_size=batch_size, normalize_embeddings=True)
    evidence = model.encode([user_text(p.snippet) for p in pairs], batch_size=batch_size, normalize_embeddings=True)
    return [float(x) for x in np.sum(np.asarray(attributes) * np.asarray(evidence), axis=1)]
