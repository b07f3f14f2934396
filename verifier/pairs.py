"""A verifier example: does this snippet support this attribute about the user?"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

from verifier.broaden import HELD_OUT
from verifier.statements import HELD_OUT_ANTONYMS, third_person
from verifier.words import overlap_share

SUPPORTED = 1
UNSUPPORTED = 0

# Example kinds: the positive, and one negative kind per failure mode in the paper's error
# analysis (overgeneralization 53.9%, missing evidence 20.3%, task-context confusion 16.1%)
# plus contradiction.
KIND_SUPPORTED = "supported"
KIND_MISSING = "missing_evidence"
KIND_OTHER_SPEAKER = "other_speaker"
KIND_OVERGENERALIZATION = "overgeneralization"
KIND_CONTRADICTION = "contradiction"
KIND_TASK_CONTEXT = "task_context"  # other speaker, where the other speaker is an assistant deliverable
NEGATIVE_KINDS = (KIND_MISSING, KIND_OTHER_SPEAKER, KIND_TASK_CONTEXT, KIND_OVERGENERALIZATION, KIND_CONTRADICTION)

# FINDINGS.md: a "missing" or "other speaker" negative whose attribute is already half said in
# the user's own turn is probably supported after all; such pairs are dropped, not mislabelled.
MAX_NEGATIVE_OVERLAP = 0.5

# Share of attributes rewritten in the third person ("Likes to read.", "The user likes to read."),
# because the extractor may write memories that way; drawn independently of the label.
THIRD_PERSON_SHARE = 0.3


@dataclass(frozen=True)
class Pair:
    snippet: str
    attribute: str
    label: int  # SUPPORTED or UNSUPPORTED
    kind: str
    source: str  # msc | msc+synthetic | dnli | personaext
    group: str  # the dialogue (speaker pair) it came from: the unit of the train/val split
    template: str = ""  # the broadening template's id, or the antonym's for a flipped preference

    @property
    def report_kind(self) -> str:
        """The kind as the evaluation reports it: held-out templates and antonyms apart from seen ones."""
        if self.kind == KIND_OVERGENERALIZATION:
            return f"{self.kind} ({'held-out' if self.template in HELD_OUT else 'seen'} templates)"
        if self.kind == KIND_CONTRADICTION and self.template:
            return f"{self.kind} ({'held-out' if self.template in HELD_OUT_ANTONYMS else 'seen'} antonyms)"
        return self.kind

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def looks_supported(attribute: str, user_text: str) -> bool:
    return overlap_share(attribute, user_text) >= MAX_NEGATIVE_OVERLAP


def vary_form(attribute: str, rng: random.Random) -> str:
    """Sometimes rewrite a first-person attribute in the third person, as an extractor might."""
    if rng.random() >= THIRD_PERSON_SHARE:
        return attribute
    return third_person(attribute, with_subject=rng.random() < 0.5) or attribute
