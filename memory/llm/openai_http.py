"""`LLM` over an OpenAI-compatible HTTP server (vLLM's `vllm.entrypoints.openai.api_server`).

Failure policy, so that callers see three kinds of error and nothing else:
- connect errors, 5xx and 429 are retried with exponential backoff, then raise `LLMUnavailable`;
- a request that does not answer within `timeout_s` raises `LLMTimeout` at once (the server did get it,
  so a retry would only pile more work onto a server that is already slow);
- other 4xx (bad model name, prompt too long) are the caller's fault and raise `LLMError` unretried.

With `json_schema`, the schema goes in `response_format` (vLLM 0.32 silently ignores the old
`guided_json` field), and the returned text is checked to parse as JSON: the server constrains the
tokens, so the only way it does not parse is a cut at `max_tokens`, which raises `LLMError`.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from memory.llm import ChatMessage, Completion, LLMError, LLMTimeout, LLMUnavailable, TruncatedJSON

# Statuses worth a retry: the server is overloaded or restarting, not rejecting the request itself.
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# A Retry-After longer than this is not waited for: the caller's own timeout matters more.
_MAX_RETRY_AFTER_S = 10.0
_SCHEMA_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_-]")


class OpenAIHTTPLLM:
    """Chat completions against `<base_url>/v1/chat/completions`."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        retries: int = 2,
        *,
        backoff_s: float = 0.5,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.model_name = model
        self._timeout_s = timeout_s
        self._retries = retries
        self._backoff_s = backoff_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            base_url=_server_root(base_url),
            headers=headers,
            timeout=httpx.Timeout(timeout_s),
            transport=transport,
        )

    async def complete(
        self,
        messages: list[ChatMessage],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        json_schema: dict[str, Any] | None = None,
    ) -> Completion:
        body = self._body(messages, max_tokens, temperature)
        if json_schema is not None:
            body["response_format"] = _response_format(json_schema)
        try:
            # httpx's read timeout is per chunk; this bounds the whole answer.
            async with asyncio.timeout(self._timeout_s), self._post(body) as response:
                payload = await response.aread()
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise LLMTimeout(f"{self.model_name}: no answer within {self._timeout_s:g} s") from exc
        except httpx.TransportError as exc:
            raise LLMUnavailable(f"{self.model_name}: answer broke off: {exc!r}") from exc
        return _completion(payload, json_schema is not None, max_tokens)

    async def stream(
        self,
        messages: list[ChatMessage],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
    ) -> AsyncIterator[str]:
        body = self._body(messages, max_tokens, temperature)
        body["stream"] = True
        async with self._post(body) as response:
            try:
                async for line in response.aiter_lines():
                    data = _sse_data(line)
                    if data == "[DONE]":
                        return
                    delta = _delta(data) if data is not None else None
                    if delta:
                        yield delta
            except httpx.TimeoutException as exc:
                raise LLMTimeout(f"{self.model_name}: stream stalled for {self._timeout_s:g} s") from exc
            except httpx.TransportError as exc:
                # Tokens were already yielded, so a retry would repeat them: report, don't retry.
                raise LLMUnavailable(f"{self.model_name}: stream broke off: {exc!r}") from exc

    async def healthy(self) -> bool:
        """True when the server answers and serves this model."""
        try:
            response = await self._client.get("/v1/models", timeout=min(self._timeout_s, 5.0))
        except httpx.HTTPError:
            return False
        if response.status_code != 200:
            return False
        served = {entry.get("id") for entry in response.json().get("data", [])}
        return self.model_name in served

    async def aclose(self) -> None:
        await self._client.aclose()

    def _body(self, messages: list[ChatMessage], max_tokens: int, temperature: float) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "messages": [m.model_dump() for m in messages],
            "max_tokens": max_tokens,
            "temperature": temperature,
        }

    @asynccontextmanager
    async def _post(self, body: dict[str, Any]) -> AsyncIterator[httpx.Response]:
        """Sends with retries; yields a 200 response whose body is not read yet."""
        for attempt in range(self._retries + 1):
            last_try = attempt == self._retries
            request = self._client.build_request("POST", "/v1/chat/completions", json=body)
            try:
                response = await self._client.send(request, stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if last_try:
                    if isinstance(exc, httpx.ConnectTimeout):
                        raise LLMTimeout(f"{self.model_name}: connect timed out: {exc!r}") from exc
                    raise LLMUnavailable(
                        f"{self.model_name}: cannot connect to {self._client.base_url}: {exc!r}"
                    ) from exc
                await asyncio.sleep(self._backoff(attempt, None))
                continue
            except httpx.TimeoutException as exc:
                raise LLMTimeout(f"{self.model_name}: no answer within {self._timeout_s:g} s") from exc
            except httpx.TransportError as exc:
                raise LLMUnavailable(f"{self.model_name}: transport error: {exc!r}") from exc
            try:
                if response.status_code == 200:
                    yield response
                    return
                await response.aread()
                detail = _error_detail(response)
                if response.status_code not in _RETRY_STATUSES:
                    raise LLMError(f"{self.model_name}: HTTP {response.status_code}: {detail}")
                if last_try:
                    raise LLMUnavailable(
                        f"{self.model_name}: HTTP {response.status_code} after {attempt + 1} tries: {detail}"
                    )
                retry_after = response.headers.get("retry-after")
            finally:
                await response.aclose()
            await asyncio.sleep(self._backoff(attempt, retry_after))

    def _backoff(self, attempt: int, retry_after: str | None) -> float:
        if retry_after is not None:
            try:
                return min(float(retry_after), _MAX_RETRY_AFTER_S)
            except ValueError:
                pass  # an HTTP date: fall back to our own schedule
        # Jitter so that several workers hitting one restarting server do not retry in lockstep.
        return self._backoff_s * (2**attempt) * (0.5 + random.random() / 2)


def _server_root(base_url: str) -> str:
    """Accepts both `http://host:8000` and the OpenAI-style `http://host:8000/v1`."""
    root = base_url.rstrip("/")
    return root.removesuffix("/v1")


def _response_format(schema: dict[str, Any]) -> dict[str, Any]:
    name = _SCHEMA_NAME_CHARS.sub("_", str(schema.get("title", "response")))[:64] or "response"
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}


def _completion(raw: bytes, expect_json: bool, max_tokens: int) -> Completion:
    try:
        payload = json.loads(raw)
        choice = payload["choices"][0]
        text = choice["message"].get("content") or ""
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise LLMError(f"malformed completion payload: {raw[:200]!r}") from exc
    if expect_json:
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            if choice.get("finish_reason") == "length":
                raise TruncatedJSON(
                    f"structured output is not valid JSON (cut at max_tokens={max_tokens}; bound arrays with "
                    f"maxItems): {text[:200]!r}",
                    text,
                ) from exc
            raise LLMError(f"structured output is not valid JSON: {text[:200]!r}") from exc
    usage = payload.get("usage") or {}
    return Completion(
        text=text,
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
    )


def _sse_data(line: str) -> str | None:
    """The payload of an SSE `data:` line; None for blank separators, other fields, keep-alive comments."""
    if not line.startswith("data:"):
        return None
    return line[len("data:") :].strip()


def _delta(data: str) -> str | None:
    """The content delta in one streamed chunk, if it carries one."""
    try:
        chunk = json.loads(data)
    except json.JSONDecodeError as exc:
        raise LLMError(f"malformed stream chunk: {data[:200]!r}") from exc
    if "error" in chunk:
        # vLLM reports failures that happen after the 200 header as an in-band error event.
        raise LLMError(f"server error mid-stream: {chunk['error']}")
    choices = chunk.get("choices") or []
    if not choices:
        return None  # e.g. a usage-only chunk
    content = (choices[0].get("delta") or {}).get("content")
    return content if isinstance(content, str) else None


def _error_detail(response: httpx.Response) -> str:
    try:
        payload = response.json()
    except ValueError:
        return response.text[:200]
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        return str(error.get("message", error))[:200]
    return str(payload.get("message", payload) if isinstance(payload, dict) else payload)[:200]
