"""Injected parts, as `Annotated` aliases the routes declare."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Header, Query, Request

from memory.conversations import Identifier
from service.auth import Principal, authenticate
from service.errors import Forbidden, NotFound, RateLimited, Unprocessable
from service.wiring import Components


async def get_components(request: Request) -> Components:
    # async on purpose: FastAPI runs a plain `def` dependency in its thread pool, a thread hop per request
    components: Components = request.app.state.components
    return components


ComponentsDep = Annotated[Components, Depends(get_components)]


async def get_principal(
    components: ComponentsDep,
    authorization: Annotated[str | None, Header(description="Bearer <API key or user token>")] = None,
) -> Principal:
    principal = await authenticate(authorization, components.keys, components.tokens)
    await enforce_rate_limit(components, principal)
    return principal


async def enforce_rate_limit(components: Components, principal: Principal) -> None:
    """A fixed one-minute window per app key and per user token, counted in Redis (shared by all replicas).

    User tokens are counted under a pseudonym, so the counter names no one and needs no erasure.
    """
    limit = components.settings.rate_limit_per_minute
    who = (
        f"app:{principal.app_id}"
        if principal.kind == "app"
        else "user:" + components.conversations.pseudonym(principal.tenant_for(principal.user_id or "") or "")
    )
    window = int(time.time() // 60)
    key = f"{components.settings.key_prefix}:rate:{who}:{window}"
    async with components.redis.pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.expire(key, 120)
        count, _ = await pipe.execute()
    if int(count) > limit:
        raise RateLimited(f"over {limit} requests per minute for this credential; retry in the next minute")


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_app(principal: PrincipalDep) -> Principal:
    if principal.kind != "app":
        raise Forbidden("this route needs an app API key, not a user token")
    return principal


AppDep = Annotated[Principal, Depends(get_app)]


async def resolve_tenant(principal: Principal, user_id: str | None, components: Components) -> tuple[str, str]:
    """(user id, tenant) the caller may act on; 404 for unknown users and for other users alike."""
    user = user_id or principal.user_id
    if user is None:
        raise Unprocessable("user_id is required with an app API key", loc=("query", "user_id"))
    tenant = principal.tenant_for(user)
    if tenant is None or not await components.conversations.known(tenant):
        raise NotFound(f"no user {user!r} in this app")
    return user, tenant


UserQuery = Annotated[
    Identifier | None, Query(description="the app's user id; optional with a user token (defaults to its user)")
]


async def get_tenant(principal: PrincipalDep, components: ComponentsDep, user_id: UserQuery = None) -> tuple[str, str]:
    return await resolve_tenant(principal, user_id, components)


TenantDep = Annotated[tuple[str, str], Depends(get_tenant)]
