"""The store-neutral description of which payload fields are indexed and how a MemoryFilter reads.

Both adapters build their engine's own filter objects from `filter_terms`, so the two cannot drift.
"""

from __future__ import annotations

from memory.store import MemoryFilter

KEYWORD_FIELDS = ("user_id", "status", "kind")
TEXT_FIELD = "text"


def filter_terms(user_id: str | None, filters: MemoryFilter | None) -> tuple[dict[str, str], str | None]:
    """(exact keyword matches, full-text query) for one user and optional filters."""
    exact: dict[str, str] = {}
    if user_id is not None:
        exact["user_id"] = user_id
    text = None
    if filters is not None:
        if filters.status is not None:
            exact["status"] = filters.status.value
        if filters.kind is not None:
            exact["kind"] = filters.kind.value
        text = filters.text or None
    return exact, text
