"""The word-level check for a preference stated the other way round (verifier.polarity)."""

from __future__ import annotations

import pytest

from verifier.polarity import contradicted
from verifier.snippet import format_snippet

LOVES = format_snippet([("assistant", "Any plans?"), ("user", "I love grilling, especially in the summer.")])
HATES = format_snippet([("user", "Honestly I hate grilling, the smoke gets everywhere.")])


@pytest.mark.parametrize(
    "attribute",
    [
        "The user dislikes grilling.",
        "dislikes grilling",
        "The user hates grilling.",
        "The user can't stand grilling.",
        "The user does not enjoy grilling.",
        "The user is not a fan of grilling.",
    ],
)
def test_disliking_what_the_user_loves_is_contradicted(attribute: str) -> None:
    assert contradicted(LOVES, attribute)


@pytest.mark.parametrize(
    "attribute",
    ["The user loves grilling.", "enjoys grilling", "is a big fan of grilling", "is passionate about grilling"],
)
def test_liking_what_the_user_hates_is_contradicted(attribute: str) -> None:
    assert contradicted(HATES, attribute)


@pytest.mark.parametrize(
    ("snippet", "attribute"),
    [
        (LOVES, "The user loves grilling."),  # said the user's way
        (HATES, "The user hates grilling."),
        (HATES, "dislikes the smoke"),  # another thing than the one hated
        (LOVES, "dislikes cooking indoors"),  # nothing said about it
        (format_snippet([("user", "I used to love grilling.")]), "dislikes grilling"),  # not read: no longer held
        (format_snippet([("user", "I like tea more than coffee.")]), "dislikes coffee"),  # comparison: not read
        (format_snippet([("user", "It looks like rain.")]), "dislikes rain"),  # "like" is no verb here
        (format_snippet([("other", "I love grilling.")]), "dislikes grilling"),  # someone else's words
        (format_snippet([("user", "I know you do not like Taylor Swift.")]), "likes Taylor Swift"),
        (format_snippet([("user", "I wish my boyfriend liked hiking.")]), "does not like hiking"),
        (format_snippet([("user", "I like pudding, but it makes me gassy.")]), "dislikes pudding"),  # qualified
        (format_snippet([("user", "I like all music except country.")]), "dislikes country music"),
        (format_snippet([("user", "I love strawberries hate pickles?")]), "dislikes pickles"),  # one thing each
        (  # said both ways: the verifier decides
            format_snippet([("user", "I love grilling."), ("user", "Sometimes I hate grilling.")]),
            "dislikes grilling",
        ),
    ],
)
def test_what_the_words_do_not_contradict_is_left_to_the_verifier(snippet: str, attribute: str) -> None:
    assert not contradicted(snippet, attribute)


def test_running_is_what_the_runner_loves() -> None:
    assert contradicted(format_snippet([("user", "I am preparing for a marathon and love to run.")]), "hates running")


def test_the_thing_must_be_the_same() -> None:
    dogs = format_snippet([("user", "I don't like cats. I love dogs!")])
    assert contradicted(dogs, "likes cats") and contradicted(dogs, "dislikes dogs")
    assert not contradicted(dogs, "likes dogs") and not contradicted(dogs, "dislikes cats")
