"""Verify-and-refine (paper §5, stage 1 intervention): every candidate is scored against its evidence;
a flagged one goes back to the extractor once with the verifier's verdict; the revision is verified
again; still flagged means dropped. Satisfies `memory.gate.AttributeGate`.
"""

from __future__ import annotations

import asyncio
import logging

from memory import metrics
from memory.conversations import Conversation
from memory.extraction import Candidate, Extractor
from memory.gate import GateOutcome
from verifier.runtime import Verifier
from verifier.snippet import format_snippet

log = logging.getLogger("heedful.verifier")

VERDICT = "not supported by the quoted turns: revise to what the user actually said, or drop it."
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

    async def score(self, candidates: list[Candidate], conversation: Conversation) -> list[float]:
        pairs = [(evidence_snippet(c, conversation), c.text) for c in candidates]
        scores = await asyncio.to_thread(self.verifier.score, pairs)
        for s in scores:
            metrics.VERIFIER_SCORE.observe(s)
        return scores

    async def review(
        self, candidates: list[Candidate], conversation: Conversation, extractor: Extractor
    ) -> GateOutcome:
        outcome = GateOutcome()
        if not candidates:
            return outcome
        flagged: list[Candidate] = []
        for candidate, score in zip(candidates, await self.score(candidates, conversation), strict=True):
            candidate.verifier_score = score
            (outcome.accepted if self.verifier.supported(score) else flagged).append(candidate)
        for candidate in flagged:
            revised = await extractor.revise(candidate, conversation, VERDICT)
            if revised is None:
                outcome.dropped += 1
                continue
            [score] = await self.score([revised], conversation)
            revised.verifier_score = score
            if self.verifier.supported(score):
                outcome.accepted.append(revised)
                outcome.refined += 1
            else:
                outcome.dropped += 1
        return outcome
