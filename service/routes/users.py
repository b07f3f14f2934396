"""/v1/users/{user_id}: user tokens for the memory page, and pausing what heedful remembers."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from pydantic import BaseModel

from memory.conversations import Identifier, tenant_id
from memory.model import MemoryStatus
from memory.store import MemoryFilter
from service.deps import AppDep, ComponentsDep, PrincipalDep, resolve_tenant

router = APIRouter(prefix="/v1/users", tags=["users"])


class UserToken(BaseModel):
    token: str
    expires_at: datetime


class UserState(BaseModel):
    user_id: str
    paused: bool
    memories: int
    active_memories: int
    conversations: int


@router.post("/{user_id}/token", response_model=UserToken)
async def issue_token(user_id: Identifier, app: AppDep, components: ComponentsDep) -> UserToken:
    """A short-lived token that lets the end user see and manage only their own memories."""
    await components.conversations.register(tenant_id(app.app_id, user_id))
    token, expires = components.tokens.issue(app.app_id, user_id)
    return UserToken(token=token, expires_at=datetime.fromtimestamp(expires, UTC))


@router.get("/{user_id}", response_model=UserState)
async def user_state(user_id: Identifier, principal: PrincipalDep, components: ComponentsDep) -> UserState:
    user, tenant = await resolve_tenant(principal, user_id, components)
    return await _state(components, user, tenant)


@router.post("/{user_id}/pause", response_model=UserState)
async def pause(user_id: Identifier, principal: PrincipalDep, components: ComponentsDep) -> UserState:
    """While paused, conversations are accepted but nothing is stored or extracted from them."""
    user, tenant = await resolve_tenant(principal, user_id, components)
    await components.conversations.set_paused(tenant, True)
    await components.audit.record("pause", components.conversations.pseudonym(tenant))
    return await _state(components, user, tenant)


@router.post("/{user_id}/resume", response_model=UserState)
async def resume(user_id: Identifier, principal: PrincipalDep, components: ComponentsDep) -> UserState:
    user, tenant = await resolve_tenant(principal, user_id, components)
    await components.conversations.set_paused(tenant, False)
    await components.audit.record("resume", components.conversations.pseudonym(tenant))
    return await _state(components, user, tenant)


async def _state(components: ComponentsDep, user: str, tenant: str) -> UserState:
    return UserState(
        user_id=user,
        paused=await components.conversations.paused(tenant),
        memories=await components.store.count(tenant),
        active_memories=await components.store.count(tenant, MemoryFilter(status=MemoryStatus.active)),
        conversations=await components.conversations.conversation_count(tenant),
    )
