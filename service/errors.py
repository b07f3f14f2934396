"""Typed errors of the service and their one mapping to HTTP."""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from memory.llm import LLMTimeout, LLMUnavailable
from memory.metrics import ERRORS
from memory.store import StoreUnavailable
from service.auth import AuthError


class NotFound(Exception):
    """A user or memory that does not exist, or that the caller may not see (same answer: 404)."""


class RateLimited(Exception):
    """Too many requests for one credential in the current window (429)."""


class PayloadTooLarge(Exception):
    """Over a configured size limit (413); the message names the limit."""


class Unprocessable(Exception):
    """Well-formed input that does not say enough to act on (422), shaped like a validation error."""

    def __init__(self, message: str, loc: tuple[str, ...] = ("body",)) -> None:
        super().__init__(message)
        self.loc = loc


class Forbidden(Exception):
    """Authenticated, but this kind of credential may not use the route (403)."""


class Conflict(Exception):
    """The request is valid but cannot be done in the resource's current state."""


RETRY_AFTER_S = "5"


class ErrorBody(BaseModel):
    detail: str


# Documented on every router so clients (and the schema fuzzer) know the error shapes.
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "missing or invalid credentials"},
    403: {"model": ErrorBody, "description": "this kind of credential may not use the route"},
    404: {"model": ErrorBody, "description": "unknown user or memory (other users' data included)"},
    413: {"model": ErrorBody, "description": "over a size limit"},
    429: {"model": ErrorBody, "description": "rate limit for this credential; see Retry-After"},
    503: {"model": ErrorBody, "description": "a backing service is unavailable; see Retry-After"},
}


def _error(status: int, message: object, kind: str, headers: dict[str, str] | None = None) -> JSONResponse:
    ERRORS.labels(kind=kind).inc()
    return JSONResponse({"detail": message}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        # Where and what, not the offending input: echoing it back could carry text that cannot be encoded.
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")} for e in exc.errors()
        ]
        return _error(422, errors, "validation")  # type: ignore[arg-type]

    @app.exception_handler(AuthError)
    async def _auth(_: Request, exc: AuthError) -> JSONResponse:
        return _error(401, str(exc), "auth", {"WWW-Authenticate": "Bearer"})

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return _error(404, str(exc), "not_found")

    @app.exception_handler(RateLimited)
    async def _rate_limited(_: Request, exc: RateLimited) -> JSONResponse:
        return _error(429, str(exc), "rate_limited", {"Retry-After": str(60 - int(time.time()) % 60)})

    @app.exception_handler(PayloadTooLarge)
    async def _too_large(_: Request, exc: PayloadTooLarge) -> JSONResponse:
        return _error(413, str(exc), "too_large")

    @app.exception_handler(Unprocessable)
    async def _unprocessable(_: Request, exc: Unprocessable) -> JSONResponse:
        return _error(422, [{"loc": list(exc.loc), "msg": str(exc), "type": "value_error"}], "validation")

    @app.exception_handler(Forbidden)
    async def _forbidden(_: Request, exc: Forbidden) -> JSONResponse:
        return _error(403, str(exc), "forbidden")

    @app.exception_handler(Conflict)
    async def _conflict(_: Request, exc: Conflict) -> JSONResponse:
        return _error(409, str(exc), "conflict")

    @app.exception_handler(RedisConnectionError)
    @app.exception_handler(RedisTimeoutError)
    async def _redis_down(_: Request, exc: Exception) -> JSONResponse:
        message = "the conversation log (Redis) is unavailable: nothing was stored; retry later"
        return _error(503, message, "redis_unavailable", {"Retry-After": RETRY_AFTER_S})

    @app.exception_handler(StoreUnavailable)
    async def _store_down(_: Request, exc: StoreUnavailable) -> JSONResponse:
        message = "the memory store is unavailable; retry later"
        return _error(503, message, "store_unavailable", {"Retry-After": RETRY_AFTER_S})

    @app.exception_handler(LLMUnavailable)
    async def _llm_down(_: Request, exc: LLMUnavailable) -> JSONResponse:
        return _error(503, "the language model is unavailable; retry later", "llm_unavailable", {"Retry-After": "10"})

    @app.exception_handler(LLMTimeout)
    async def _llm_slow(_: Request, exc: LLMTimeout) -> JSONResponse:
        return _error(504, "the language model did not answer in time; retry later", "llm_timeout")
