"""`heedful eval selector` on a small file in the pilot format, with the committed models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from selector.data import DEFAULT_DATA_DIR, as_extracted
from selector.evaluate import main

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = (ROOT / DEFAULT_DATA_DIR).resolve()


@pytest.mark.parametrize("memory_form", ["as-written", "extracted", "restated"])
def test_the_table_in_either_memory_form_keeps_the_reference_labels(
    memory_form: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = (DATA_DIR / "pilot_val.jsonl").read_text().splitlines()[:40]
    small = tmp_path / "small.jsonl"
    small.write_text("\n".join(lines) + "\n")
    assert any(as_extracted(json.loads(line)["attribute"]) != json.loads(line)["attribute"] for line in lines)

    args = ["--data", str(small), "--data-dir", str(DATA_DIR), "--models", str(ROOT / "models")]
    main([*args, "--memory-form", memory_form, "--json"])

    doc = json.loads(capsys.readouterr().out)
    assert doc["memory_form"] == memory_form
    assert doc["n"] == 40
    assert doc["rows"]["classifier (committed model)"]["n"] == 40
    # The LLM reference answers are keyed by the file's attribute text: found in either form.
    assert doc["rows"]["reference: gemma-4-31b"]["n"] == 40
