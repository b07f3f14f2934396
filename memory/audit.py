"""An append-only audit trail of changes to users' memories.

Records name memories by id and users by a keyed pseudonym, never by text or user id, so that after an
erasure the trail says that something happened without keeping what was said or who said it.
"""

from __future__ import annotations

import json
import time

from redis.asyncio import Redis

AUDIT_MAXLEN = 100_000


class AuditLog:
    def __init__(self, redis: Redis, key: str) -> None:
        self._redis = redis
        self.key = key

    async def record(self, action: str, subject: str, memory_ids: list[str] | None = None) -> None:
        fields = {"action": action, "subject": subject, "memory_ids": json.dumps(memory_ids or []), "at": time.time()}
        await self._redis.xadd(self.key, fields, maxlen=AUDIT_MAXLEN, approximate=True)  # type: ignore[arg-type]
