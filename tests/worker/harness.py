"""What the worker tests share besides fixtures: the real model watched, the worker built with it, bounded waits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from memory.llm import LLM, ChatMessage, Completion
from memory.worker import ExtractionWorker
from service.settings import Settings
from service.wiring import Components


def share_model_cache(settings: Settings, cache: Path) -> None:
    """Points a fresh data dir's model cache at the converted weights, so a server start skips the conversion."""
    link = settings.data_dir / "models" / "smollm2"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(cache, target_is_directory=True)


def worker_with(components: Components, llm: LLM, consumer: str = "w1") -> ExtractionWorker:
    """The worker `heedful` would build, extracting with `llm` (the session's model, possibly watched)."""
    return replace(components, llm=llm, extractor_llm=llm).worker(consumer)


class WatchedLLM:
    """The real model, with a record of each call: when one is in flight, and what the model answered."""

    def __init__(self, inner: LLM) -> None:
        self.inner = inner
        self.model_name = inner.model_name
        self.in_flight = 0
        self.entered = asyncio.Event()
        self.answers: list[str] = []

    async def complete(self, messages: list[ChatMessage], **kwargs: Any) -> Completion:
        self.in_flight += 1
        self.entered.set()
        try:
            completion = await self.inner.complete(messages, **kwargs)
        except Exception as exc:  # recorded for the test's failure message, then re-raised unchanged
            self.answers.append(f"<{type(exc).__name__}: {exc}>")
            raise
        finally:
            self.in_flight -= 1
        self.answers.append(completion.text)
        return completion

    def stream(self, messages: list[ChatMessage], **kwargs: Any) -> Any:
        return self.inner.stream(messages, **kwargs)

    async def aclose(self) -> None:
        """The session owns the model; closing a watcher leaves it open."""


def wait_until(condition: Callable[[], bool], timeout_s: float, explain: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not reached within {timeout_s:.0f}s: {explain()}")
        time.sleep(0.05)
