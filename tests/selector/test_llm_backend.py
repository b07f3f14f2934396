"""The LLM selector: parsing the final YES/NO, and one concurrent request per memory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from memory.llm import ChatMessage, Completion
from memory.model import Memory
from selector.llm import LLMSelector, parse_answer


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("It changes the advice.\nAnswer: YES", True),
        ("Not related at all.\nAnswer: NO", False),
        ("answer: yes", True),
        ("**Answer:** NO", False),
        ("No, wait, it does matter. Answer - Yes", True),
        ("YES", True),
        ("Reasoning says no... final: YES", True),
        ("I cannot tell.", None),
        ("", None),
    ],
)
def test_parse_answer(text: str, expected: bool | None) -> None:
    assert parse_answer(text) is expected


class FakeLLM:
    """Says YES when the attribute mentions a keyword; counts requests in flight."""

    model_name = "fake"

    def __init__(self, yes_word: str, garbled_word: str = "") -> None:
        self.yes_word, self.garbled_word = yes_word, garbled_word
        self.in_flight = self.max_in_flight = self.calls = 0
        self.seen: list[list[ChatMessage]] = []

    async def complete(
        self,
        messages: list[ChatMessage],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        json_schema: dict[str, Any] | None = None,
    ) -> Completion:
        self.calls += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.seen.append(messages)
        await asyncio.sleep(0.01)
        self.in_flight -= 1
        attribute = messages[-1].content.split("User attribute:")[1]
        if self.garbled_word and self.garbled_word in attribute:
            return Completion(text="hmm")
        answer = "YES" if self.yes_word in attribute else "NO"
        return Completion(text=f"Short reason.\nAnswer: {answer}")

    async def stream(
        self, messages: list[ChatMessage], *, max_tokens: int = 256, temperature: float = 0.0
    ) -> AsyncIterator[str]:
        yield ""

    async def aclose(self) -> None:
        return None


def memories(*texts: str) -> list[Memory]:
    return [Memory.new("u1", t) for t in texts]


async def test_selects_what_the_llm_says_yes_to() -> None:
    llm = FakeLLM("vegetarian")
    out = await LLMSelector(llm).select("Dinner ideas?", memories("The user is vegetarian.", "The user has a cat."))
    assert [(s.memory.text, s.relevant) for s in out] == [
        ("The user is vegetarian.", True),
        ("The user has a cat.", False),
    ]
    assert "Dinner ideas?" in llm.seen[0][-1].content
    assert "explicitly or implicitly" in llm.seen[0][0].content


async def test_a_memory_is_shown_as_a_statement() -> None:
    """The extractor's "is vegetarian" reaches the LLM as the statement its GRPO data were written in."""
    llm = FakeLLM("vegetarian")
    [chosen] = await LLMSelector(llm).select("Dinner ideas?", memories("is vegetarian"))
    assert chosen.memory.text == "is vegetarian" and chosen.relevant
    assert "User attribute: The user is vegetarian.\n" in llm.seen[0][-1].content


async def test_unparsable_answer_is_not_relevant() -> None:
    out = await LLMSelector(FakeLLM("nothing", garbled_word="cat")).select("Q?", memories("The user has a cat."))
    assert out[0].relevant is False
    assert out[0].score == 0.5


async def test_no_memories_no_requests() -> None:
    llm = FakeLLM("x")
    assert await LLMSelector(llm).select("Q?", []) == []
    assert llm.calls == 0


async def test_requests_are_concurrent_and_bounded() -> None:
    llm = FakeLLM("x")
    await LLMSelector(llm, max_concurrency=4).select("Q?", memories(*[f"fact {i}" for i in range(12)]))
    assert llm.calls == 12
    assert 1 < llm.max_in_flight <= 4
