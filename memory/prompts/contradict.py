"""A typed, small prompt: does a newer statement about a user replace an older one?"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from memory.llm import ChatMessage


class Verdict(BaseModel):
    contradicts: bool
    reason: str = Field(default="", max_length=200)


SYSTEM = """You compare two statements about the same user. The NEW one was said more recently. \
Answer contradicts=true only if both cannot be true now, so the NEW one replaces the OLD one \
("is vegetarian" then "started eating fish again"). Different topics, or one adding detail to the other, \
are not contradictions."""


def json_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"contradicts": {"type": "boolean"}, "reason": {"type": "string", "maxLength": 200}},
        "required": ["contradicts", "reason"],
        "additionalProperties": False,
    }


def messages(old: str, new: str) -> list[ChatMessage]:
    return [
        ChatMessage(role="system", content=SYSTEM),
        ChatMessage(role="user", content=f"OLD: {old}\nNEW: {new}\nReturn JSON."),
    ]
