"""What the assistant says about itself, and what the user asks to have written for someone else, is not
about the user: a real model run (the embedded tuned extractor behind the worker's grounding and gate) stores no
memory of it."""

from __future__ import annotations

import pytest

from memory.conversations import Conversation
from memory.llm import LLMError
from memory.llm.embedded import EmbeddedLLM
from service.wiring import Components
from tests.worker.harness import WatchedLLM, worker_with

pytestmark = pytest.mark.integration

TENANT = "acme:lena"
CONVERSATION = Conversation.model_validate(
    {
        "user_id": "lena",
        "conversation_id": "c1",
        "messages": [
            {"role": "user", "content": "Can you help me with something?"},
            {"role": "assistant", "content": "As a professional chess player myself, I love a challenge. Go ahead!"},
            {
                "role": "user",
                "content": "Write a cover letter for my friend who has 5 years of marketing experience.",
            },
            {
                "role": "assistant",
                "content": "Dear hiring manager, I bring 5 years of marketing experience and a passion for chess.",
            },
        ],
    }
)
NOT_ABOUT_THE_USER = ("chess", "marketing", "marketer")


async def test_assistant_traits_and_a_letter_for_a_friend_become_no_memory(components: Components, llm: EmbeddedLLM):
    await components.conversations.append(TENANT, CONVERSATION)
    [(_, raw)] = await components.redis.xrange(components.settings.stream_key)
    watched = WatchedLLM(llm)
    try:
        outcome = await worker_with(components, watched).process({k.decode(): v.decode() for k, v in raw.items()})
    except LLMError as exc:  # in service the entry would be retried, then dead-lettered: nothing checked here
        pytest.fail(f"the extraction itself failed, so nothing was checked: {exc}")

    assert outcome == "stored"
    print("model answered:", watched.answers)  # shown with -rP: what the untuned or tuned extractor proposed
    page = await components.store.page(TENANT, limit=200)
    leaked = [m.text for m in page.memories if any(word in m.text.casefold() for word in NOT_ABOUT_THE_USER)]
    assert leaked == [], f"stored {leaked}; the model answered {watched.answers}"
    user_turns = {turn for turn, _ in CONVERSATION.user_turns()}
    for memory in page.memories:
        assert all(set(e.turn_ids) <= user_turns for e in memory.evidence), memory
