"""Selector that asks an LLM about each memory: short reasoning, then a final YES or NO.

Meant for a strong or GRPO-tuned model behind `HEEDFUL_LLM_URL`; requests for one prompt's
memories go out concurrently (vLLM batches them). A reply with no parsable answer counts as
not relevant: selecting nothing is the safe default (paper: humans mark ~20% relevant,
LLMs over-select at 40-60%).
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING

from memory.llm import LLM, ChatMessage
from memory.model import Memory
from memory.phrasing import as_statement
from selector import NoPromptVector, Selection, selections

if TYPE_CHECKING:
    import numpy as np

# The paper's annotation instruction (Appendix I.8), as quoted in issue 5.
INSTRUCTION = (
    "You will see a user's request to an AI assistant and one attribute known about that user. "
    "Decide whether the attribute is relevant to the request. It is relevant if it would affect "
    "the assistant's response in any way, explicitly or implicitly. It is irrelevant if the "
    "response would be unchanged."
)
ANSWER_FORMAT = (
    "Reason in one or two short sentences, then end with a last line that is exactly 'Answer: YES' or 'Answer: NO'."
)
# Enough for two sentences and the answer line; more only invites rambling from small models.
MAX_TOKENS = 128
MAX_CONCURRENCY = 16
SCORE_YES, SCORE_NO, SCORE_UNPARSED = 1.0, 0.0, 0.5

_ANSWER_LINE = re.compile(r"answer\s*[:\-]?\s*\**\s*(yes|no)\b", re.IGNORECASE)
_BARE_WORD = re.compile(r"\b(yes|no)\b", re.IGNORECASE)


def messages_for(prompt: str, attribute: str) -> list[ChatMessage]:
    return [
        ChatMessage(role="system", content=INSTRUCTION),
        ChatMessage(role="user", content=f"Request:\n{prompt}\n\nUser attribute: {attribute}\n\n{ANSWER_FORMAT}"),
    ]


def parse_answer(text: str) -> bool | None:
    """The final 'Answer: YES/NO'; else the last bare YES/NO; None if neither appears."""
    found = _ANSWER_LINE.findall(text) or _BARE_WORD.findall(text)
    if not found:
        return None
    return found[-1].lower() == "yes"


def final_answer(text: str) -> bool | None:
    """The answer only when the last non-empty line is the 'Answer: YES/NO' line the format asks for."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    found = _ANSWER_LINE.findall(lines[-1]) if lines else []
    return found[-1].lower() == "yes" if found else None


class LLMSelector:
    name = "llm"
    embeds_prompt = False
    prompt_vector_searches_store = False

    def __init__(self, llm: LLM, max_concurrency: int = MAX_CONCURRENCY, max_tokens: int = MAX_TOKENS):
        self._llm = llm
        self._max_tokens = max_tokens
        self._slots = asyncio.Semaphore(max_concurrency)

    def embed_prompt(self, prompt: str) -> np.ndarray:
        raise NoPromptVector("the llm selector embeds no prompt (the LLM reads the prompt itself)")

    def missing_vectors(self, memories: list[Memory]) -> list[Memory]:
        return []  # the LLM reads the text

    async def judge(self, prompt: str, attribute: str) -> bool | None:
        async with self._slots:
            completion = await self._llm.complete(messages_for(prompt, attribute), max_tokens=self._max_tokens)
        return parse_answer(completion.text)

    async def select(
        self, prompt: str, memories: list[Memory], prompt_vector: np.ndarray | None = None
    ) -> list[Selection]:
        """`prompt_vector` is not used: the LLM reads the prompt itself. Each memory is shown as a statement
        ("is vegetarian" -> "The user is vegetarian."), as the GRPO adapter was trained on its attributes."""
        if not memories:
            return []
        answers = await asyncio.gather(*(self.judge(prompt, as_statement(m.text)) for m in memories))
        scores = [SCORE_UNPARSED if a is None else SCORE_YES if a else SCORE_NO for a in answers]
        return selections(memories, scores, [a is True for a in answers])
