"""Erasing a user: everything heedful holds about them, in every store, in the order that keeps a
concurrently running worker from bringing anything back (tombstone first; see memory/ingest.py)."""

from __future__ import annotations

from pydantic import BaseModel

from service.wiring import Components


class ErasureReport(BaseModel):
    memories_deleted: int
    stream_entries_deleted: int


async def erase_user(components: Components, tenant: str) -> ErasureReport:
    settings = components.settings
    entries = await components.conversations.erase(
        tenant,
        group=settings.consumer_group,
        dead_letter_stream=settings.dead_letter_stream,
        tombstone_ttl_s=settings.erasure_tombstone_s,
    )
    memories = await components.store.delete_user(tenant)
    await components.audit.record("erase_user", components.conversations.pseudonym(tenant))
    return ErasureReport(memories_deleted=memories, stream_entries_deleted=entries)
