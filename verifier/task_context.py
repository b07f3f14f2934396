"""Task-context negatives: first-person text the assistant wrote *for* the user.

The paper's third failure mode (16.1% of problematic attributes): a cover letter about
"5 years of marketing" that the assistant drafted is not evidence about the user. MSC has
no assistant turns, so these are synthesized: first-person statements of another MSC
speaker are placed inside an assistant deliverable (cover letter, bio, email, ...), next to
a user turn. The user turn is either a real MSC utterance, whose own statement stays a
supported positive (so a deliverable in the snippet is not itself a cue), or a bare
acknowledgement, as in a chat where the user only says "thanks".
"""

from __future__ import annotations

import random

from verifier.pairs import KIND_SUPPORTED, KIND_TASK_CONTEXT, SUPPORTED, UNSUPPORTED, Pair, looks_supported, vary_form
from verifier.snippet import format_snippet
from verifier.sources import Dialogue

DELIVERABLES = (
    'Here is your cover letter: "Dear hiring manager, {content} I would love to join your team."',
    "Sure! Here's a short bio you can use: {content}",
    "Draft email: Hi all, a quick introduction. {content} Best regards.",
    "Here's a first-person story, as you asked: {content} The end.",
    "Example answer for your interview: {content}",
    "Here is a dating profile you could post: {content}",
    "Translation: {content}",
    "Here's the speech for your friend's wedding: {content} Cheers!",
    "Sample LinkedIn summary: {content}",
    "Here is the character description for your novel: {content}",
)
ACKNOWLEDGEMENTS = (
    "Thanks, that looks great.",
    "Perfect, can you make it a bit shorter?",
    "ok",
    "Can you make it sound more formal?",
    "Nice, thank you!",
    "Hmm, not quite what I wanted. Try again?",
    "Great, I'll send it tonight.",
    "Could you add a closing line?",
)
# The last three deliverables are never used in training: val also draws from them, so the
# task-context recall includes frames the model has not seen.
TRAIN_DELIVERABLES = DELIVERABLES[:-3]

# Share of revealing MSC utterances that also get a deliverable-plus-utterance snippet, and of
# those, the share whose user turn is replaced by an acknowledgement.
TASK_CONTEXT_SHARE = 0.12
ACKNOWLEDGEMENT_SHARE = 0.3


def task_context_pairs(dialogue: Dialogue, donors: list[str], rng: random.Random, training: bool) -> list[Pair]:
    """Deliverable + user turn snippets for some revealing turns of `dialogue`.

    `donors` are first-person statements from other speaker pairs of the same split, so no
    statement crosses the train/val line.
    """
    frames = TRAIN_DELIVERABLES if training else DELIVERABLES
    pairs: list[Pair] = []
    for turn in dialogue.turns:
        if not turn.persona or rng.random() >= TASK_CONTEXT_SHARE:
            continue
        content = rng.sample(donors, min(len(donors), rng.randint(2, 3)))
        deliverable = rng.choice(frames).format(content=" ".join(content))
        acknowledged = rng.random() < ACKNOWLEDGEMENT_SHARE
        user = rng.choice(ACKNOWLEDGEMENTS) if acknowledged else turn.text
        snippet = format_snippet([("assistant", deliverable), ("user", user)])
        candidates = [s for s in content if not looks_supported(s, user)]
        if candidates:
            attribute = vary_form(rng.choice(candidates), rng)
            pairs.append(Pair(snippet, attribute, UNSUPPORTED, KIND_TASK_CONTEXT, "msc+synthetic", dialogue.group))
        if not acknowledged:
            attribute = vary_form(rng.choice(turn.persona), rng)
            pairs.append(Pair(snippet, attribute, SUPPORTED, KIND_SUPPORTED, "msc+synthetic", dialogue.group))
    return pairs
