"""Pairs from Dialogue NLI (contradictions) and PersonaExt (triples and their broadenings).

DNLI's contradicting replies put the attribute's own words in the user's turn next to a
negation ("I do not have a car"), the case a word-overlap check gets wrong. PersonaExt's
(utterance, relation, tail) triples give clean statement/broadening pairs beyond MSC.
"""

from __future__ import annotations

import random

from verifier.broaden import broaden
from verifier.pairs import (
    KIND_CONTRADICTION,
    KIND_OVERGENERALIZATION,
    KIND_SUPPORTED,
    SUPPORTED,
    UNSUPPORTED,
    Pair,
    vary_form,
)
from verifier.snippet import format_snippet
from verifier.sources import DnliItem, Triplet
from verifier.triples import render, tail_is_said
from verifier.words import content_words

# Replies per DNLI item: items repeat the same persona with different prefixes, so a few
# replies each keep one persona from dominating.
DNLI_REPLIES_PER_ITEM = 2


def dnli_pairs(item: DnliItem, group: str, rng: random.Random) -> list[Pair]:
    """The persona sentence behind the item's triple, against replies that contradict it."""
    attribute = _persona_sentence(item)
    if attribute is None:
        return []
    replies = rng.sample(item.contradicting, min(DNLI_REPLIES_PER_ITEM, len(item.contradicting)))
    pairs = []
    for reply in replies:
        turns = [("other", item.context), ("user", reply)] if item.context else [("user", reply)]
        pairs.append(
            Pair(format_snippet(turns), vary_form(attribute, rng), UNSUPPORTED, KIND_CONTRADICTION, "dnli", group)
        )
    return pairs


def _persona_sentence(item: DnliItem) -> str | None:
    """The persona sentence that shares most words with the triple's tail (None if none does)."""
    tail = content_words(item.triple[2])
    scored = [(len(tail & content_words(p)), p) for p in item.persona]
    best_score, best = max(scored, default=(0, ""))
    return best if best_score else None


def personaext_pairs(triplet: Triplet, group: str, rng: random.Random, held_out_share: float) -> list[Pair]:
    """The rendered triple (supported) and a broadening of it (overgeneralization)."""
    if not tail_is_said(triplet.tail, triplet.utterance):
        return []  # the annotation is not grounded in the words: not a safe positive
    statement = render(triplet.relation, triplet.tail)
    if statement is None:
        return []
    snippet = format_snippet([("user", triplet.utterance)])
    pairs = [Pair(snippet, vary_form(statement, rng), SUPPORTED, KIND_SUPPORTED, "personaext", group)]
    broadened = broaden(statement, rng, held_out=rng.random() < held_out_share)
    if broadened is not None:
        text, template = broadened
        pairs.append(
            Pair(snippet, vary_form(text, rng), UNSUPPORTED, KIND_OVERGENERALIZATION, "personaext", group, template)
        )
    return pairs
