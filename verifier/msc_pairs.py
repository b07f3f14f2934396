"""Pairs from Multi-Session Chat: each utterance with its own statement, and four kinds of negative.

For an utterance that reveals something (it has a crowdworker `persona_text`), the snippet is
that user turn with the partner's turn before it (the shape the worker sends at run time),
sometimes the user turn alone, sometimes with the user's turn before that too.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from verifier.broaden import broaden
from verifier.pairs import (
    KIND_CONTRADICTION,
    KIND_MISSING,
    KIND_OTHER_SPEAKER,
    KIND_OVERGENERALIZATION,
    KIND_SUPPORTED,
    SUPPORTED,
    UNSUPPORTED,
    Pair,
    looks_supported,
    vary_form,
)
from verifier.snippet import format_snippet
from verifier.sources import Dialogue
from verifier.statements import contradict

# How the snippet around a user turn is cut: (partner turn + user turn) is the run-time shape;
# the others keep the model from relying on there always being exactly one partner turn.
WINDOW_WEIGHTS = {"pair": 0.7, "alone": 0.15, "window": 0.15}
# One negative per positive. Other-speaker was the hardest kind in early experiments and
# overgeneralization the paper's most common failure, so they are drawn more often.
NEGATIVE_WEIGHTS = {
    KIND_MISSING: 1.0,
    KIND_OTHER_SPEAKER: 2.0,
    KIND_OVERGENERALIZATION: 1.3,
    KIND_CONTRADICTION: 0.6,
}
# Share of partner statements that also become an other-speaker negative against the reply
# that follows them, whether or not that reply reveals anything: the run-time case where an
# assistant turn is full of facts and the user only answers "sounds good".
PARTNER_REPLY_SHARE = 0.25
# The contradiction draw's range. A power of two takes the generator through the same steps as
# the randrange(2) it replaced, so adding antonyms left every other pair of a split as it was.
CONTRADICTION_DRAWS = 1 << 16


@dataclass(frozen=True)
class Window:
    turn_ids: tuple[int, ...]
    user_ids: tuple[int, ...]  # the turns in the window spoken by the user


def window_around(dialogue: Dialogue, index: int, rng: random.Random) -> Window:
    shape = rng.choices(list(WINDOW_WEIGHTS), weights=list(WINDOW_WEIGHTS.values()))[0]
    if shape == "alone" or index == 0:
        ids: tuple[int, ...] = (index,)
    elif shape == "window" and index >= 2:
        ids = (index - 2, index - 1, index)
    else:
        ids = (index - 1, index)
    user = dialogue.turns[index].speaker
    return Window(ids, tuple(i for i in ids if dialogue.turns[i].speaker == user))


def pairs_for_dialogue(dialogue: Dialogue, rng: random.Random, held_out_share: float) -> list[Pair]:
    """One positive and one negative per revealing utterance.

    `held_out_share` is the share of overgeneralization negatives built from held-out
    templates, and of preference contradictions built from held-out antonyms: 0 for the
    training split, so those are never trained on.
    """
    pairs = []
    for index, turn in enumerate(dialogue.turns):
        if not turn.persona:
            continue
        window = window_around(dialogue, index, rng)
        snippet = _snippet(dialogue, window)
        statement = rng.choice([s for i in window.user_ids for s in dialogue.turns[i].persona])
        pairs.append(_pair(snippet, vary_form(statement, rng), SUPPORTED, KIND_SUPPORTED, dialogue))
        negative = _negative(dialogue, window, statement, rng, held_out_share)
        if negative is not None:
            kind, attribute, template = negative
            pairs.append(_pair(snippet, vary_form(attribute, rng), UNSUPPORTED, kind, dialogue, template))
    return pairs + _partner_reply_pairs(dialogue, rng)


def _partner_reply_pairs(dialogue: Dialogue, rng: random.Random) -> list[Pair]:
    """Other-speaker negatives: (partner turn + the user's reply, a statement of the partner's)."""
    pairs = []
    for index, turn in enumerate(dialogue.turns[:-1]):
        reply = dialogue.turns[index + 1]
        if not turn.persona or reply.speaker == turn.speaker or rng.random() >= PARTNER_REPLY_SHARE:
            continue
        choice = _unsupported_choice([s for s in turn.persona if s not in reply.persona], reply.text, rng)
        if choice is not None:
            snippet = format_snippet([("other", turn.text), ("user", reply.text)])
            pairs.append(_pair(snippet, vary_form(choice[0], rng), UNSUPPORTED, KIND_OTHER_SPEAKER, dialogue))
    return pairs


def _negative(
    dialogue: Dialogue, window: Window, statement: str, rng: random.Random, held_out_share: float
) -> tuple[str, str, str] | None:
    """(kind, attribute, template id) for one negative, drawn among the kinds this turn allows."""
    user_text = " ".join(dialogue.turns[i].text for i in window.user_ids)
    said = {s for i in window.user_ids for s in dialogue.turns[i].persona}
    in_window = set(window.turn_ids)
    elsewhere = [s for i, t in enumerate(dialogue.turns) if i not in in_window for s in t.persona if s not in said]
    partner = [
        s for i in window.turn_ids if i not in window.user_ids for s in dialogue.turns[i].persona if s not in said
    ]
    options: dict[str, tuple[str, str] | None] = {
        KIND_MISSING: _unsupported_choice(elsewhere, user_text, rng),
        KIND_OTHER_SPEAKER: _unsupported_choice(partner, user_text, rng),
        KIND_OVERGENERALIZATION: broaden(statement, rng, held_out=rng.random() < held_out_share),
        KIND_CONTRADICTION: _contradiction(statement, rng, held_out_share),
    }
    available = [kind for kind, option in options.items() if option is not None]
    if not available:
        return None
    kind = rng.choices(available, weights=[NEGATIVE_WEIGHTS[k] for k in available])[0]
    chosen = options[kind]
    assert chosen is not None  # `available` holds only kinds with an option
    return kind, chosen[0], chosen[1]


def _unsupported_choice(statements: list[str], user_text: str, rng: random.Random) -> tuple[str, str] | None:
    candidates = [s for s in statements if not looks_supported(s, user_text)]
    return (rng.choice(candidates), "") if candidates else None


def _contradiction(statement: str, rng: random.Random, held_out_share: float) -> tuple[str, str] | None:
    draw = rng.randrange(CONTRADICTION_DRAWS)
    return contradict(statement, variant=draw, held_out=draw < held_out_share * CONTRADICTION_DRAWS)


def _snippet(dialogue: Dialogue, window: Window) -> str:
    turns = [("user" if i in window.user_ids else "other", dialogue.turns[i].text) for i in window.turn_ids]
    return format_snippet(turns)


def _pair(snippet: str, attribute: str, label: int, kind: str, dialogue: Dialogue, template: str = "") -> Pair:
    return Pair(snippet, attribute, label, kind, "msc", dialogue.group, template)
