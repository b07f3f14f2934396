"""Picks the LLM backend: a vLLM server when a URL is configured, else SmolLM2 in-process."""

from __future__ import annotations

from pathlib import Path

from memory.llm import LLM
from memory.llm.openai_http import OpenAIHTTPLLM


def build_llm(
    url: str | None,
    model: str,
    api_key: str | None,
    timeout_s: float,
    retries: int,
    cache_dir: Path,
    threads: int,
    adapter_dir: Path | None = None,
) -> LLM:
    """`model` names the model on the server; the embedded backend always runs SmolLM2-135M-Instruct.

    `cache_dir` (e.g. `<data_dir>/models/smollm2`) holds the embedded model's converted weights;
    `adapter_dir` a LoRA adapter merged into them (models/extractor).
    """
    if url:
        return OpenAIHTTPLLM(url, model, api_key=api_key, timeout_s=timeout_s, retries=retries)
    # Imported here so a process that talks to a server never pays for (or needs) the in-process model.
    from memory.llm.embedded import EmbeddedLLM

    return EmbeddedLLM(cache_dir, threads=threads, adapter_dir=adapter_dir)
