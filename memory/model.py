"""The domain model: a remembered statement about a user and the evidence for it."""

from __future__ import annotations

import re
import unicodedata
import uuid
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, Field

# A fixed namespace so that the same (user, text) always maps to the same memory id,
# which is what makes replays and re-extraction idempotent.
MEMORY_NAMESPACE = uuid.UUID("5b0e8c1e-6d53-4c55-9a4a-3f1d3c1f7a11")


class MemoryKind(StrEnum):
    preference = "preference"
    profile = "profile"


class MemoryStatus(StrEnum):
    active = "active"
    disabled = "disabled"  # by the user: never used for a response
    superseded = "superseded"  # replaced by a newer memory (see `supersedes`)


class Evidence(BaseModel):
    """Where a memory comes from: the user's own words in one conversation."""

    conversation_id: str
    turn_ids: list[int] = Field(default_factory=list)
    quote: str


def utcnow() -> datetime:
    return datetime.now(UTC)


def normalize_text(text: str) -> str:
    """Case, width and whitespace folded; trailing punctuation dropped."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return re.sub(r"\s+", " ", folded).strip().rstrip(".!;,")


def memory_id(user_id: str, text: str) -> str:
    return str(uuid.uuid5(MEMORY_NAMESPACE, f"{user_id}\x1f{normalize_text(text)}"))


class Memory(BaseModel):
    id: str
    user_id: str
    text: str
    kind: MemoryKind = MemoryKind.preference
    evidence: list[Evidence] = Field(default_factory=list)
    confidence: float = Field(default=1.0, ge=0.0, le=1.0)
    verifier_score: float | None = None
    status: MemoryStatus = MemoryStatus.active
    supersedes: list[str] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    # The text's vector: neighbours, merges and the store's search.
    embedding: list[float] | None = Field(default=None, exclude=True, repr=False)
    # The vector of the text as a statement, "The user is vegetarian." (memory.phrasing.as_statement): what the
    # selector scores. Not the merge vector: the shared "The user" lifts cosines over the merge line.
    statement_embedding: list[float] | None = Field(default=None, exclude=True, repr=False)

    @classmethod
    def new(cls, user_id: str, text: str, **fields: object) -> Memory:
        return cls(id=memory_id(user_id, text), user_id=user_id, text=text, **fields)  # type: ignore[arg-type]
