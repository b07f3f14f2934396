"""POST /v1/chat/completions: OpenAI-compatible, so an app using the `openai` package points it at heedful.

`user` names the heedful user. The memories used come back in the extension field `heedful`
(`completion.heedful` / `completion.model_extra["heedful"]` in the openai package), and, when
streaming, on the first chunk. Optional `heedful` in the request (openai: `extra_body`) sets
`selector` and `max_memories`.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, StringConstraints

from memory.conversations import Identifier, Text, tenant_id
from memory.llm import LLMError
from service.deps import AppDep, ComponentsDep
from service.respond import Plan, Responder, Turn
from service.routes.respond import MAX_TURNS, stream_error, used_memories

router = APIRouter(tags=["openai-compatible"])


class TextPart(BaseModel):
    type: Literal["text"]
    text: Text


class ChatMessageIn(BaseModel):
    role: Literal["system", "user", "assistant", "developer"]
    content: Annotated[Text, StringConstraints(min_length=1, max_length=20_000)] | list[TextPart]

    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)


class HeedfulOptions(BaseModel):
    selector: Literal["classifier", "llm", "embedding", "bm25"] | None = None
    max_memories: int = Field(default=5, ge=0, le=20)


class ChatCompletionRequest(BaseModel):
    model: str = Field(default="heedful", max_length=200)
    messages: list[ChatMessageIn] = Field(min_length=1, max_length=MAX_TURNS)
    user: Identifier = Field(description="the heedful user id whose memories personalize the answer")
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, ge=1, le=4096)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=4096)
    stream: bool = False
    heedful: HeedfulOptions = HeedfulOptions()


def _turns(messages: list[ChatMessageIn]) -> list[Turn]:
    return [Turn("system" if m.role == "developer" else m.role, m.text()) for m in messages]


def _extension(plan: Plan) -> dict[str, Any]:
    return {
        "response_id": plan.response_id,
        "personalized": plan.personalized,
        "memories": [m.model_dump() for m in used_memories(plan)],
        "notes": plan.notes,
    }


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(
    request: ChatCompletionRequest, app: AppDep, components: ComponentsDep
) -> dict[str, Any] | StreamingResponse:
    tenant = tenant_id(app.app_id, request.user)
    responder = Responder(components)
    plan = await responder.plan(
        tenant, _turns(request.messages), backend=request.heedful.selector, max_memories=request.heedful.max_memories
    )
    await responder.record(tenant, plan)
    max_tokens = request.max_completion_tokens or request.max_tokens or 256
    created = int(time.time())
    completion_id = "chatcmpl-" + plan.response_id.removeprefix("resp_")
    if request.stream:
        chunks = _chunks(responder, plan, completion_id, created, request.model, request.temperature, max_tokens)
        return StreamingResponse(chunks, media_type="text/event-stream")
    text = await responder.generate(plan, temperature=request.temperature, max_tokens=max_tokens)
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": request.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": None,
        "heedful": _extension(plan),
    }


async def _chunks(
    responder: Responder, plan: Plan, cid: str, created: int, model: str, temperature: float, max_tokens: int
) -> AsyncIterator[str]:
    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        body = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""}, heedful=_extension(plan))
    try:
        async for delta in responder.stream(plan, temperature=temperature, max_tokens=max_tokens):
            yield chunk({"content": delta})
    except LLMError as exc:  # headers are sent; the OpenAI stream convention is an `error` object, then the end
        error = stream_error(exc)
        yield f"data: {json.dumps({'error': {'message': error['detail'], 'code': error['status']}})}\n\n"
        yield "data: [DONE]\n\n"
        return
    yield chunk({}, "stop")
    yield "data: [DONE]\n\n"
