"""The committed LoRA adapter on the real SmolLM2-135M, through the worker's Extractor, and the training targets
against the real constrained decoder.

Uses the converted-weights cache the service uses by default (var/models/smollm2); only the first run on a
machine pays for the GGUF conversion.
"""

from __future__ import annotations

import os
from pathlib import Path

import llguidance
import llguidance.hf
import pytest
from transformers import AutoTokenizer

from memory.conversations import Conversation, Message
from memory.extraction import Extractor
from memory.extractor_train import GoldStatement, Window
from memory.llm.embedded import EmbeddedLLM, convert_packaged_gguf
from memory.prompts import extract

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = Path(os.environ.get("HEEDFUL_TEST_SMOLLM2_CACHE", ROOT / "var" / "models" / "smollm2"))
ADAPTER = ROOT / "models" / "extractor"


async def test_tuned_extractor_answers_a_two_turn_conversation() -> None:
    conversation = Conversation(
        user_id="u1",
        conversation_id="c1",
        messages=[
            Message(role="assistant", content="What do you like to do on weekends?"),
            Message(role="user", content="I play the violin in a community orchestra."),
        ],
    )
    llm = EmbeddedLLM(CACHE_DIR, threads=2, adapter_dir=ADAPTER)
    try:
        # Small budget: an answer in the trained shape takes ~50 tokens per statement.
        report = await Extractor(llm, max_tokens=96).extract(conversation)
    finally:
        await llm.aclose()

    assert report.rejected == 0  # parsed, grounded in the user's turn, above the confidence cut
    assert report.candidates
    assert all(c.evidence[0].turn_ids == [1] for c in report.candidates)
    assert any("violin" in c.text for c in report.candidates)


def test_training_targets_are_answers_the_constrained_decoder_accepts() -> None:
    tokenizer = AutoTokenizer.from_pretrained(convert_packaged_gguf(CACHE_DIR))
    grammar = llguidance.LLMatcher.grammar_from_json_schema(extract.json_schema())
    window = Window(
        dialogue_id="d",
        episode="e",
        user="bot_0",
        start=0,
        turns=((0, "user", "I have two jobs and I like to read."),),
        gold=(
            GoldStatement("I have two jobs.", "has two jobs", "profile", (0,)),
            GoldStatement("I like to read.", "likes to read", "preference", (0,)),
        ),
    )
    for target in (window.target(), '{"attributes":[]}'):
        matcher = llguidance.LLMatcher(llguidance.hf.from_tokenizer(tokenizer), grammar, log_level=0)
        tokens = [*tokenizer.encode(target, add_special_tokens=False), tokenizer.eos_token_id]

        assert all(matcher.consume_token(t) for t in tokens), matcher.get_error()
        assert matcher.is_stopped()
