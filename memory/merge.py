"""Merging new attributes into a user's memories (paper Appendix B): agglomerative clustering with average
linkage at cosine similarity 0.7; the member nearest the confidence-weighted centroid represents the cluster.

Confidence of a merged memory is a noisy-OR over *conversations*, not over mentions:
    confidence = 1 - prod_over_conversations(1 - c_conv)
where c_conv is the highest confidence any member draws from that conversation (an existing memory
counts as one block for the conversations it already cites). Saying a thing five times in one chat
counts once; saying it in three chats raises confidence. Re-processing the same conversation changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage

from memory.extraction import Candidate
from memory.model import Evidence, Memory, MemoryStatus, memory_id

# Paper Appendix B: attributes at cosine similarity >= 0.7 are the same attribute.
MERGE_SIMILARITY = 0.7


@dataclass
class Member:
    vector: np.ndarray
    confidence: float
    memory: Memory | None = None  # an existing memory
    candidate: Candidate | None = None  # a new attribute
    conversations: set[str] = field(default_factory=set)


def merge(tenant: str, candidates: list[tuple[Candidate, list[float]]], existing: list[Memory]) -> list[Memory]:
    """The memories to upsert: new ones, existing ones with more evidence, and ones now superseded."""
    members = _members(candidates, existing)
    if not any(m.candidate for m in members):
        return []
    labels = _cluster(np.stack([m.vector for m in members]))
    changed: list[Memory] = []
    for label in sorted(set(labels)):
        group = [m for m, lab in zip(members, labels, strict=True) if lab == label]
        if any(m.candidate for m in group):
            changed += _resolve(tenant, group)
    return changed


def _members(candidates: list[tuple[Candidate, list[float]]], existing: list[Memory]) -> list[Member]:
    by_id = {m.id: m for m in existing if m.embedding is not None}
    members = {
        mid: Member(np.asarray(m.embedding), m.confidence, memory=m, conversations=_convs(m.evidence))
        for mid, m in by_id.items()
    }
    for candidate, vector in candidates:
        convs = _convs(candidate.evidence)
        members[f"new-{len(members)}"] = Member(
            np.asarray(vector), candidate.confidence, candidate=candidate, conversations=convs
        )
    return list(members.values())


def _cluster(vectors: np.ndarray) -> list[int]:
    if len(vectors) == 1:
        return [1]
    tree = linkage(vectors, method="average", metric="cosine")
    return [int(x) for x in fcluster(tree, t=1.0 - MERGE_SIMILARITY, criterion="distance")]


def _resolve(tenant: str, group: list[Member]) -> list[Memory]:
    evidence = _union_evidence(group)
    confidence = _confidence(group)
    disabled = [m for m in group if m.memory is not None and m.memory.status is MemoryStatus.disabled]
    # a memory the user disabled stays the cluster's face, and stays disabled: their choice stands
    rep = disabled[0] if disabled else _nearest_centroid(group)
    others = [
        m.memory for m in group if m is not rep and m.memory is not None and m.memory.status is MemoryStatus.active
    ]
    if rep.memory is not None:
        head = rep.memory.model_copy(update={"evidence": evidence, "confidence": confidence})
    else:
        assert rep.candidate is not None
        c = rep.candidate
        head = Memory(
            id=memory_id(tenant, c.text),
            user_id=tenant,
            text=c.text,
            kind=c.kind,
            evidence=evidence,
            confidence=confidence,
            verifier_score=c.verifier_score,
            embedding=rep.vector.tolist(),
        )
    others = [o for o in others if o.id != head.id]
    head.supersedes = sorted({*head.supersedes, *(o.id for o in others)})
    superseded = [o.model_copy(update={"status": MemoryStatus.superseded}) for o in others]
    return [head, *superseded]


def _nearest_centroid(group: list[Member]) -> Member:
    weights = np.array([max(m.confidence, 1e-6) for m in group])
    vectors = np.stack([m.vector for m in group])
    centroid = (weights[:, None] * vectors).sum(axis=0) / weights.sum()
    return group[int(np.argmax(vectors @ centroid))]


def _union_evidence(group: list[Member]) -> list[Evidence]:
    seen: dict[tuple[str, tuple[int, ...]], Evidence] = {}
    for m in group:
        items = m.memory.evidence if m.memory is not None else m.candidate.evidence if m.candidate else []
        for e in items:
            seen.setdefault((e.conversation_id, tuple(e.turn_ids)), e)
    return list(seen.values())


def _confidence(group: list[Member]) -> float:
    blocks: list[tuple[set[str], float]] = [(set(m.conversations), m.confidence) for m in group if m.memory]
    for m in (m for m in group if m.candidate):
        for i, (convs, conf) in enumerate(blocks):
            if m.conversations & convs:  # already counted: take the stronger reading, add nothing
                blocks[i] = (convs | m.conversations, max(conf, m.confidence))
                break
        else:
            blocks.append((set(m.conversations), m.confidence))
    return float(1.0 - np.prod([1.0 - c for _, c in blocks]))


def _convs(evidence: list[Evidence]) -> set[str]:
    return {e.conversation_id for e in evidence}
