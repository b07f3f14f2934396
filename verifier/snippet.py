"""The verifier's view of the evidence: who said what, as one string.

Training and run time both build snippets here, so the model sees the same format in both.
Speakers are marked on every turn because the hardest failure in early experiments was
the "other speaker" one: the attribute's words are in the snippet, but in a turn the user
did not say (FINDINGS.md, verifier section).
"""

from __future__ import annotations

from collections.abc import Sequence

USER_ROLE = "user"
# Anything that is not the user (the assistant, another chat participant) is marked the same way:
# the verifier only needs to know "the user said this" versus "someone else did".
OTHER_ROLES = frozenset({"assistant", "other", "system"})

USER_MARK = "USER:"
OTHER_MARK = "OTHER:"


def format_snippet(turns: Sequence[tuple[str, str]]) -> str:
    """One line per turn, each prefixed with its speaker.

    `turns` are (role, text) in conversation order; role is "user" for the person whose
    attributes are extracted, "assistant" or "other" for anyone else.
    """
    lines = []
    for role, text in turns:
        if role == USER_ROLE:
            mark = USER_MARK
        elif role in OTHER_ROLES:
            mark = OTHER_MARK
        else:
            raise ValueError(f"unknown role {role!r}: expected 'user', 'assistant' or 'other'")
        lines.append(f"{mark} {' '.join(text.split())}")
    return "\n".join(lines)
