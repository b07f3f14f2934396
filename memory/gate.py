"""Where the verifier plugs into extraction: a gate reviews candidates before they become memories.

`memory/` defines the protocol; the verify-and-refine gate lives in `verifier/` and is wired in
`service/wiring.py`, so this package never imports a stage.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

from memory.conversations import Conversation
from memory.extraction import Candidate, Extractor

log = logging.getLogger("heedful.gate")


@dataclass
class GateOutcome:
    accepted: list[Candidate] = field(default_factory=list)  # including revised ones
    refined: int = 0  # flagged, revised once, and then accepted
    dropped: int = 0  # flagged and still unsupported after the revision (or dropped by it)


class AttributeGate(Protocol):
    async def review(
        self, candidates: list[Candidate], conversation: Conversation, extractor: Extractor
    ) -> GateOutcome: ...


class PassThroughGate:
    """No verifier: every attribute passes. Used only when no verifier model is configured, and it says so."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        log.warning("attribute gate disabled (%s): every extracted attribute will be stored unverified", reason)

    async def review(
        self, candidates: list[Candidate], conversation: Conversation, extractor: Extractor
    ) -> GateOutcome:
        return GateOutcome(accepted=list(candidates))
