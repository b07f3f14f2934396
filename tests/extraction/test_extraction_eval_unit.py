"""`heedful eval extraction` scoring, driven by a scripted model through the real Extractor, merge and embedder."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from memory.embeddings import Embedder
from memory.extraction_eval import _greedy_pairs, run, score, write_section
from memory.extractor_train import EVAL_END, EVAL_START, GoldStatement, Window
from memory.llm import ChatMessage, Completion, LLMError

ROOT = Path(__file__).resolve().parents[2]

DOGS = Window(
    dialogue_id="d1",
    episode="e1",
    user="bot_0",
    start=0,
    turns=(
        (0, "user", "Hi! I just got back from walking my two dogs."),
        (1, "assistant", "Nice. I am a nurse, so I rarely have time for pets."),
    ),
    gold=(
        GoldStatement("I have two dogs.", "has two dogs", "profile", (0,)),
        GoldStatement("I walk my dogs.", "walks their dogs", "profile", (0,)),
    ),
)
NOTHING = Window(
    dialogue_id="d2",
    episode="e2",
    user="bot_1",
    start=0,
    turns=((0, "assistant", "I am a nurse."), (1, "user", "Do you live near the city?")),
    gold=(),
)


def _item(statement: str, turns: list[int], confidence: float = 0.9) -> dict[str, Any]:
    return {"statement": statement, "kind": "profile", "evidence_turns": turns, "confidence": confidence}


class ScriptedLLM:
    """Answers by the first turn of the conversation it is shown; raises for anything else."""

    model_name = "scripted"

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers

    async def complete(self, messages: list[ChatMessage], **_: Any) -> Completion:
        for marker, answer in self.answers.items():
            if marker in messages[-1].content:
                return Completion(text=answer)
        raise LLMError("structured output cut at max_tokens")

    def stream(self, messages: list[ChatMessage], **_: Any) -> AsyncIterator[str]:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder.load(ROOT / "models" / "embedder")


async def test_scores_what_the_worker_would_store(embedder: Embedder) -> None:
    dogs = [
        _item("has two dogs", [0]),
        _item("is a nurse", [1]),  # the assistant's turn: grounding drops it
        _item("plays the tuba", [0]),  # not in the human statements
        _item("has two dogs", [0], 0.8),  # a repeat: merge folds it into the first
    ]
    llm = ScriptedLLM({"walking my two dogs": json.dumps({"attributes": dogs}), "near the city": '{"attributes":[]}'})

    results = await run(llm, [DOGS, NOTHING], embedder, max_tokens=64)
    metrics = score(results, embedder)

    assert sorted(text for text, _ in results[0].memories) == ["has two dogs", "plays the tuba"]
    assert metrics["memories"] == 2 and metrics["human_statements"] == 2
    assert metrics["matched"] == 1
    assert metrics["precision"] == pytest.approx(0.5) and metrics["recall"] == pytest.approx(0.5)
    assert metrics["evidence_in_user_turn"] == pytest.approx(3 / 4)
    assert metrics["matched_on_gold_turn"] == 1.0
    assert metrics["empty_kept_empty"] == 1.0
    assert metrics["duplicates_after_merge"] == 0.0
    assert metrics["failed"] == 0


async def test_a_failed_call_stores_nothing_and_is_counted(embedder: Embedder) -> None:
    results = await run(ScriptedLLM({}), [DOGS], embedder, max_tokens=64)
    metrics = score(results, embedder)

    assert metrics["failed"] == 1
    assert metrics["memories"] == 0 and metrics["recall"] == 0.0


def test_matching_is_one_to_one() -> None:
    similarity = np.array([[0.9, 0.8], [0.85, 0.1]])

    assert _greedy_pairs(similarity, 0.7) == [(0, 0)]
    assert _greedy_pairs(similarity, 0.95) == []


def test_section_is_replaced_in_place(tmp_path: Path) -> None:
    doc = tmp_path / "evaluation.md"
    doc.write_text("# Evaluation\n\nSelector numbers.\n")

    write_section(doc, "first table")
    write_section(doc, "second table")

    text = doc.read_text()
    assert text.count(EVAL_START) == 1 and text.count(EVAL_END) == 1
    assert "second table" in text and "first table" not in text
    assert text.startswith("# Evaluation\n\nSelector numbers.\n")


def test_committed_adapter_is_small_and_servable_by_vllm() -> None:
    adapter = ROOT / "models" / "extractor"
    config = json.loads((adapter / "adapter_config.json").read_text())

    assert (adapter / "adapter_model.safetensors").stat().st_size < 30 * 1024 * 1024
    assert config["r"] <= 8  # vLLM CPU: --max-lora-rank 8
    assert (adapter / "README.md").is_file()


async def test_the_verifier_gate_keeps_what_the_user_said_and_counts_the_rest(embedder: Embedder) -> None:
    """With the real ONNX verifier, as in the worker: an attribute the user's turn does not support is revised
    once or dropped, never stored as proposed; what the user said is stored."""
    from verifier.refine import VerifyAndRefine
    from verifier.runtime import Verifier

    dogs = [_item("has two dogs", [0]), _item("plays the tuba in an orchestra", [0])]
    llm = ScriptedLLM({"walking my two dogs": json.dumps({"attributes": dogs})})
    gate = VerifyAndRefine(Verifier.load(ROOT / "models" / "verifier"))

    results = await run(llm, [DOGS], embedder, max_tokens=64, gate=gate)
    metrics = score(results, embedder)

    stored = [text for text, _ in results[0].memories]
    assert "has two dogs" in stored
    assert "plays the tuba in an orchestra" not in stored
    assert metrics["verifier_refined"] + metrics["verifier_dropped"] == 1
    assert metrics["proposed"] == 2, "the gate's revision answers are not counted as proposals"
