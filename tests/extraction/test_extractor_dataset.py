"""The extractor's training windows: production prompt, schema-valid short targets, empty answers, split by dialogue."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from memory.extraction import parse
from memory.extractor_train import (
    MAX_TARGET_ITEMS,
    eval_windows,
    kind_of,
    load_dialogues,
    split_of,
    training_windows,
    window_pool,
    windows,
)
from memory.phrasing import third_person
from memory.prompts import extract

# (speaker, text, persona_text): two speakers alternate; persona_text as MSC's crowdworkers wrote it.
DIALOGUE = [
    ("bot_0", "Hi! I just got back from walking my two dogs.", "I have two dogs. I walk my dogs."),
    ("bot_1", "Nice. I am a nurse, so I rarely have time for pets.", "I am a nurse."),
    ("bot_0", "Do you live near the city?", None),
    ("bot_1", "Yes, I live in Chicago with my sister.", "I live in Chicago. I have a sister."),
    ("bot_0", "What a coincidence, so do I.", None),
    ("bot_1", "My favorite color is green, like my kitchen.", "My favorite color is green."),
]
EPISODES = 60  # speaker pairs, two sessions each


def _session(pair: int, session: int) -> dict:
    turns = []
    for speaker, text, persona in DIALOGUE:
        turn = {"id": speaker, "text": f"{text} (pair {pair}, session {session})"}
        if persona:
            turn["persona_text"] = persona
        turns.append(turn)
    return {"dialog": turns, "initial_data_id": f"valid_{pair}"}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("msc")
    for session in (1, 2):
        path = root / f"session_{session}" / "valid.txt"
        path.parent.mkdir(parents=True)
        path.write_text("".join(json.dumps(_session(p, session)) + "\n" for p in range(EPISODES)))
    # A dialogue without persona annotations (the msc_dialogue format): not evidence of "reveals nothing".
    (root / "unannotated.jsonl").write_text(json.dumps({"dialog": [{"id": "bot_0", "text": "hello"}]}) + "\n")
    return root


def test_loads_annotated_dialogues_only(data_dir: Path) -> None:
    dialogues = load_dialogues(data_dir)

    assert len(dialogues) == 2 * EPISODES
    assert {d.episode for d in dialogues} == {f"valid_{p}" for p in range(EPISODES)}


def test_prompt_is_the_production_prompt(data_dir: Path) -> None:
    window = next(windows(load_dialogues(data_dir)[0], 4))

    assert window.messages() == extract.messages(list(window.turns))
    assert window.conversation().messages[0].content == window.turns[0][2]


def test_targets_are_valid_short_answers_in_the_schema(data_dir: Path) -> None:
    pool = window_pool(load_dialogues(data_dir), "train")
    schema = jsonschema.Draft202012Validator(extract.json_schema())

    assert pool
    for window in pool:
        answer = json.loads(window.target())
        schema.validate(answer)
        attributes, malformed = parse(window.target())
        assert malformed == 0 and len(attributes) == len(answer["attributes"]) <= MAX_TARGET_ITEMS
        user_turns = {i for i, role, _ in window.turns if role == "user"}
        for attribute in attributes:
            assert attribute.evidence_turns and set(attribute.evidence_turns) <= user_turns
            assert len(attribute.reasoning) < 40
            assert attribute.confidence >= 0.4  # survives the extractor's confidence cut


def test_the_partner_persona_is_never_a_target(data_dir: Path) -> None:
    dialogue = load_dialogues(data_dir)[0]

    for window in windows(dialogue, 2):
        for gold in window.gold:
            speaker_turn = window.turns[gold.evidence_turns[0]]
            assert speaker_turn[1] == "user"
            assert gold.persona in dialogue.utterances[window.start + gold.evidence_turns[0]].persona


def test_windows_that_reveal_nothing_target_an_empty_list(data_dir: Path) -> None:
    pool = window_pool(load_dialogues(data_dir), "train")

    empty = [w for w in pool if not w.gold]
    assert empty and len(empty) < len(pool)
    # e.g. bot_0 asking "Do you live near the city?" while bot_1 reveals where they live
    assert all(w.target() == '{"attributes":[]}' for w in empty)
    assert any(any(role == "assistant" for _, role, _ in w.turns) for w in empty)


def test_split_is_by_dialogue_episode(data_dir: Path) -> None:
    dialogues = load_dialogues(data_dir)
    train = training_windows(dialogues, "train", 10_000)
    val = training_windows(dialogues, "val", 10_000)

    train_episodes = {w.episode for w in train}
    val_episodes = {w.episode for w in val}
    assert train_episodes and val_episodes
    assert not train_episodes & val_episodes
    # every session of a speaker pair lands on the same side
    assert {w.dialogue_id for w in val} == {d.dialogue_id for d in dialogues if d.episode in val_episodes}
    assert all(w.episode in val_episodes for w in eval_windows(dialogues, 4, limit=100))


def test_sampling_is_deterministic(data_dir: Path) -> None:
    dialogues = load_dialogues(data_dir)

    first = [w.window_id for w in training_windows(dialogues, "train", 20, seed=3)]
    assert first == [w.window_id for w in training_windows(dialogues, "train", 20, seed=3)]
    assert split_of("valid_7") == split_of("valid_7")


@pytest.mark.parametrize(
    ("sentence", "statement"),
    [
        ("I have two jobs.", "has two jobs"),
        ("I like to read.", "likes to read"),
        ("I'm a stay at home dad.", "is a stay at home dad"),
        ("I don't eat meat.", "does not eat meat"),
        ("I really love horror movies.", "really loves horror movies"),
        ("I strongly dislike pixel art.", "strongly dislikes pixel art"),
        ("I fly to Boston monthly.", "flies to Boston monthly"),
        ("I watch the news every day.", "watches the news every day"),
        ("I used to work in human services.", "used to work in human services"),
        ("My son is in junior high.", "their son is in junior high"),
        ("Shawshank Redemption was filmed where I live.", "Shawshank Redemption was filmed where they live"),
    ],
)
def test_statements_are_third_person(sentence: str, statement: str) -> None:
    assert third_person(sentence) == statement


def test_kind_separates_preferences_from_facts() -> None:
    assert kind_of("I love horror movies.") == "preference"
    assert kind_of("I have a son.") == "profile"
