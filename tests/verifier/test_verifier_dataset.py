"""The verifier's training pairs: split by dialogue, every negative kind present, labels right."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from verifier.baselines import user_text
from verifier.broaden import HELD_OUT, broaden
from verifier.dataset import build_splits
from verifier.pairs import (
    KIND_CONTRADICTION,
    KIND_MISSING,
    KIND_OTHER_SPEAKER,
    KIND_OVERGENERALIZATION,
    KIND_SUPPORTED,
    KIND_TASK_CONTEXT,
    NEGATIVE_KINDS,
    SUPPORTED,
    UNSUPPORTED,
    Pair,
    looks_supported,
)
from verifier.snippet import OTHER_MARK, USER_MARK, format_snippet
from verifier.statements import AGAINST, FOR, HELD_OUT_ANTONYMS, contradict, negate, third_person
from verifier.task_context import DELIVERABLES, TRAIN_DELIVERABLES

# (speaker, text, persona_text): two speakers alternate; persona_text as MSC's crowdworkers wrote it.
DIALOGUE = [
    ("bot_0", "Hi! I just got back from walking my two dogs.", "I have two dogs. I walk my dogs."),
    ("bot_1", "Nice. I am a nurse, so I rarely have time for pets.", "I am a nurse."),
    ("bot_0", "That sounds hard. I work at a bakery downtown.", "I work at a bakery."),
    ("bot_1", "I love bread! I bake sourdough on weekends.", "I love bread. I bake sourdough."),
    ("bot_0", "Do you live near the city?", None),
    ("bot_1", "Yes, I live in Chicago with my sister.", "I live in Chicago. I have a sister."),
    ("bot_0", "I like to read mystery novels in the evening.", "I like to read mystery novels."),
    ("bot_1", "My favorite color is green, like my kitchen.", "My favorite color is green."),
]
SPEAKER_PAIRS = 30  # each has two sessions
PAIR_TAG = re.compile(r"\(pair (\d+), session \d\)")


def _session(pair: int, session: int) -> dict:
    turns = []
    for speaker, text, persona in DIALOGUE:
        # Tag each text with its speaker pair and session, so tests can trace a snippet to its dialogue.
        turn = {"id": speaker, "text": f"{text} (pair {pair}, session {session})"}
        if persona:
            turn["persona_text"] = persona
        turns.append(turn)
    return {"dialog": turns, "initial_data_id": f"valid_{pair}"}


def _write_jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny data directory in the MSC, DNLI and PersonaExt formats."""
    root = tmp_path_factory.mktemp("shared-data")
    for session in (1, 2):
        records = [_session(pair, session) for pair in range(SPEAKER_PAIRS)]
        _write_jsonl(root / f"extraction/msc/msc_personasummary/session_{session}/valid.txt", records)
    dnli = {
        "persona": ["i own a red car .", "i like to swim ."],
        "prefix": ["hello !", "do you drive ?"],
        "triple": ["i", "have_vehicle", "car"],
        "candidates": {"neg": ["no , i do not have a car .", "i never learned to drive a car ."]},
    }
    _write_jsonl(root / "extraction/dnli_evalset/valid_havenot.jsonl", [dnli])
    triplets = [
        {
            "utterance": f"i love hiking in the hills , trip {n} .",
            "head": "i",
            "relation": "like_activity",
            "tail": "hiking",
        }
        for n in range(40)
    ]
    _write_jsonl(root / "extraction/personaext/personaext_union_devtest.jsonl", triplets)
    return root


@pytest.fixture(scope="module")
def splits(data_dir: Path):
    return build_splits(data_dir, seed=0)


def _statement_forms(sentence: str) -> set[str]:
    """A statement as the builder may have written it: as is, or in the third person."""
    forms = {sentence.lower()}
    for with_subject in (True, False):
        form = third_person(sentence, with_subject)
        if form:
            forms.add(form.lower())
    return forms


def _statements_of(turn_texts: list[str]) -> set[str]:
    """Every form of the persona sentences of the fixture turns that `turn_texts` quote."""
    forms: set[str] = set()
    for _, text, persona in DIALOGUE:
        if persona and any(t.startswith(text) for t in turn_texts):
            for sentence in persona.split(". "):
                forms |= _statement_forms(sentence.rstrip(".") + ".")
    return forms


def _turns(snippet: str, mark: str) -> list[str]:
    return [line[len(mark) :].strip() for line in snippet.splitlines() if line.startswith(mark)]


def test_no_dialogue_is_in_both_splits(splits) -> None:
    assert not {p.group for p in splits.train} & {p.group for p in splits.val}
    # Traced through the text itself: every session of a speaker pair lands in one split.
    split_of: dict[str, set[str]] = {}
    for name, pairs in (("train", splits.train), ("val", splits.val)):
        for p in pairs:
            for pair in PAIR_TAG.findall(p.snippet):
                split_of.setdefault(pair, set()).add(name)
    assert len(split_of) == SPEAKER_PAIRS
    assert all(len(names) == 1 for names in split_of.values())
    assert {n for names in split_of.values() for n in names} == {"train", "val"}


def test_every_negative_kind_and_source_is_made(splits) -> None:
    everything = splits.train + splits.val
    assert {p.kind for p in everything} == set(NEGATIVE_KINDS) | {KIND_SUPPORTED}
    assert {p.source for p in everything} == {"msc", "msc+synthetic", "dnli", "personaext"}
    assert set(NEGATIVE_KINDS) <= {p.kind for p in splits.train}


def test_held_out_templates_never_reach_training(splits) -> None:
    assert not any(p.template in HELD_OUT for p in splits.train)
    assert any(p.template in HELD_OUT for p in splits.val)


def test_held_out_antonyms_never_reach_training(splits) -> None:
    flipped = [p for p in splits.train if p.kind == KIND_CONTRADICTION and p.template]
    assert flipped and not any(p.template in HELD_OUT_ANTONYMS for p in flipped)
    assert any(p.template in HELD_OUT_ANTONYMS for p in splits.val)


def test_positives_are_the_users_own_statements(splits) -> None:
    positives = [p for p in splits.train + splits.val if p.kind == KIND_SUPPORTED and p.source == "msc"]
    assert positives and all(p.label == SUPPORTED for p in positives)
    for p in positives:
        assert p.attribute.lower() in _statements_of(_turns(p.snippet, USER_MARK)), p


def test_other_speaker_negatives_come_from_the_partner_turn_in_the_snippet(splits) -> None:
    negatives = [p for p in splits.train + splits.val if p.kind == KIND_OTHER_SPEAKER]
    assert negatives and all(p.label == UNSUPPORTED for p in negatives)
    for p in negatives:
        assert p.attribute.lower() in _statements_of(_turns(p.snippet, OTHER_MARK)), p
        assert p.attribute.lower() not in _statements_of(_turns(p.snippet, USER_MARK)), p


def test_task_context_negatives_come_from_the_assistants_deliverable(splits) -> None:
    negatives = [p for p in splits.train + splits.val if p.kind == KIND_TASK_CONTEXT]
    assert negatives and all(p.label == UNSUPPORTED for p in negatives)
    sentences = [s.rstrip(".") + "." for _, _, persona in DIALOGUE if persona for s in persona.split(". ")]
    for p in negatives:
        [deliverable] = _turns(p.snippet, OTHER_MARK)
        source = [s for s in sentences if p.attribute.lower() in _statement_forms(s)]
        assert source and any(s in deliverable for s in source), p
        assert not looks_supported(p.attribute, user_text(p.snippet)), p
    held_out = [frame.split("{content}")[0] for frame in DELIVERABLES if frame not in TRAIN_DELIVERABLES]
    for p in splits.train:
        if p.kind == KIND_TASK_CONTEXT:
            assert not _turns(p.snippet, OTHER_MARK)[0].startswith(tuple(held_out)), p


def test_missing_evidence_negatives_are_not_in_the_snippet(splits) -> None:
    negatives = [p for p in splits.train + splits.val if p.kind == KIND_MISSING]
    assert negatives and all(p.label == UNSUPPORTED for p in negatives)
    for p in negatives:
        in_snippet = _statements_of(_turns(p.snippet, USER_MARK) + _turns(p.snippet, OTHER_MARK))
        assert p.attribute.lower() not in in_snippet, p


def test_negatives_already_said_by_the_user_are_dropped(splits) -> None:
    # FINDINGS.md: half the attribute's content words in the user's turn means "probably supported".
    for p in splits.train + splits.val:
        if p.kind in (KIND_MISSING, KIND_OTHER_SPEAKER):
            assert not looks_supported(p.attribute, user_text(p.snippet)), p


def test_overgeneralization_and_contradiction_are_unsupported(splits) -> None:
    for p in splits.train + splits.val:
        if p.kind in (KIND_OVERGENERALIZATION, KIND_CONTRADICTION):
            assert p.label == UNSUPPORTED


def test_building_is_deterministic(data_dir: Path, splits) -> None:
    again = build_splits(data_dir, seed=0)
    assert [p.as_dict() for p in again.val] == [p.as_dict() for p in splits.val]


def test_pair_kind_reports_template_generalization() -> None:
    seen = Pair("USER: x", "y", UNSUPPORTED, KIND_OVERGENERALIZATION, "msc", "g", "like.obsessed")
    unseen = Pair("USER: x", "y", UNSUPPORTED, KIND_OVERGENERALIZATION, "msc", "g", "like.fanatic")
    assert seen.report_kind.endswith("(seen templates)")
    assert unseen.report_kind.endswith("(held-out templates)")
    assert Pair("USER: x", "y", UNSUPPORTED, KIND_CONTRADICTION, "msc", "g").report_kind == KIND_CONTRADICTION
    flipped = Pair("USER: x", "y", UNSUPPORTED, KIND_CONTRADICTION, "msc", "g", "against.dislike")
    unseen_flip = Pair("USER: x", "y", UNSUPPORTED, KIND_CONTRADICTION, "msc", "g", "against.not_fan")
    assert flipped.report_kind == "contradiction (seen antonyms)"
    assert unseen_flip.report_kind == "contradiction (held-out antonyms)"


@pytest.mark.parametrize(
    ("statement", "contradiction"),
    [
        ("I have two dogs.", "I do not have two dogs."),
        ("I am a nurse.", "I am not a nurse."),
        ("I love hiking.", "I hate hiking."),
        ("I went to Paris.", "I did not go to Paris."),
        ("My favorite color is green.", "My favorite color is not green."),
    ],
)
def test_negation_contradicts(statement: str, contradiction: str) -> None:
    assert negate(statement) == contradiction


def test_already_negative_statements_are_not_negated_twice() -> None:
    assert negate("I don't like crowds.") is None


def _leads(antonyms, held_out: bool) -> set[str]:
    return {a.lead for a in antonyms if (a.id in HELD_OUT_ANTONYMS) == held_out}


@pytest.mark.parametrize(("statement", "antonyms"), [("I love grilling.", AGAINST), ("I hate grilling.", FOR)])
@pytest.mark.parametrize("held_out", [False, True])
def test_a_preference_is_contradicted_in_every_phrasing_of_its_set(statement: str, antonyms, held_out: bool) -> None:
    # One phrasing per variant; over enough variants every phrasing of the set is used, none of the other set.
    made = {negate(statement, variant, held_out) for variant in range(len(antonyms))}
    assert made == {f"{lead} grilling." for lead in _leads(antonyms, held_out)}


@pytest.mark.parametrize(
    ("statement", "variant", "contradiction"),
    [
        ("I love to read.", 2, "I dislike reading."),
        ("I really enjoy hiking.", 3, "I can't stand hiking."),
        ("I like to read.", 0, "I am not a fan of reading."),  # held out
        ("I hate cold weather.", 0, "I love cold weather."),
        ("I can't stand loud music.", 3, "I am a big fan of loud music."),
        ("I dislike to cook.", 2, "I enjoy cooking."),
        ("I detest spiders.", 0, "I am passionate about spiders."),  # held out
    ],
)
def test_preferences_flip_both_ways(statement: str, variant: int, contradiction: str) -> None:
    held_out = contradiction.startswith(("I am not a fan", "I am passionate"))
    assert negate(statement, variant, held_out) == contradiction


def test_a_comparison_is_negated_not_flipped() -> None:
    # "I hate tea over coffee" says nothing; the rule's "do not prefer" does.
    assert contradict("I prefer tea over coffee.", 5) == ("I don't prefer tea over coffee.", "")
    assert contradict("I prefer tea.", 0) == ("I hate tea.", "against.hate")


def test_broadening_claims_more_than_the_statement() -> None:
    rng = random.Random(0)
    for _ in range(20):
        made = broaden("I like to read.", rng)
        assert made is not None
        text, template = made
        assert template not in HELD_OUT
        assert text != "I like to read."
    held = broaden("I like to read.", rng, held_out=True)
    assert held is not None and held[1] in HELD_OUT


def test_third_person_rewrites_only_what_it_can_read() -> None:
    assert third_person("I like to read.", with_subject=True) == "The user likes to read."
    assert third_person("I have two dogs.", with_subject=False) == "Has two dogs."
    assert third_person("I think I like it.", with_subject=True) is None


def test_snippet_marks_every_speaker() -> None:
    snippet = format_snippet([("assistant", "Here is your  cover letter."), ("user", "Thanks!\nPerfect.")])
    assert snippet == "OTHER: Here is your cover letter.\nUSER: Thanks! Perfect."
    assert format_snippet([("other", "hi")]).startswith(OTHER_MARK)
    with pytest.raises(ValueError, match="unknown role"):
        format_snippet([("narrator", "x")])
