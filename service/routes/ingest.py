"""POST /v1/conversations: a chat app hands over a conversation; extraction happens later, in a worker."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel

from memory.conversations import Conversation, tenant_id
from memory.metrics import CONVERSATIONS_INGESTED
from service.deps import AppDep, ComponentsDep
from service.errors import PayloadTooLarge

router = APIRouter(tags=["ingest"])


class Accepted(BaseModel):
    status: Literal["queued", "duplicate", "paused"]
    entry_id: str | None
    detail: str


DETAILS = {
    "queued": "queued for extraction",
    "duplicate": "this conversation was already received with the same content; nothing new was queued",
    "paused": "remembering is paused for this user: the conversation was accepted but not stored",
}


@router.post("/v1/conversations", status_code=202, response_model=Accepted)
async def ingest_conversation(conversation: Conversation, app: AppDep, components: ComponentsDep) -> Accepted:
    settings = components.settings
    if len(conversation.messages) > settings.max_messages:
        raise PayloadTooLarge(
            f"{len(conversation.messages)} messages; at most {settings.max_messages} per conversation"
        )
    for i, message in enumerate(conversation.messages):
        if len(message.content) > settings.max_message_chars:
            raise PayloadTooLarge(
                f"message {i} has {len(message.content)} characters; at most {settings.max_message_chars}"
            )
    result = await components.conversations.append(tenant_id(app.app_id, conversation.user_id), conversation)
    if result.status == "queued":
        CONVERSATIONS_INGESTED.inc()
    return Accepted(status=result.status, entry_id=result.entry_id, detail=DETAILS[result.status])
