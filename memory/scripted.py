"""Scripted-content filter (paper Appendix A): user turns that are templates, not the user speaking.

Pasted boilerplate and API-style batch use repeat the same text across many turns. Each user turn is
normalized and cut into 120-character windows with stride 60; a window hash seen in 5 or more turns that
cover over 40% of the user's turns, or in 8 or more turns, marks templated content, and turns holding
such a window are not used as evidence.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter

WINDOW_CHARS = 120
STRIDE_CHARS = 60
MIN_TURNS_WITH_SHARE = 5  # ... and the turns holding the window are over MIN_SHARE of all user turns
MIN_SHARE = 0.4
MIN_TURNS_ALONE = 8


def _windows(text: str) -> set[str]:
    normalized = re.sub(r"\s+", " ", text.casefold()).strip()
    if len(normalized) < WINDOW_CHARS:
        return set()
    starts = range(0, len(normalized) - WINDOW_CHARS + 1, STRIDE_CHARS)
    return {hashlib.blake2b(normalized[s : s + WINDOW_CHARS].encode(), digest_size=8).hexdigest() for s in starts}


def scripted_turns(user_turns: list[tuple[int, str]]) -> set[int]:
    """Turn ids of user turns that contain templated content."""
    per_turn = {turn: _windows(text) for turn, text in user_turns}
    seen = Counter(h for hashes in per_turn.values() for h in hashes)
    n = len(user_turns)
    templated = {
        h
        for h, count in seen.items()
        if count >= MIN_TURNS_ALONE or (count >= MIN_TURNS_WITH_SHARE and count / n > MIN_SHARE)
    }
    return {turn for turn, hashes in per_turn.items() if hashes & templated}
