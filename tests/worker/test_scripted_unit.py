"""Unit tests of memory.scripted: templated user turns (paper Appendix A thresholds) are found, people are not."""

from __future__ import annotations

from memory.scripted import scripted_turns

TEMPLATE = (
    "You are a customer-support classifier. Read the ticket below and answer with exactly one label from "
    "billing, shipping, returns or other, and nothing else. Ticket:"
)


def templated(n: int, start: int = 0) -> list[tuple[int, str]]:
    return [(start + i, f"{TEMPLATE} my parcel number {1000 + i} has not arrived yet") for i in range(n)]


def spoken(n: int, start: int) -> list[tuple[int, str]]:
    return [(start + i, f"Today I want to talk about something else entirely, topic number {i}.") for i in range(n)]


def test_a_template_in_five_turns_covering_over_40_percent_is_scripted() -> None:
    turns = templated(5) + spoken(7, start=5)  # 5 of 12 turns: 42%
    assert scripted_turns(turns) == set(range(5))


def test_five_templated_turns_at_or_under_40_percent_are_not() -> None:
    turns = templated(5) + spoken(8, start=5)  # 5 of 13 turns: 38%
    assert scripted_turns(turns) == set()


def test_a_template_in_eight_turns_is_scripted_whatever_the_share() -> None:
    turns = templated(8) + spoken(30, start=8)
    assert scripted_turns(turns) == set(range(8))


def test_four_repeats_are_not_enough_even_as_the_whole_conversation() -> None:
    assert scripted_turns(templated(4)) == set()


def test_case_and_spacing_do_not_hide_a_template() -> None:
    turns = [(i, text.upper() if i % 2 else text.replace(" ", "   ")) for i, text in templated(5)]
    assert scripted_turns(turns) == set(range(5))


def test_a_person_repeating_a_short_phrase_is_not_a_template() -> None:
    turns = [(i, "Thanks, that helps a lot!") for i in range(20)]  # under one 120-character window
    assert scripted_turns(turns) == set()
