"""A typed, small prompt: do the user's own words support this attribute? (the verifier's zero-shot LLM row)

The snippet is the verifier's input format (`verifier.format_snippet`): "USER:" lines are the user's own
words, "OTHER:" lines anyone else's. The answer is constrained to {"answer": "SUPPORTED" | "UNSUPPORTED"};
`parse` also reads a bare word, for a server that answers in prose.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from memory.llm import ChatMessage

SUPPORTED = "SUPPORTED"
UNSUPPORTED = "UNSUPPORTED"
# {"answer": "UNSUPPORTED"} is 8 tokens for SmolLM2's tokenizer; the rest is slack for a server's whitespace.
MAX_TOKENS = 24


class Verdict(BaseModel):
    answer: Literal["SUPPORTED", "UNSUPPORTED"]


SYSTEM = """You check a memory about a user against a conversation excerpt. Lines starting with USER: are \
the user's own words; lines starting with OTHER: were said by someone else (an assistant or another person). \
Answer SUPPORTED only if the user's own words state the attribute or clearly imply it. Answer UNSUPPORTED if \
only OTHER says it, if nobody says it, if it claims more than the user said, or if it contradicts the user."""

# The last SUPPORTED / UNSUPPORTED / NOT SUPPORTED in a prose answer; \b keeps "UNSUPPORTED" from matching SUPPORTED.
_WORD = re.compile(r"\b(un|not\s+)?supported\b", re.IGNORECASE)


def json_schema() -> dict[str, Any]:
    return {
        "title": "Support verdict",
        "type": "object",
        "properties": {"answer": {"type": "string", "enum": [SUPPORTED, UNSUPPORTED]}},
        "required": ["answer"],
        "additionalProperties": False,
    }


def messages(snippet: str, attribute: str) -> list[ChatMessage]:
    question = (
        f"Conversation:\n{snippet}\n\nAttribute: {attribute}\n\n"
        "Do the user's own words support the attribute? Answer SUPPORTED or UNSUPPORTED, as JSON: "
        '{"answer": "SUPPORTED"} or {"answer": "UNSUPPORTED"}.'
    )
    return [ChatMessage(role="system", content=SYSTEM), ChatMessage(role="user", content=question)]


def parse(text: str) -> bool | None:
    """True for SUPPORTED, False for UNSUPPORTED, None when the answer says neither."""
    try:
        return Verdict.model_validate(json.loads(text)).answer == SUPPORTED
    except (ValueError, ValidationError, TypeError):
        pass  # not the schema's JSON: look for the word itself
    found = _WORD.findall(text)
    if not found:
        return None
    return not found[-1]
