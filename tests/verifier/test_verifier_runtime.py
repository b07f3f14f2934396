"""The committed int8 verifier, loaded the way the worker loads it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from verifier import Verifier, VerifierModelMissing, format_snippet

MODEL_DIR = Path(__file__).resolve().parents[2] / "models" / "verifier"

HIKING = format_snippet(
    [
        ("assistant", "What do you usually do on weekends?"),
        ("user", "I go hiking in the mountains with my dog almost every Saturday."),
    ]
)
# The assistant wrote a cover letter; the user only thanked it (the paper's task-context confusion).
COVER_LETTER = format_snippet(
    [
        (
            "assistant",
            "Here is your cover letter: I have five years of experience in marketing and I speak fluent French.",
        ),
        ("user", "Thanks, that looks great."),
    ]
)
SUSHI = format_snippet(
    [
        ("assistant", "How was your week?"),
        ("user", "Good! I tried sushi for the first time on Friday."),
    ]
)


@pytest.fixture(scope="module")
def verifier() -> Verifier:
    return Verifier.load(MODEL_DIR, threads=1)


@pytest.mark.integration
def test_the_users_own_words_support_the_attribute(verifier: Verifier) -> None:
    for attribute in ("Likes hiking.", "The user has a dog."):
        [score] = verifier.score([(HIKING, attribute)])
        assert verifier.supported(score), (attribute, score, verifier.threshold)


@pytest.mark.integration
def test_what_the_other_speaker_said_is_not_the_users(verifier: Verifier) -> None:
    for attribute in ("Has five years of experience in marketing.", "I speak fluent French."):
        [score] = verifier.score([(COVER_LETTER, attribute)])
        assert not verifier.supported(score), (attribute, score, verifier.threshold)


@pytest.mark.integration
def test_a_broadened_claim_is_flagged(verifier: Verifier) -> None:
    for attribute in ("Is a professional sushi chef.", "The user loves sushi more than anything else in the world."):
        [score] = verifier.score([(SUSHI, attribute)])
        assert not verifier.supported(score), (attribute, score, verifier.threshold)


@pytest.mark.integration
def test_batched_scores_match_single_scores(verifier: Verifier) -> None:
    pairs = [
        (HIKING, "Likes hiking."),
        (COVER_LETTER, "Speaks French."),
        (SUSHI, "Has tried sushi."),
        (SUSHI, "Is a professional sushi chef."),
        (HIKING + "\n" + COVER_LETTER, "Likes the mountains."),
    ]
    batched = verifier.score(pairs)
    single = [verifier.score([pair])[0] for pair in pairs]
    # int8 activation scales are set per call (dynamic quantization), so scores move with batch-mates
    # (up to ~0.08 measured); the decisions must not.
    assert batched == pytest.approx(single, abs=0.1)
    assert [verifier.supported(s) for s in batched] == [verifier.supported(s) for s in single]
    assert verifier.score([]) == []


@pytest.mark.integration
def test_runtime_does_not_import_torch() -> None:
    code = (
        "import sys; from pathlib import Path; from verifier import Verifier; "
        f"Verifier.load(Path({str(MODEL_DIR)!r})).score([('USER: hi', 'Says hi.')]); "
        "sys.exit(1 if 'torch' in sys.modules or 'transformers' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_missing_model_dir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(VerifierModelMissing, match="no verifier model"):
        Verifier.load(tmp_path / "nowhere")
