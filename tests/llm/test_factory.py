"""build_llm: a URL selects the vLLM client, no URL the in-process model (loaded lazily, not here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from memory.llm.embedded import EmbeddedLLM
from memory.llm.factory import build_llm
from memory.llm.openai_http import OpenAIHTTPLLM


async def test_url_selects_the_http_client(tmp_path: Path) -> None:
    llm = build_llm("http://127.0.0.1:8001/v1", "big-model", "key", 5.0, 1, tmp_path, 2)

    assert isinstance(llm, OpenAIHTTPLLM)
    assert llm.model_name == "big-model"
    await llm.aclose()


async def test_no_url_selects_the_embedded_model_without_loading_it(tmp_path: Path) -> None:
    llm = build_llm(None, "ignored", None, 5.0, 1, tmp_path / "smollm2", 2)

    assert isinstance(llm, EmbeddedLLM)
    assert llm.model_name == "SmolLM2-135M-Instruct"
    assert not (tmp_path / "smollm2").exists()  # nothing converted until first use
    await llm.aclose()


def test_the_http_backend_does_not_import_torch() -> None:
    # The API process budget (DESIGN.md) has no room for torch when the LLM is behind a URL.
    code = (
        "import sys; from pathlib import Path; from memory.llm.factory import build_llm;"
        "build_llm('http://x', 'm', None, 1.0, 0, Path('.'), 1); print('torch' in sys.modules)"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert result.stdout.strip() == "False"
