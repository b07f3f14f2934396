"""The verifier gate inside the worker, with the real int8 ONNX verifier, real Redis and the real store: an
attribute only the assistant's turn supports is sent back once, then dropped or stored as revised; the
supported one beside it is stored with its score.

The extraction model is scripted here on purpose: what is under test is what the gate does with a given
proposal (the real model's proposals are covered by test_grounding_real_model.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from memory.conversations import Conversation
from memory.llm import ChatMessage, Completion
from memory.phrasing import as_statement
from service.wiring import Components
from tests.worker.harness import worker_with
from verifier.refine import VerifyAndRefine
from verifier.snippet import format_snippet

pytestmark = pytest.mark.integration

TENANT = "acme:noa"
CONVERSATION = Conversation.model_validate(
    {
        "user_id": "noa",
        "conversation_id": "c1",
        "messages": [
            {"role": "assistant", "content": "As a professional chess player, I travel to a tournament every month."},
            {"role": "user", "content": "Cool. I mostly play board games with my kids on weekends."},
        ],
    }
)
CHESS = {"statement": "is a professional chess player", "kind": "profile", "evidence_turns": [1], "confidence": 0.9}
BOARD_GAMES = {"statement": "plays board games with their kids", "evidence_turns": [1], "confidence": 0.9}


class ProposingLLM:
    """Proposes the chess claim with the user's turn as evidence, and answers the revision request as told."""

    model_name = "proposing"

    def __init__(self, revision: list[dict[str, Any]]) -> None:
        self.revision = revision
        self.revision_requests: list[str] = []

    async def complete(self, messages: list[ChatMessage], **_: Any) -> Completion:
        if "A previous answer proposed" in messages[-1].content:
            self.revision_requests.append(messages[-1].content)
            return Completion(text=json.dumps({"attributes": self.revision}))
        return Completion(text=json.dumps({"attributes": [CHESS, BOARD_GAMES]}))

    async def aclose(self) -> None:
        return None


async def stored(components: Components) -> dict[str, float | None]:
    page = await components.store.page(TENANT, limit=50)
    return {m.text: m.verifier_score for m in page.memories}


@pytest.mark.parametrize(
    ("revision", "expected"),
    [
        ([CHESS], {"plays board games with their kids"}),  # insists: dropped
        ([{**CHESS, "statement": "has kids"}], {"plays board games with their kids", "has kids"}),
    ],
    ids=["still-unsupported-is-dropped", "revision-is-stored"],
)
async def test_an_assistant_only_attribute_is_refined_or_dropped(
    components: Components, revision: list[dict[str, Any]], expected: set[str]
):
    assert isinstance(components.gate, VerifyAndRefine), "the committed verifier must be wired"
    await components.conversations.append(TENANT, CONVERSATION)
    [(_, raw)] = await components.redis.xrange(components.settings.stream_key)
    llm = ProposingLLM(revision)

    outcome = await worker_with(components, llm).process({k.decode(): v.decode() for k, v in raw.items()})

    assert outcome == "stored"
    assert len(llm.revision_requests) == 1, "exactly the flagged attribute goes back, once"
    assert "professional chess player" in llm.revision_requests[0]
    memories = await stored(components)
    assert set(memories) == expected
    assert not any("chess" in text for text in memories)
    assert all(score is not None and components.gate.verifier.supported(score) for score in memories.values())
    # each is stored with the vector the selector scores: its text as a statement ("The user has kids.")
    for memory in (await components.store.page(TENANT, limit=50)).memories:
        (statement,) = await components.embed([as_statement(memory.text)])
        assert memory.statement_embedding == pytest.approx(statement, abs=1e-5), memory.text


GRILLING = Conversation.model_validate(
    {
        "user_id": "noa",
        "conversation_id": "c2",
        "messages": [
            {"role": "assistant", "content": "Any plans for the weekend?"},
            {"role": "user", "content": "I love grilling, especially in the summer with my family."},
        ],
    }
)
# The model scores this one above its threshold (0.89; "dislikes grilling" alone it catches, 0.43).
FLIPPED = {
    "statement": "dislikes grilling in the summer",
    "kind": "preference",
    "evidence_turns": [1],
    "confidence": 0.9,
}


class FlippingLLM(ProposingLLM):
    """Proposes the user's preference the wrong way round."""

    async def complete(self, messages: list[ChatMessage], **kwargs: Any) -> Completion:
        if "A previous answer proposed" in messages[-1].content:
            return await super().complete(messages, **kwargs)
        return Completion(text=json.dumps({"attributes": [FLIPPED]}))


@pytest.mark.parametrize(
    ("revision", "expected"),
    [
        ([FLIPPED], set()),
        ([{**FLIPPED, "statement": "loves grilling in the summer"}], {"loves grilling in the summer"}),
    ],
    ids=["insisting-is-dropped", "the-user's-way-is-stored"],
)
async def test_a_preference_stated_the_other_way_round_goes_back(
    components: Components, revision: list[dict[str, Any]], expected: set[str]
) -> None:
    """The model alone lets the flip through against "I love grilling, especially in the summer" (docs/verifier.md);
    the gate reads the words too."""
    assert isinstance(components.gate, VerifyAndRefine)
    snippet = format_snippet([(m.role, m.content) for m in GRILLING.messages])
    [model_only] = components.gate.verifier.score([(snippet, FLIPPED["statement"])])
    assert components.gate.verifier.supported(model_only), "the model now catches the flip: see docs/verifier.md"
    await components.conversations.append(TENANT, GRILLING)
    [(_, raw)] = await components.redis.xrange(components.settings.stream_key)
    llm = FlippingLLM(revision)

    outcome = await worker_with(components, llm).process({k.decode(): v.decode() for k, v in raw.items()})

    assert outcome == "stored"
    assert len(llm.revision_requests) == 1 and "say the opposite" in llm.revision_requests[0]
    assert set(await stored(components)) == expected
