"""Who is calling: an app (API key, may act for any user of its app) or one end user (short-lived token).

API keys are stored as SHA-256 hashes in Redis; a key is shown once, when created. User tokens are
HS256 JWTs (PyJWT) naming the app and the user, good only for that user's own memories.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from typing import Literal

import jwt
from redis.asyncio import Redis

from memory.conversations import tenant_id

KEY_PREFIX = "hfk_"
TOKEN_AUDIENCE = "heedful:user"


class AuthError(Exception):
    """Missing or invalid credentials (401)."""


@dataclass(frozen=True)
class Principal:
    kind: Literal["app", "user"]
    app_id: str
    user_id: str | None = None  # set for user tokens

    def tenant_for(self, user_id: str) -> str | None:
        """The tenant this principal may act on for `user_id`, or None if it may not."""
        if self.kind == "user" and user_id != self.user_id:
            return None
        return tenant_id(self.app_id, user_id)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeys:
    def __init__(self, redis: Redis, prefix: str, configured: dict[str, str] | None = None) -> None:
        self._redis = redis
        self._hash_key = f"{prefix}:apikeys"
        self._configured = configured or {}  # sha256 hex -> app id, from settings

    async def create(self, app_id: str, name: str = "") -> str:
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        record = json.dumps({"app_id": app_id, "name": name, "created_at": time.time()})
        await self._redis.hset(self._hash_key, hash_key(key), record)  # type: ignore[misc]
        return key

    async def add_hashed(self, digest: str, app_id: str, name: str = "") -> None:
        record = json.dumps({"app_id": app_id, "name": name, "created_at": time.time()})
        await self._redis.hset(self._hash_key, digest, record)  # type: ignore[misc]

    async def app_for(self, key: str) -> str | None:
        digest = hash_key(key)
        if digest in self._configured:
            return self._configured[digest]
        record = await self._redis.hget(self._hash_key, digest)  # type: ignore[misc]
        return json.loads(record)["app_id"] if record else None

    async def revoke(self, key: str) -> bool:
        return bool(await self._redis.hdel(self._hash_key, hash_key(key)))  # type: ignore[misc]


class UserTokens:
    def __init__(self, secret: str, ttl_s: int) -> None:
        self._secret = secret
        self.ttl_s = ttl_s

    def issue(self, app_id: str, user_id: str) -> tuple[str, int]:
        expires = int(time.time()) + self.ttl_s
        claims = {"sub": user_id, "app": app_id, "aud": TOKEN_AUDIENCE, "exp": expires, "iat": int(time.time())}
        return jwt.encode(claims, self._secret, algorithm="HS256"), expires

    def verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(token, self._secret, algorithms=["HS256"], audience=TOKEN_AUDIENCE)
        except jwt.ExpiredSignatureError as exc:
            raise AuthError("user token expired: ask the app for a new one") from exc
        except jwt.InvalidTokenError as exc:
            raise AuthError("invalid user token") from exc
        return Principal(kind="user", app_id=str(claims["app"]), user_id=str(claims["sub"]))


async def authenticate(authorization: str | None, keys: ApiKeys, tokens: UserTokens) -> Principal:
    """`Authorization: Bearer <app key or user token>`."""
    if not authorization or not authorization.lower().startswith("bearer "):
        raise AuthError("missing credentials: send 'Authorization: Bearer <api key or user token>'")
    credential = authorization[7:].strip()
    if credential.startswith(KEY_PREFIX):
        app_id = await keys.app_for(credential)
        if app_id is None:
            raise AuthError("unknown API key")
        return Principal(kind="app", app_id=app_id)
    return tokens.verify(credential)
