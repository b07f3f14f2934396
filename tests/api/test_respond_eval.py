"""The explicit-mention check behind `heedful eval respond`: what counts as naming a user's memories."""

from __future__ import annotations

from typing import Any

import pytest

from memory.llm import ChatMessage, Completion
from memory.model import Memory
from memory.prompts.respond import DATA_HEADER, NO_BACKGROUND, RULES, system_prompt
from selector import Selection
from service.respond import Plan
from service.respond_eval import (
    Case,
    Planned,
    answer_all,
    changed,
    control_plan,
    explicit_mention,
    render,
    similarity,
    summarize,
)
from service.wiring import Components

PARENT = "The user may be a student, teacher, or parent."
VEGETARIAN = "The user is vegetarian."
FASHION = "The user is interested in fashion or clothing."
IRANIAN = "The user is Iranian."
PIANO = "The user plays the piano in a jazz trio."
DETAIL = "The user is detail-oriented and values precision."
EDUCATED = "The user is likely well-read and educated."


@pytest.mark.parametrize(
    ("answer", "memories", "prompt", "rule"),
    [
        # persona phrases count on their own, whatever the memory says
        ("Given your interest in fashion, start with a capsule wardrobe.", [FASHION], "", "given your"),
        ("As someone who cooks a lot, you will like this.", [VEGETARIAN], "", "as someone who"),
        ("This is a good plan for someone like you.", [PIANO], "", "for someone like you"),
        # cues count when the sentence also carries a memory's distinctive word
        ("Since you're vegetarian, swap the chicken for chickpeas.", [VEGETARIAN], "Dinner idea?", "since you"),
        ("As a parent, you can set the rate with other families.", [PARENT], "Babysitting rates?", "as a ..., you"),
        ("You mentioned your jazz trio, so practise comping.", [PIANO], "How to improve timing?", "you mentioned"),
        ("If you're a teacher, summer is the best time.", [PARENT], "When to travel?", "you're a"),
        # restating the memory's own words to the user, no cue needed
        ("Your piano gigs with the jazz trio will go better.", [PIANO], "How to relax before a show?", "restates"),
        ("Pick pieces you love: clothing and fashion say who you are.", [FASHION], "Packing tips?", "restates"),
        # talking about "the user" in the third person, as the memory statements do
        ("The user is vegetarian and plays jazz piano in a trio.", [PIANO], "Dinner?", "restates"),
        # copying a statement out, whoever it is about
        ("The user is detail-oriented and values precision.", [DETAIL], "Lost screws?", "recites"),
        ("They're likely well-read and educated.", [EDUCATED], "Lost screws?", "recites"),
    ],
)
def test_names_the_memory(answer: str, memories: list[str], prompt: str, rule: str):
    mention = explicit_mention(answer, memories, prompt)
    assert mention is not None and mention.rule == rule


@pytest.mark.parametrize(
    ("answer", "memories", "prompt"),
    [
        # shaped by the memory, never naming it
        ("Try a chickpea curry with spinach and rice; it takes 30 minutes.", [VEGETARIAN], "Dinner idea?"),
        # generic uses of the cue phrases, with no memory word in the sentence
        ("Since you need to boil the water first, start the kettle now.", [VEGETARIAN], "How to make tea?"),
        ("As a rule, you should check local rates.", [PARENT], "Babysitting rates?"),
        ("You mentioned the screws are tiny; use a magnetic tray.", [PIANO], "Lost laptop screws?"),
        # the prompt's own topic is answering, not name-dropping
        ("Fashion trends change, so pick clothing you will wear often.", [FASHION], "Fashion clothing tips?"),
        # memory words without addressing the user
        ("Piano jazz trios usually rehearse weekly.", [PIANO], "How often do bands rehearse?"),
        # only one of a memory's three distinctive words, no cue
        ("Your trio sounds fun; keep rehearsing.", [PIANO], "Tips?"),
        # the memory shaping the content without naming anyone: short runs of its words are the point
        ("Akihabara has manga and anime shops.", ["The user is interested in manga and anime."], "Tokyo?"),
        ("Keep a checklist: precision matters in every detail of the repair.", [DETAIL], "Lost screws?"),
        # template words of profile statements say nothing about the user
        ("If you're interested, here are more options.", [FASHION], "Tips?"),
        ("", [VEGETARIAN], "Dinner?"),
    ],
)
def test_quiet_answers_pass(answer: str, memories: list[str], prompt: str):
    assert explicit_mention(answer, memories, prompt) is None


def test_no_memories_only_persona_phrases_count():
    assert explicit_mention("Since you're vegetarian, skip the ham.", [], "") is None
    assert explicit_mention("Given your schedule, cook on Sunday.", [], "") is not None


def test_reports_the_sentence_and_memory():
    mention = explicit_mention("Here is a recipe. Since you are vegetarian, use tofu.", [PIANO, VEGETARIAN], "Recipe?")
    assert mention is not None
    assert mention.sentence == "since you are vegetarian, use tofu." and mention.memory == VEGETARIAN


@pytest.mark.parametrize(
    "answer",
    [
        "GIVEN YOUR love of fashion, go bold.",  # case
        "Given\u00a0your love of fashion, go bold.",  # no-break space
        "Since you\u2019re vegetarian, use tofu.",  # typographic apostrophe
        "Ｇｉｖｅｎ ｙｏｕｒ love of fashion, go bold.",  # fullwidth letters (NFKC)
        "Über alles: since you're vegetarian, use tofu.",  # non-ASCII text before the cue
    ],
)
def test_unicode_variants_are_caught(answer: str):
    assert explicit_mention(answer, [FASHION, VEGETARIAN], "What should I do?") is not None


def test_unicode_memory_words_match_across_forms():
    cafe = "The user runs a small café in Tehran."
    assert explicit_mention("Since your CAFÉ is small, keep the menu short.", [cafe], "Menu ideas?") is not None
    decomposed = "Since your cafe\u0301 in Tehran is small, keep the menu short."  # e + combining accent
    assert explicit_mention(decomposed, [cafe], "Menu ideas?") is not None
    assert explicit_mention("Since you run the café, open at 7.", [IRANIAN], "Opening hours?") is None


def test_chinese_sentence_end_splits_sentences():
    answer = "这是答案。 Since you're vegetarian, use tofu."
    mention = explicit_mention(answer, [VEGETARIAN], "Dinner?")
    assert mention is not None and mention.sentence.startswith("since you're")


def test_changed_ignores_case_and_spacing_only():
    assert not changed("Use  tofu.\n", "use tofu.")
    assert changed("Use tofu.", "Use chicken.")
    assert similarity("a b c d", "a b c d") == 1.0 and similarity("a b", "c d") == 0.0


# --- the control: the personalized system prompt with an empty background ------------------------------


def plan_with(statements: list[str], prompt: str) -> Plan:
    memories = [Memory.new("eval:0", t) for t in statements]
    return Plan(
        response_id="resp_" + "0" * 32,
        used=[Selection(m, 0.9, True) for m in memories],
        messages=[
            ChatMessage(role="system", content=system_prompt(statements)),
            ChatMessage(role="user", content=prompt),
        ],
        considered=len(memories),
    )


def test_control_has_the_rules_and_an_empty_background():
    generic = plan_with([], "Dinner idea?")
    control = control_plan(generic)
    assert generic.system_prompt == NO_BACKGROUND
    assert control.system_prompt == f"{RULES}\n{DATA_HEADER}\n[]"
    assert control.messages[1:] == generic.messages[1:] and not control.used


class ScriptedGenerator:
    """Answers by system prompt: memories in the background, an empty background, or the one-line prompt."""

    model_name = "scripted"

    def __init__(self) -> None:
        self.system_prompts: list[str] = []

    async def complete(self, messages: list[ChatMessage], **_: Any) -> Completion:
        system = messages[0].content
        self.system_prompts.append(system)
        if system == NO_BACKGROUND:
            return Completion(text="Try a bean chili with rice; it takes thirty minutes and feeds four people.")
        if system.endswith("\n[]"):
            return Completion(text="Try a lentil soup with bread; it takes thirty minutes and feeds four people.")
        return Completion(
            text="Since you're vegetarian, try a lentil soup with bread tonight, ready in thirty minutes."
        )

    async def aclose(self) -> None: ...


@pytest.mark.integration
async def test_each_prompt_is_answered_three_ways_and_reported(components: Components):
    prompt = "Dinner idea?"
    used = ["The user is vegetarian."]
    planned = [
        Planned(
            Case("p1", prompt, used),
            plan_with(used, prompt),
            plan_with([], prompt),
            control_plan(plan_with([], prompt)),
        )
    ]
    generator = ScriptedGenerator()
    answered = await answer_all(components, generator, planned, max_tokens=16)  # type: ignore[arg-type]
    assert len(generator.system_prompts) == 3 and len(set(generator.system_prompts)) == 3

    summary = summarize(planned, answered)
    personalized, control, generic = (summary["variants"][v] for v in ("personalized", "control", "generic"))
    assert personalized["explicit_mention"] == 1 and control["explicit_mention"] == generic["explicit_mention"] == 0
    assert personalized["changed"] == control["changed"] == 1
    assert summary["changed_vs_control"] == 1 and 0 < summary["mean_similarity_to_control"] < 1

    doc = {
        "backend": "classifier",
        "max_tokens": 16,
        "results": [{"generator": "embedded", "model": "scripted", **summary}],
    }
    table = render({**doc, "reference": {"answers": 0, "explicit_mention_rate": None, "generic_mention_rate": None}})
    assert "| embedded (scripted) | rules + empty background (control) |" in table
    assert "what the memories alone change: 1/1 answers changed" in table
