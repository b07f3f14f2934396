"""The ingestion log in Redis: raw conversations (kept for evidence, with a retention) and the stream
that feeds the extraction workers, plus the per-user state that both sides consult (known, paused,
erased).

Keys, for a tenant T ("app:user") and conversation C:
  {p}:user:T             hash: created_at, paused            (the user registry)
  {p}:user:T:convs       set of conversation ids             (what erasure must find)
  {p}:user:T:responses   hash: response id -> memories used  (for feedback)
  {p}:user:T:feedback    list of feedback records
  {p}:conv:T:C           hash: digest, body, entry, at       (raw conversation, expires)
  {p}:erased:<hmac(T)>   erasure time, so an in-flight worker never resurrects a user
  {p}:entry-errors       hash: stream entry id -> its last processing error (may quote the conversation)
The stream entry holds ids and a digest only, never conversation text.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any, Literal

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from memory.conversations import Conversation

# Atomic so that two replays racing each other queue the conversation once.
_APPEND = """
local user, convs, conv, stream = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local digest, body, ttl, tenant, conv_id, now = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5], ARGV[6]
if redis.call('HGET', user, 'paused') == '1' then return {'paused', ''} end
if redis.call('HGET', conv, 'digest') == digest then return {'duplicate', redis.call('HGET', conv, 'entry')} end
local id = redis.call('XADD', stream, '*', 'tenant', tenant, 'conversation', conv_id, 'digest', digest, 'at', now)
redis.call('HSET', conv, 'digest', digest, 'body', body, 'entry', id, 'at', now)
redis.call('EXPIRE', conv, ttl)
redis.call('SADD', convs, conv_id)
redis.call('EXPIRE', convs, ttl)
redis.call('HSETNX', user, 'created_at', now)
return {'queued', id}
"""


@dataclass(frozen=True)
class AppendResult:
    status: Literal["queued", "duplicate", "paused"]
    entry_id: str | None


@dataclass(frozen=True)
class StoredConversation:
    conversation: Conversation
    digest: str
    entry_id: str


class ConversationLog:
    def __init__(self, redis: Redis, *, prefix: str, stream: str, retention_s: int, erasure_secret: bytes) -> None:
        self.redis = redis
        self.prefix = prefix
        self.stream = stream
        self.retention_s = retention_s
        self._secret = erasure_secret
        self.errors_key = f"{prefix}:entry-errors"
        self._append = redis.register_script(_APPEND)

    async def ensure_group(self, group: str) -> None:
        """Creates the consumer group (and the stream) if missing; from id 0 so nothing queued earlier is skipped."""
        try:
            await self.redis.xgroup_create(self.stream, group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    # keys -----------------------------------------------------------------
    def user_key(self, tenant: str) -> str:
        return f"{self.prefix}:user:{tenant}"

    def conv_key(self, tenant: str, conversation_id: str) -> str:
        return f"{self.prefix}:conv:{tenant}:{conversation_id}"

    def erased_key(self, tenant: str) -> str:
        return f"{self.prefix}:erased:{self.pseudonym(tenant)}"

    def pseudonym(self, tenant: str) -> str:
        """A keyed hash of the tenant: lets audit records and tombstones refer to a user without naming them."""
        return hmac.new(self._secret, tenant.encode(), hashlib.sha256).hexdigest()[:32]

    # ingestion ------------------------------------------------------------
    async def append(self, tenant: str, conversation: Conversation) -> AppendResult:
        body = conversation.model_dump_json()
        keys = [
            self.user_key(tenant),
            f"{self.user_key(tenant)}:convs",
            self.conv_key(tenant, conversation.conversation_id),
        ]
        args = [
            conversation.digest(),
            body,
            self.retention_s,
            tenant,
            conversation.conversation_id,
            f"{time.time():.6f}",
        ]
        status, entry = await self._append(keys=[*keys, self.stream], args=args)  # type: ignore[arg-type]
        return AppendResult(status=_text(status), entry_id=_text(entry) or None)  # type: ignore[arg-type]

    async def load(self, tenant: str, conversation_id: str) -> StoredConversation | None:
        fields = await self.redis.hgetall(self.conv_key(tenant, conversation_id))  # type: ignore[misc]
        if not fields:
            return None
        f = {_text(k): _text(v) for k, v in fields.items()}
        return StoredConversation(Conversation.model_validate_json(f["body"]), f["digest"], f["entry"])

    # user state -----------------------------------------------------------
    async def register(self, tenant: str) -> None:
        await self.redis.hsetnx(self.user_key(tenant), "created_at", f"{time.time():.6f}")  # type: ignore[misc]

    async def known(self, tenant: str) -> bool:
        return bool(await self.redis.exists(self.user_key(tenant)))

    async def set_paused(self, tenant: str, paused: bool) -> None:
        await self.redis.hset(self.user_key(tenant), "paused", "1" if paused else "0")  # type: ignore[misc]

    async def paused(self, tenant: str) -> bool:
        return _text(await self.redis.hget(self.user_key(tenant), "paused")) == "1"  # type: ignore[misc]

    async def erased_since(self, tenant: str, since: float) -> bool:
        """True when the user was erased at or after `since` (a worker's start time for an entry)."""
        at = await self.redis.get(self.erased_key(tenant))
        return at is not None and float(at) >= since

    async def conversation_count(self, tenant: str) -> int:
        return int(await self.redis.scard(f"{self.user_key(tenant)}:convs"))  # type: ignore[misc]

    # erasure --------------------------------------------------------------
    async def erase(self, tenant: str, *, group: str, dead_letter_stream: str, tombstone_ttl_s: int) -> int:
        """Removes the user's raw conversations, registry entry, stream entries (pending ones too) and their errors.

        Sets the erasure tombstone first, so a worker that is processing one of this user's entries
        right now sees it before committing and discards its result. Returns stream entries removed.
        """
        await self.redis.set(self.erased_key(tenant), f"{time.time():.6f}", ex=tombstone_ttl_s)
        conv_ids = [_text(c) for c in await self.redis.smembers(f"{self.user_key(tenant)}:convs")]  # type: ignore[misc]
        keys = [self.conv_key(tenant, c) for c in conv_ids]
        user = self.user_key(tenant)
        await self.redis.delete(*keys, f"{user}:convs", f"{user}:responses", f"{user}:feedback", user)
        removed = await self._drop_entries(self.stream, tenant, group)
        return removed + await self._drop_entries(dead_letter_stream, tenant, None)

    async def _drop_entries(self, stream: str, tenant: str, group: str | None) -> int:
        removed, start = 0, "-"
        while True:
            batch = await self.redis.xrange(stream, min=start, max="+", count=500)
            if not batch:
                return removed
            ids = [eid for eid, fields in batch if _text((fields or {}).get(b"tenant")) == tenant]
            if ids:
                if group is not None:
                    await self.redis.xack(stream, group, *ids)  # type: ignore[arg-type]
                removed += int(await self.redis.xdel(stream, *ids))  # type: ignore[arg-type]
                await self.redis.hdel(self.errors_key, *ids)  # type: ignore[arg-type,misc]  # an error can quote the text
            start = "(" + _text(batch[-1][0])


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)
