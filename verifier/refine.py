"""Verify-and-refine (paper §5, stage 1 intervention): every candidate is scored against its evidence;
a flagged one goes back to the extractor once with the verifier's verdict; the revision is verified
again; still flagged means dropped. Satisfies `memory.gate.AttributeGate`.

Flagged means: the model scores it under its threshold, or the user's own turns state the opposite
preference (`verifier.polarity`, a word-level check the model does not learn).
"""

from __future__ import annotations

import asyncio
import logging

from memory import metrics
from memory.conversations import Conversation
from memory.extraction import Candidate, Extractor
from memory.gate import GateOutcome
from verifier.polarity import contradicted
from verifier.runtime import Verifier
from verifier.snippet import format_snippet

log = logging.getLogger("heedful.verifier")

VERDICT = "not supported by the quoted turns: revise to what the user actually said, or drop it."
CONTRADICTED = "the quoted turns say the opposite: revise to what the user actually said, or drop it."
# the snippet includes the turn before each quoted user turn, so "other speaker" confusions are visible
CONTEXT_TURNS_BEFORE = 1


def evidence_snippet(candidate: Candidate, conversation: Conversation) -> str:
    wanted: set[int] = set()
    for evidence in candidate.evidence:
        for turn in evidence.turn_ids:
            wanted.update(range(max(0, turn - CONTEXT_TURNS_BEFORE), turn + 1))
    turns = [(m.role, m.content) for i, m in enumerate(conversation.messages) if i in wanted and m.role != "system"]
    return format_snippet(turns)


class VerifyAndRefine:
    def __init__(self, verifier: Verifier) -> None:
        self.verifier = verifier

    async def judge(self, candidates: list[Candidate], conversation: Conversation) -> list[tuple[float, str | None]]:
        """Each candidate's verifier score and what is wrong with it (None: it may be stored)."""
        pairs = [(evidence_snippet(c, conversation), c.text) for c in candidates]
        scores = await asyncio.to_thread(self.verifier.score, pairs)
        out: list[tuple[float, str | None]] = []
        for (snippet, text), score in zip(pairs, scores, strict=True):
            metrics.VERIFIER_SCORE.observe(score)
            passed = self.verifier.supported(score)
            if contradicted(snippet, text):
                metrics.VERIFIER_CONTRADICTED.labels(model="passed" if passed else "flagged").inc()
                out.append((score, CONTRADICTED))
            else:
                out.append((score, None if passed else VERDICT))
        return out

    async def review(
        self, candidates: list[Candidate], conversation: Conversation, extractor: Extractor
    ) -> GateOutcome:
        outcome = GateOutcome()
        if not candidates:
            return outcome
        flagged: list[tuple[Candidate, str]] = []
        for candidate, (score, verdict) in zip(candidates, await self.judge(candidates, conversation), strict=True):
            candidate.verifier_score = score
            if verdict is None:
                outcome.accepted.append(candidate)
            else:
                flagged.append((candidate, verdict))
        for candidate, verdict in flagged:
            revised = await extractor.revise(candidate, conversation, verdict)
            if revised is None:
                outcome.dropped += 1
                continue
            [(score, still_wrong)] = await self.judge([revised], conversation)
            revised.verifier_score = score
            if still_wrong is None:
                outcome.accepted.append(revised)
                outcome.refined += 1
            else:
                outcome.dropped += 1
        return outcome
