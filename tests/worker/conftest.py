"""Worker test fixtures: the real embedded extractor the service runs by default, SmolLM2 with the committed
LoRA adapter (loaded once per session, on one torch thread so it does not fight the rest of the test process
for two cores), and settings that make retries quick."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from memory.llm.embedded import EmbeddedLLM, convert_packaged_gguf
from service.settings import Settings
from tests.conftest import test_settings

ROOT = Path(__file__).resolve().parents[2]
MODEL_CACHE = Path(os.environ.get("HEEDFUL_TEST_SMOLLM2_CACHE", ROOT / "var" / "models" / "smollm2"))

# quick retries: a failed entry is reclaimed after 300 ms instead of a minute
QUICK_RETRIES: dict[str, Any] = {
    "llm_threads": 1,
    "worker_block_ms": 100,
    "worker_claim_idle_ms": 300,
    "worker_max_attempts": 3,
}


@pytest.fixture(scope="session")
def model_cache() -> Path:
    """The converted SmolLM2 weights the service uses (converted once per machine, reused after)."""
    return convert_packaged_gguf(MODEL_CACHE)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Overrides the suite's settings for this folder: same isolation, quick retries."""
    return test_settings(tmp_path, **QUICK_RETRIES)


@pytest.fixture(scope="session")
def llm(model_cache: Path) -> Iterator[EmbeddedLLM]:
    # Sync fixture: EmbeddedLLM runs on its own thread and is not tied to one event loop.
    model = EmbeddedLLM(model_cache, threads=1, adapter_dir=ROOT / "models" / "extractor")
    yield model
    asyncio.run(model.aclose())
