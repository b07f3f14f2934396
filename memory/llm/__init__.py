"""The one LLM interface used by extraction, selection and generation.

Backends: `memory.llm.openai_http.OpenAIHTTPLLM` (a vLLM OpenAI-compatible server) and
`memory.llm.embedded.EmbeddedLLM` (SmolLM2-135M-Instruct in-process, the embedded default).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal, Protocol

from pydantic import BaseModel


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


class Completion(BaseModel):
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


class LLMError(Exception):
    """The model could not answer; the caller decides whether to retry later."""


class LLMUnavailable(LLMError):
    """The model server refused the connection or answered 5xx after all retries."""


class LLMTimeout(LLMError):
    """The model server did not answer within the configured timeout."""


class TruncatedJSON(LLMError):
    """Structured output stopped at max_tokens before the JSON closed; `text` keeps what was produced,
    so a caller whose items are independent (extraction) can keep the complete ones."""

    def __init__(self, message: str, text: str) -> None:
        super().__init__(message)
        self.text = text


class LLM(Protocol):
    model_name: str

    async def complete(
        self,
        messages: list[ChatMessage],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        json_schema: dict[str, Any] | None = None,
    ) -> Completion:
        """One answer. With `json_schema` the backend constrains output to it where it can."""
        ...

    def stream(
        self,
        messages: list[ChatMessage],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
    ) -> AsyncIterator[str]:
        """Yields text deltas as the model produces them."""
        ...

    async def aclose(self) -> None: ...
