"""/v1/memories: what heedful remembers about a user, which the user (or their app) can see and change."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field, StringConstraints

from memory.conversations import Text
from memory.model import Evidence, Memory, MemoryKind, MemoryStatus
from memory.phrasing import as_statement
from memory.store import MemoryFilter
from service.deps import ComponentsDep, TenantDep
from service.erasure import ErasureReport, erase_user
from service.errors import NotFound, Unprocessable

router = APIRouter(prefix="/v1/memories", tags=["memories"])

EXPORT_PAGE = 500


class MemoryOut(BaseModel):
    id: str
    user_id: str
    text: str
    kind: MemoryKind
    status: MemoryStatus
    evidence: list[Evidence]
    confidence: float
    verifier_score: float | None
    supersedes: list[str]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, memory: Memory, user_id: str) -> MemoryOut:
        return cls.model_validate({**memory.model_dump(), "user_id": user_id})


class MemoryList(BaseModel):
    memories: list[MemoryOut]
    next_cursor: str | None


class MemoryEdit(BaseModel):
    text: Annotated[Text, StringConstraints(min_length=1, max_length=500, strip_whitespace=True)] | None = None
    status: Literal["active", "disabled"] | None = Field(default=None, description="disable: never used again")


class Export(BaseModel):
    user_id: str
    memories: list[MemoryOut]


@router.get("", response_model=MemoryList)
async def list_memories(
    tenant: TenantDep,
    components: ComponentsDep,
    status: MemoryStatus | None = None,
    kind: MemoryKind | None = None,
    q: Annotated[str | None, Query(max_length=200, description="words the memory must contain")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> MemoryList:
    user_id, tid = tenant
    filters = MemoryFilter(status=status, kind=kind, text=q)
    page = await components.store.page(tid, filters, limit=limit, cursor=cursor, with_vectors=False)
    return MemoryList(memories=[MemoryOut.of(m, user_id) for m in page.memories], next_cursor=page.next_cursor)


@router.get("/export", response_model=Export)
async def export_memories(tenant: TenantDep, components: ComponentsDep, response: Response) -> Export:
    user_id, tid = tenant
    memories: list[MemoryOut] = []
    cursor = None
    while True:
        page = await components.store.page(tid, limit=EXPORT_PAGE, cursor=cursor, with_vectors=False)
        memories += [MemoryOut.of(m, user_id) for m in page.memories]
        if (cursor := page.next_cursor) is None:
            break
    response.headers["Content-Disposition"] = 'attachment; filename="memories.json"'
    return Export(user_id=user_id, memories=memories)


@router.get("/{memory_id}", response_model=MemoryOut)
async def get_memory(memory_id: str, tenant: TenantDep, components: ComponentsDep) -> MemoryOut:
    user_id, tid = tenant
    memory = await components.store.get(tid, memory_id)
    if memory is None:
        raise NotFound(f"no memory {memory_id!r} for this user")
    return MemoryOut.of(memory, user_id)


@router.patch("/{memory_id}", response_model=MemoryOut)
async def edit_memory(memory_id: str, edit: MemoryEdit, tenant: TenantDep, components: ComponentsDep) -> MemoryOut:
    user_id, tid = tenant
    if edit.text is None and edit.status is None:
        raise Unprocessable("nothing to change: send 'text' and/or 'status'", loc=("body",))
    changes: dict[str, object] = {}
    if edit.status is not None:
        changes["status"] = edit.status
    if edit.text is not None:
        changes["text"] = edit.text
        changes["embedding"], changes["statement_embedding"] = await components.embed(
            [edit.text, as_statement(edit.text)]
        )
    memory = await components.store.update(tid, memory_id, **changes)
    if memory is None:
        raise NotFound(f"no memory {memory_id!r} for this user")
    await components.audit.record("edit", components.conversations.pseudonym(tid), [memory_id])
    return MemoryOut.of(memory, user_id)


@router.delete("/{memory_id}", status_code=204)
async def delete_memory(memory_id: str, tenant: TenantDep, components: ComponentsDep) -> Response:
    _, tid = tenant
    if not await components.store.delete(tid, memory_id):
        raise NotFound(f"no memory {memory_id!r} for this user")
    await components.audit.record("delete", components.conversations.pseudonym(tid), [memory_id])
    return Response(status_code=204)


@router.delete("", response_model=ErasureReport)
async def erase_all(tenant: TenantDep, components: ComponentsDep) -> ErasureReport:
    """Erases everything heedful holds about the user: memories, raw conversations, queued entries."""
    _, tid = tenant
    return await erase_user(components, tid)
