"""The committed GRPO adapter (models/selector-grpo) on the real SmolLM2-135M, through the `llm` backend.

Uses the converted-weights cache the service uses by default (var/models/smollm2); only the first run on a
machine pays for the GGUF conversion.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from memory.llm.embedded import EmbeddedLLM
from selector.llm import LLMSelector

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = Path(os.environ.get("HEEDFUL_TEST_SMOLLM2_CACHE", ROOT / "var" / "models" / "smollm2"))
ADAPTER = ROOT / "models" / "selector-grpo"
# An item the committed adapter answers with a YES/NO under greedy decoding (checked when it was committed).
# Whether the answer is right is the evaluation's business, not this test's.
PROMPT, ATTRIBUTE = "What is 17 × 23?", "The user enjoys hiking in the mountains."


def test_adapter_is_small_and_servable_by_vllm_cpu() -> None:
    config = json.loads((ADAPTER / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA"
    assert config["r"] <= 8  # vLLM (CPU): --max-lora-rank 8
    assert config["base_model_name_or_path"] == "SmolLM2-135M-Instruct"  # not a path on the training machine
    assert (ADAPTER / "adapter_model.safetensors").stat().st_size < 30e6


async def test_tuned_llm_selector_answers_yes_or_no() -> None:
    llm = EmbeddedLLM(CACHE_DIR, threads=1, adapter_dir=ADAPTER)
    try:
        # The completion budget the adapter was trained with.
        answer = await LLMSelector(llm, max_tokens=48).judge(PROMPT, ATTRIBUTE)
    finally:
        await llm.aclose()
    assert answer is not None
