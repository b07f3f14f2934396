"""POST /respond: the answer a chat app shows, personalized quietly with the memories that matter.
POST /v1/feedback: how the user rated an answer, kept with the memories it used."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, StringConstraints, model_validator

from memory import metrics
from memory.conversations import Identifier, Text, tenant_id
from memory.llm import LLMError, LLMTimeout
from selector import BACKENDS
from service.deps import AppDep, ComponentsDep
from service.errors import NotFound
from service.respond import Plan, Responder, Turn

router = APIRouter(tags=["respond"])

MAX_TURNS = 200


class ChatTurn(BaseModel):
    role: Literal["user", "assistant", "system"]
    content: Annotated[Text, StringConstraints(min_length=1, max_length=20_000)]


class RespondOptions(BaseModel):
    selector: Literal["classifier", "llm", "embedding", "bm25"] | None = Field(
        default=None, description=f"selector backend, one of {BACKENDS}; default from settings"
    )
    max_memories: int = Field(default=5, ge=0, le=20, description="at most this many memories are used")
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    max_tokens: int = Field(default=256, ge=1, le=4096)
    stream: bool = False
    generate: bool = Field(default=True, description="false: return the selected memories and system prompt only")


class RespondRequest(BaseModel):
    user_id: Identifier
    messages: list[ChatTurn] = Field(min_length=1, max_length=MAX_TURNS)
    options: RespondOptions = RespondOptions()

    @model_validator(mode="after")
    def _ends_with_user(self) -> RespondRequest:
        if self.messages[-1].role != "user":
            raise ValueError("the last message must be the user's (role 'user')")
        return self


class UsedMemory(BaseModel):
    id: str
    text: str
    score: float


class RespondResponse(BaseModel):
    response_id: str
    answer: str | None = Field(description="null in context-only mode (generate: false)")
    personalized: bool = Field(description="false: no memory was relevant (or none could be read): generic answer")
    memories: list[UsedMemory]
    memories_considered: int
    system_prompt: str | None = Field(default=None, description="context-only mode: the prompt to give your LLM")
    notes: list[str]
    timings_ms: dict[str, float]


def used_memories(plan: Plan) -> list[UsedMemory]:
    return [UsedMemory(id=s.memory.id, text=s.memory.text, score=round(s.score, 4)) for s in plan.used]


def as_turns(messages: list[ChatTurn]) -> list[Turn]:
    return [Turn(m.role, m.content) for m in messages]


@router.post("/respond", response_model=RespondResponse)
async def respond(
    request: RespondRequest, app: AppDep, components: ComponentsDep
) -> RespondResponse | StreamingResponse:
    tenant = tenant_id(app.app_id, request.user_id)
    responder = Responder(components)
    o = request.options
    plan = await responder.plan(tenant, as_turns(request.messages), backend=o.selector, max_memories=o.max_memories)
    await responder.record(tenant, plan)
    body = RespondResponse(
        response_id=plan.response_id,
        answer=None,
        personalized=plan.personalized,
        memories=used_memories(plan),
        memories_considered=plan.considered,
        notes=plan.notes,
        timings_ms=plan.timings_ms,
    )
    if not o.generate:
        body.system_prompt = plan.system_prompt
        return body
    if o.stream:
        return StreamingResponse(_events(responder, plan, body, o), media_type="text/event-stream")
    body.answer = await responder.generate(plan, temperature=o.temperature, max_tokens=o.max_tokens)
    body.timings_ms = plan.timings_ms
    return body


async def _events(responder: Responder, plan: Plan, body: RespondResponse, o: RespondOptions) -> AsyncIterator[str]:
    """Server-sent events: `memories` first, then `delta` tokens, then `done` with the timings."""
    yield _sse("memories", body.model_dump(mode="json", exclude={"answer", "system_prompt"}))
    try:
        async for delta in responder.stream(plan, temperature=o.temperature, max_tokens=o.max_tokens):
            yield _sse("delta", {"text": delta})
    except LLMError as exc:  # the 200 is already sent: report the failure in the stream and end it cleanly
        yield _sse("error", stream_error(exc))
        return
    yield _sse("done", {"response_id": plan.response_id, "timings_ms": plan.timings_ms})


def stream_error(exc: LLMError) -> dict[str, object]:
    metrics.ERRORS.labels(kind="llm_stream").inc()
    if isinstance(exc, LLMTimeout):
        return {"status": 504, "detail": "the language model did not answer in time; retry later"}
    return {"status": 503, "detail": "the language model is unavailable; retry later"}


def _sse(event: str, data: object) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


class Feedback(BaseModel):
    user_id: Identifier
    response_id: Annotated[str, StringConstraints(pattern=r"^resp_[0-9a-f]{32}$")]
    rating: int | None = Field(default=None, ge=1, le=5)
    thumbs: Literal["up", "down"] | None = None
    comment: Annotated[Text, StringConstraints(max_length=2000)] | None = None

    @model_validator(mode="after")
    def _rated(self) -> Feedback:
        if self.rating is None and self.thumbs is None:
            raise ValueError("send a rating (1-5) or thumbs ('up' or 'down')")
        return self


class FeedbackStored(BaseModel):
    response_id: str
    memory_ids: list[str]


@router.post("/v1/feedback", status_code=201, response_model=FeedbackStored)
async def feedback(body: Feedback, app: AppDep, components: ComponentsDep) -> FeedbackStored:
    """Stored per user with the memories the response used: raw material for a user-specific reward model."""
    tenant = tenant_id(app.app_id, body.user_id)
    user_key = components.conversations.user_key(tenant)
    record = await components.redis.hget(f"{user_key}:responses", body.response_id)  # type: ignore[misc]
    if record is None:
        raise NotFound(f"no response {body.response_id!r} for user {body.user_id!r}")
    memory_ids = json.loads(record)["memory_ids"]
    entry = {**body.model_dump(exclude={"user_id"}), "memory_ids": memory_ids, "at": time.time()}
    await components.redis.rpush(f"{user_key}:feedback", json.dumps(entry))  # type: ignore[misc]
    return FeedbackStored(response_id=body.response_id, memory_ids=memory_ids)
