"""build_llm: a URL selects the vLLM client, no URL the in-process model (loaded lazily, not here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

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


async def test_extraction_runs_on_the_tuned_adapter_by_default(tmp_path: Path) -> None:
    from service.wiring import build_extractor_llm
    from tests.conftest import test_settings

    settings = test_settings(tmp_path)
    generator = build_llm(None, "ignored", None, 5.0, 1, tmp_path / "smollm2", 2)
    tuned = build_extractor_llm(settings, generator)
    assert isinstance(tuned, EmbeddedLLM) and tuned is not generator
    assert tuned._adapter_dir == settings.models_dir / "extractor"

    assert build_extractor_llm(test_settings(tmp_path, extractor="base"), generator) is generator
    with pytest.raises(RuntimeError, match="HEEDFUL_EXTRACTOR=base"):
        build_extractor_llm(test_settings(tmp_path, models_dir=tmp_path), generator)
    await tuned.aclose()
    await generator.aclose()


async def test_a_served_extractor_model_gets_its_own_client(tmp_path: Path) -> None:
    from service.wiring import build_extractor_llm
    from tests.conftest import test_settings

    served = test_settings(tmp_path, llm_url="http://127.0.0.1:8001/v1", llm_model="big-model")
    generator = build_llm(served.llm_url, "big-model", None, 5.0, 1, tmp_path, 2)
    assert build_extractor_llm(served, generator) is generator, "no extractor model named: the generator's"

    lora = build_extractor_llm(served.model_copy(update={"extractor_llm_model": "extractor"}), generator)
    assert isinstance(lora, OpenAIHTTPLLM) and lora.model_name == "extractor"
    await lora.aclose()
    await generator.aclose()
