"""Unit test of memory.supersede (a scripted LLM stands in for the model: the logic is what is tested)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from memory.llm import ChatMessage, Completion, LLMError
from memory.model import Memory, MemoryStatus
from memory.supersede import supersede_contradicted


class ScriptedLLM:
    model_name = "scripted"

    def __init__(self, verdicts: dict[str, bool | None]) -> None:
        self.verdicts = verdicts
        self.asked: list[str] = []

    async def complete(self, messages: list[ChatMessage], **_: Any) -> Completion:
        old = messages[-1].content.split("\n")[0].removeprefix("OLD: ")
        self.asked.append(old)
        verdict = self.verdicts[old]
        if verdict is None:
            raise LLMError("server down")
        return Completion(text=json.dumps({"contradicts": verdict, "reason": "r"}))


def unit(*xs: float) -> list[float]:
    v = np.array(xs + (0.0,) * (384 - len(xs)), dtype=np.float32)
    return (v / np.linalg.norm(v)).tolist()


async def test_contradicted_neighbour_is_superseded_and_linked() -> None:
    new = Memory.new("t", "started eating fish again", embedding=unit(1, 0.2))
    veg = Memory.new("t", "is vegetarian", embedding=unit(1, 0.6))
    cat = Memory.new("t", "has a cat", embedding=unit(1, 0.9))
    far = Memory.new("t", "plays cello", embedding=unit(0, 0, 1))
    llm = ScriptedLLM({"is vegetarian": True, "has a cat": False, "plays cello": True})
    out = await supersede_contradicted(llm, [new], [veg, cat, far])  # type: ignore[arg-type]
    assert [(m.id, m.status) for m in out] == [(veg.id, MemoryStatus.superseded)]
    assert new.supersedes == [veg.id]
    assert "plays cello" not in llm.asked, "unrelated memories are never sent to the LLM"


async def test_no_verdict_keeps_the_stored_memory() -> None:
    new = Memory.new("t", "lives in Porto", embedding=unit(1, 0.1))
    old = Memory.new("t", "lives in Lisbon", embedding=unit(1, 0.3))
    out = await supersede_contradicted(ScriptedLLM({"lives in Lisbon": None}), [new], [old])  # type: ignore[arg-type]
    assert out == [] and new.supersedes == []
