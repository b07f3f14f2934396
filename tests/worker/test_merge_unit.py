"""Unit tests of memory.merge: clustering at 0.7, the representative, user choices, confidence, replays.

Vectors are hand-made 2-d directions, so the cosine between two attributes is known exactly."""

from __future__ import annotations

import math

import pytest

from memory.extraction import Candidate
from memory.merge import MERGE_SIMILARITY, merge
from memory.model import Evidence, Memory, MemoryKind, MemoryStatus, memory_id

TENANT = "acme:u1"


def direction(degrees: float) -> list[float]:
    return [math.cos(math.radians(degrees)), math.sin(math.radians(degrees))]


def degrees_for(cosine: float) -> float:
    return math.degrees(math.acos(cosine))


def candidate(text: str, confidence: float = 0.8, conversation: str = "c1", turn: int = 0) -> Candidate:
    return Candidate(
        text=text,
        kind=MemoryKind.preference,
        confidence=confidence,
        evidence=[Evidence(conversation_id=conversation, turn_ids=[turn], quote=f"user said: {text}")],
    )


def stored(text: str, vector: list[float], confidence: float, conversation: str, **fields: object) -> Memory:
    evidence = [Evidence(conversation_id=conversation, turn_ids=[0], quote=f"user said: {text}")]
    return Memory.new(TENANT, text, embedding=vector, confidence=confidence, evidence=evidence, **fields)


@pytest.mark.parametrize(("cosine", "memories"), [(MERGE_SIMILARITY + 0.02, 1), (MERGE_SIMILARITY - 0.02, 2)])
def test_attributes_merge_at_cosine_0_7_and_stay_apart_below(cosine: float, memories: int) -> None:
    out = merge(
        TENANT,
        [(candidate("likes hiking"), direction(0)), (candidate("enjoys hikes"), direction(degrees_for(cosine)))],
        [],
    )
    assert len(out) == memories
    assert len({m.id for m in out}) == memories


@pytest.mark.parametrize(
    ("confidences", "representative"),
    [((0.8, 0.8, 0.8), "likes trail running"), ((0.1, 0.1, 0.99), "runs ultramarathons"), ((0.9, 0.2, 0.2), "jogs")],
)
def test_representative_is_the_member_nearest_the_confidence_weighted_centroid(
    confidences: tuple[float, float, float], representative: str
) -> None:
    texts = ["jogs", "likes trail running", "runs ultramarathons"]  # 0, 20 and 40 degrees: one cluster
    pairs = [
        (candidate(t, c, conversation=f"c{i}"), direction(20 * i))
        for i, (t, c) in enumerate(zip(texts, confidences, strict=True))
    ]
    [head] = merge(TENANT, pairs, [])
    assert head.text == representative
    assert head.id == memory_id(TENANT, representative)
    assert sorted(e.conversation_id for e in head.evidence) == ["c0", "c1", "c2"], "evidence lists are merged"


def test_a_memory_the_user_disabled_stays_the_face_of_its_cluster_and_stays_disabled() -> None:
    disabled = stored("is vegetarian", direction(30), 0.6, "c1", status=MemoryStatus.disabled)
    # the new attribute is nearer the weighted centroid: it would represent the cluster, were it not for the user
    out = merge(TENANT, [(candidate("eats no meat", 0.9, conversation="c2"), direction(5))], [disabled])
    assert [(m.id, m.status) for m in out] == [(disabled.id, MemoryStatus.disabled)]
    assert out[0].text == "is vegetarian"
    assert {e.conversation_id for e in out[0].evidence} == {"c1", "c2"}


def test_confidence_is_a_noisy_or_over_conversations_not_mentions() -> None:
    said_twice_in_one_chat = merge(
        TENANT,
        [
            (candidate("has a cat", 0.6, "c1", turn=0), direction(0)),
            (candidate("owns a cat", 0.7, "c1", turn=2), direction(3)),
        ],
        [],
    )
    assert [m.confidence for m in said_twice_in_one_chat] == [pytest.approx(0.7)]

    said_in_two_chats = merge(
        TENANT,
        [(candidate("has a cat", 0.6, "c1"), direction(0)), (candidate("owns a cat", 0.5, "c2"), direction(3))],
        [],
    )
    assert [m.confidence for m in said_in_two_chats] == [pytest.approx(1 - 0.4 * 0.5)]

    # a stored memory counts once for the conversations it cites; a new conversation raises it
    known = stored("has a cat", direction(0), 0.6, "c1")
    out = merge(TENANT, [(candidate("has a cat", 0.5, "c3"), direction(0))], [known])
    assert [(m.id, m.confidence) for m in out] == [(known.id, pytest.approx(0.8))]


def test_processing_the_same_conversation_again_adds_nothing() -> None:
    pairs = [
        (candidate("prefers short answers", 0.7, "c1"), direction(0)),
        (candidate("plays the cello", 0.9, "c1"), direction(80)),
    ]
    first = merge(TENANT, pairs, [])
    again = merge(TENANT, pairs, first)
    assert sorted(m.id for m in again) == sorted(m.id for m in first)
    for before, after in zip(sorted(first, key=lambda m: m.id), sorted(again, key=lambda m: m.id), strict=True):
        assert after.confidence == pytest.approx(before.confidence), "a replay does not inflate confidence"
        assert after.evidence == before.evidence
        assert after.status is MemoryStatus.active
