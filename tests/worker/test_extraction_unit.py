"""Unit tests of memory.extraction: model output parsed item by item, evidence taken only from user turns.

A scripted LLM stands in for the model here: what is tested is what happens to its answer."""

from __future__ import annotations

import json
from typing import Any

from memory.conversations import Conversation
from memory.extraction import MIN_CONFIDENCE, Extractor, ground, parse, salvage, task_requests
from memory.llm import ChatMessage, Completion, TruncatedJSON
from memory.prompts.extract import ExtractedAttribute

TEMPLATE = (
    "You are a customer-support classifier. Read the ticket below and answer with exactly one label from "
    "billing, shipping, returns or other, and nothing else. Ticket:"
)

CONVERSATION = Conversation.model_validate(
    {
        "user_id": "u1",
        "conversation_id": "c1",
        "messages": [
            {"role": "system", "content": "Be helpful."},
            {"role": "user", "content": "I teach maths at a secondary school."},
            {"role": "assistant", "content": "As a keen sailor myself, I love that!"},
            {"role": "user", "content": "I also keep bees on weekends."},
        ],
    }
)


def attribute(statement: str, turns: list[int], confidence: float = 0.9) -> ExtractedAttribute:
    return ExtractedAttribute(statement=statement, evidence_turns=turns, confidence=confidence)


def test_a_malformed_item_is_dropped_alone() -> None:
    raw = json.dumps(
        {
            "attributes": [
                {"statement": "teaches maths", "evidence_turns": [1], "confidence": 0.9},
                {"statement": "keeps bees", "evidence_turns": [3], "confidence": 7},  # confidence out of range
                {"evidence_turns": [3], "confidence": 0.8},  # no statement
                "likes tea",  # not an object
                {"statement": "keeps bees", "kind": "profile", "evidence_turns": [3], "confidence": 0.8},
            ]
        }
    )
    good, bad = parse(raw)
    assert [(a.statement, a.kind) for a in good] == [("teaches maths", "preference"), ("keeps bees", "profile")]
    assert bad == 3


def test_json_wrapped_in_prose_is_repaired_and_garbage_is_one_rejection() -> None:
    good, bad = parse(
        'Sure! Here it is: {"attributes": [{"statement": "keeps bees", "confidence": 0.8}]} Hope it helps'
    )
    assert [a.statement for a in good] == ["keeps bees"] and bad == 0
    assert parse("I cannot help with that.") == ([], 1)
    assert parse('{"attributes": "none"}') == ([], 0)


def test_a_list_cut_at_max_tokens_keeps_its_complete_items() -> None:
    whole = '{"statement": "teaches maths", "evidence_turns": [1], "confidence": 0.9}'
    cut = '{"attributes": [' + whole + ", " + whole.replace("maths", "physics") + ', {"statement": "keeps b'
    good, bad = salvage(cut)
    assert [a.statement for a in good] == ["teaches maths", "teaches physics"]
    assert bad == 1, "the item cut in half counts as one malformed item"
    assert salvage('{"attributes": [{"statement": "x"') == ([], 1)
    assert salvage("no json at all") == ([], 1)


class TruncatingLLM:
    """Stops its JSON mid-item, as a model that repeats itself until max_tokens does."""

    model_name = "truncating"

    async def complete(self, messages: list[ChatMessage], **_: Any) -> Completion:
        item = '{"statement": "keeps bees", "evidence_turns": [3], "confidence": 0.8}'
        raise TruncatedJSON("cut at max_tokens", '{"attributes": [' + item + ", " + item + ', {"stat')


async def test_the_extractor_keeps_what_a_truncated_answer_completed() -> None:
    report = await Extractor(TruncatingLLM()).extract(CONVERSATION)  # type: ignore[arg-type]
    assert [c.text for c in report.candidates] == ["keeps bees", "keeps bees"], "duplicates are merge's job"
    assert report.rejected == 1


def test_a_misnumbered_citation_is_re_anchored_to_the_user_turn_that_says_it() -> None:
    misnumbered = ground(attribute("keeps bees", [2]), CONVERSATION, "c1")  # turn 2 is the assistant's
    assert misnumbered is not None
    assert [(e.turn_ids, e.quote) for e in misnumbered.evidence] == [([3], "I also keep bees on weekends.")]
    assert ground(attribute("teaches secondary school maths", [0]), CONVERSATION, "c1") is not None

    # the assistant's own claims share no words with any user turn: still nothing to anchor them to
    assert ground(attribute("is a keen sailor", [2]), CONVERSATION, "c1") is None
    # a statement only partly in the user's words stays unsupported
    assert ground(attribute("keeps bees and sells honey at markets", [2]), CONVERSATION, "c1") is None
    # the cited assistant turn says it as fully as the user's: the model took it from the assistant
    echoed = CONVERSATION.model_copy(deep=True)
    echoed.messages[2].content = "Keeping bees on weekends sounds lovely!"
    assert ground(attribute("keeps bees on weekends", [2]), echoed, "c1") is None
    # a citation of no turn at all is not a numbering slip
    assert ground(attribute("keeps bees", [9]), CONVERSATION, "c1") is None


async def test_requests_to_write_for_someone_are_never_evidence() -> None:
    turns = [
        "Write a cover letter for my friend who has 5 years of marketing experience.",
        "Hi! Could you please translate 'I am a doctor' into German?",
        "can you proofread this: I have lived in Rome for ten years",
        "I write cover letters for a living.",
        "Please remember I am vegetarian.",
        "Editing photos is my hobby.",
    ]
    assert task_requests(list(enumerate(turns))) == {0, 1, 2}

    letter = Conversation.model_validate(
        {"user_id": "u1", "conversation_id": "c9", "messages": [{"role": "user", "content": turns[0]}]}
    )
    llm = ScriptedLLM(
        {"attributes": [{"statement": "has 5 years of marketing experience", "evidence_turns": [0], "confidence": 0.9}]}
    )
    report = await Extractor(llm).extract(letter)  # type: ignore[arg-type]
    assert report.candidates == [] and report.rejected == 1
    flagged = ground(attribute("writes cover letters", [0]), letter, "c9")
    assert flagged is not None, "without the task filter the turn would support it"
    assert await Extractor(llm).revise(flagged, letter, "not supported") is None, "nor in a revision"  # type: ignore[arg-type]


def test_evidence_comes_only_from_user_turns() -> None:
    mixed = ground(attribute("teaches maths", [1, 2]), CONVERSATION, "c1")
    assert mixed is not None
    assert [e.turn_ids for e in mixed.evidence] == [[1]]
    assert mixed.evidence[0].quote == "I teach maths at a secondary school."
    assert "sailor" not in mixed.evidence[0].quote

    assert ground(attribute("is a keen sailor", [2]), CONVERSATION, "c1") is None, "assistant turn only"
    assert ground(attribute("is helpful", [0]), CONVERSATION, "c1") is None, "system turn only"
    assert ground(attribute("likes sailing", []), CONVERSATION, "c1") is None, "no evidence at all"
    assert ground(attribute("likes sailing", [9]), CONVERSATION, "c1") is None, "a turn that does not exist"
    assert ground(attribute("keeps bees", [3]), CONVERSATION, "c1", skip={3}) is None, "a templated turn"


class ScriptedLLM:
    """Answers every extraction call with the same JSON."""

    model_name = "scripted"

    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer
        self.prompts: list[str] = []

    async def complete(self, messages: list[ChatMessage], **_: Any) -> Completion:
        self.prompts.append(messages[-1].content)
        return Completion(text=json.dumps(self.answer))


async def test_extractor_keeps_grounded_confident_attributes_and_counts_the_rest() -> None:
    llm = ScriptedLLM(
        {
            "attributes": [
                {"statement": "teaches maths", "evidence_turns": [1], "confidence": 0.9},
                {"statement": "is a keen sailor", "evidence_turns": [2], "confidence": 0.9},
                {"statement": "might like honey", "evidence_turns": [3], "confidence": MIN_CONFIDENCE - 0.1},
                {"statement": "x", "evidence_turns": [3], "confidence": 0.9},  # too short to be a statement
            ]
        }
    )
    report = await Extractor(llm).extract(CONVERSATION)  # type: ignore[arg-type]
    assert [c.text for c in report.candidates] == ["teaches maths"]
    assert report.rejected == 3
    assert "Be helpful." not in llm.prompts[0], "the app's system prompt is not the user's words"


async def test_templated_user_turns_are_neither_sent_nor_evidence() -> None:
    turns = [{"role": "user", "content": f"{TEMPLATE} order {i} is late"} for i in range(8)]
    batch = Conversation.model_validate(
        {"user_id": "u1", "conversation_id": "c2", "messages": [*turns, {"role": "user", "content": "I live in Oslo."}]}
    )
    llm = ScriptedLLM(
        {"attributes": [{"statement": "runs a support desk", "evidence_turns": [0, 1], "confidence": 0.9}]}
    )
    report = await Extractor(llm).extract(batch)  # type: ignore[arg-type]
    assert report.candidates == [] and report.scripted_turns == 8
    assert "customer-support classifier" not in llm.prompts[0]
