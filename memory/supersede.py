"""Change over time: a new memory that contradicts a stored one supersedes it.

The LLM decides, but only for the few nearest stored memories of each new memory that the merge did not
already fold into it (merge handles restatements; this handles reversals, which embed close but not at 0.7).
"""

from __future__ import annotations

import json
import logging

import numpy as np
from pydantic import ValidationError

from memory.llm import LLM, LLMError
from memory.model import Memory, MemoryStatus
from memory.prompts import contradict

log = logging.getLogger("heedful.supersede")

CANDIDATES_PER_MEMORY = 3
# below this cosine the two statements are about different things; no need to ask
MIN_SIMILARITY = 0.45


async def supersede_contradicted(llm: LLM, changed: list[Memory], neighbours: list[Memory]) -> list[Memory]:
    """Stored memories that a newly written one contradicts, marked superseded; `changed` heads get the link."""
    touched = {m.id for m in changed}
    stored = [n for n in neighbours if n.id not in touched and n.status is MemoryStatus.active and n.embedding]
    superseded: dict[str, Memory] = {}
    for head in (m for m in changed if m.status is MemoryStatus.active and m.embedding):
        for old in _nearest(head, stored):
            if old.id in superseded or not await _contradicts(llm, old.text, head.text):
                continue
            superseded[old.id] = old.model_copy(update={"status": MemoryStatus.superseded})
            head.supersedes = sorted({*head.supersedes, old.id})
    return list(superseded.values())


def _nearest(head: Memory, stored: list[Memory]) -> list[Memory]:
    assert head.embedding is not None
    scored = [(float(np.dot(head.embedding, m.embedding or [])), m) for m in stored]
    scored = [(s, m) for s, m in scored if s >= MIN_SIMILARITY]
    return [m for _, m in sorted(scored, key=lambda x: -x[0])[:CANDIDATES_PER_MEMORY]]


async def _contradicts(llm: LLM, old: str, new: str) -> bool:
    try:
        completion = await llm.complete(
            contradict.messages(old, new), max_tokens=96, json_schema=contradict.json_schema()
        )
        return contradict.Verdict.model_validate(json.loads(completion.text)).contradicts
    except (LLMError, ValueError, ValidationError) as exc:
        # no verdict means no change: keeping an old memory is safer than dropping it on a garbled answer
        log.warning("contradiction check failed (%s); keeping the stored memory", type(exc).__name__)
        return False
