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


def test_the_table_shows_how_one_annotator_scores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [  # three annotators: all agree on two items, split 2-1 on two more
        {"said": 3, "label": 1},
        {"said": 0, "label": 0},
        {"said": 2, "label": 1},
        {"said": 1, "label": 0},
    ]
    small = tmp_path / "votes.jsonl"
    lines = (DATA_DIR / "pilot_val.jsonl").read_text().splitlines()[: len(rows)]
    with small.open("w") as f:
        for line, r in zip(lines, rows, strict=True):
            item = json.loads(line) | {"label": r["label"], "n_annotators": 3, "human_yes_rate": r["said"] / 3}
            f.write(json.dumps(item) + "\n")

    main(["--data", str(small), "--data-dir", str(DATA_DIR), "--models", str(ROOT / "models"), "--json"])

    doc = json.loads(capsys.readouterr().out)
    own = doc["rows"]["reference: one annotator (own vote in the majority)"]
    # Expected votes: relevant on item 1 (1), item 3 (2/3), item 4 (1/3); the majority marks items 1 and 3.
    assert own["precision"] == pytest.approx((1 + 2 / 3) / 2)
    assert own["recall"] == pytest.approx((1 + 2 / 3) / 2)
    assert own["selection_rate"] == pytest.approx(2 / 4)
    # Against the other two, a 1-1 tie counts half: on item 3 an assenter (2/3) meets a 1-1 tie, the dissenter
    # (1/3) a 2-0 "relevant"; on item 4 the assenter (1/3) meets 0-2, a dissenter (2/3) a 1-1 tie.
    others = doc["against_other_annotators"]["one annotator"]
    tp = 1 + 2 / 3 * 0.5
    fp = 2 / 3 * 0.5 + 1 / 3
    fn = 1 / 3 + 2 / 3 * 0.5
    assert others["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    # Every committed backend is scored against the same leave-one-out labels.
    assert doc["against_other_annotators"]["classifier (committed model)"]["n"] == len(rows)


def test_a_file_without_vote_counts_has_no_annotator_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    small = tmp_path / "no_votes.jsonl"
    lines = (DATA_DIR / "pilot_val.jsonl").read_text().splitlines()[:10]
    small.write_text(
        "".join(json.dumps({k: v for k, v in json.loads(x).items() if k != "n_annotators"}) + "\n" for x in lines)
    )

    main(["--data", str(small), "--data-dir", str(DATA_DIR), "--models", str(ROOT / "models"), "--json"])

    doc = json.loads(capsys.readouterr().out)
    assert not any("annotator" in name for name in doc["rows"])
    assert doc["against_other_annotators"] == {}
