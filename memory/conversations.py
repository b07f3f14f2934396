"""What a chat app sends: a conversation of one user, validated once at the edge."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@+\-]*$"


def _encodable(text: str) -> str:
    """Rejects what cannot be stored as UTF-8 (unpaired surrogates) and NUL bytes, with a message that says so."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("text is not valid unicode (unpaired surrogate); send UTF-8 text") from exc
    if "\x00" in text:
        raise ValueError("text contains a NUL character; remove it")
    return text


# Ids become parts of storage keys, so they are restricted to a safe alphabet.
Identifier = Annotated[
    str,
    StringConstraints(min_length=1, max_length=128, pattern=IDENTIFIER_PATTERN),
    Field(description="letters, digits and . _ @ + - (1-128 characters, starting with a letter or digit)"),
]
Text = Annotated[str, AfterValidator(_encodable)]


class Message(BaseModel):
    role: Literal["user", "assistant", "system"]
    content: Annotated[Text, StringConstraints(min_length=1)]
    timestamp: datetime | None = None


class Conversation(BaseModel):
    user_id: Identifier
    conversation_id: Identifier
    messages: list[Message] = Field(min_length=1)

    def digest(self) -> str:
        """Content hash: the same conversation sent twice has the same digest."""
        body = json.dumps([m.model_dump(mode="json") for m in self.messages], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(body.encode()).hexdigest()

    def user_turns(self) -> list[tuple[int, str]]:
        """(turn id, text) of the user's own turns: the only admissible evidence about the user."""
        return [(i, m.content) for i, m in enumerate(self.messages) if m.role == "user"]


def tenant_id(app_id: str, user_id: str) -> str:
    """One user of one app; the key under which all of that user's data is stored.

    Both parts are Identifiers (no ':'), so the join is unambiguous.
    """
    return f"{app_id}:{user_id}"
