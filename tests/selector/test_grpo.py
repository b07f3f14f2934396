"""GRPO training parts: the two rewards, the training set (no val prompt in it), the configs, the eval subset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from memory.model import Memory
from selector.annotators import Judged
from selector.evaluate import EvalGroup, item_subset
from selector.grpo import (
    CONFIG_DIR,
    FORMAT_PARTIAL,
    NUM_GENERATIONS,
    GRPORunConfig,
    agreement_reward,
    build_dataset,
    format_reward,
)
from selector.llm import final_answer, messages_for


def said(text: str) -> list[dict[str, str]]:
    """A completion as TRL passes it for a conversational dataset."""
    return [{"role": "assistant", "content": text}]


def test_agreement_reward_pays_only_for_the_human_label() -> None:
    completions = [
        said("It changes the advice.\nAnswer: YES"),
        said("Unrelated.\nAnswer: NO"),
        said("Unrelated.\nAnswer: NO"),
        said("I am not sure what to say."),
        "Answer: yes",  # plain-text datasets pass strings
    ]
    assert agreement_reward(completions, label=[1, 1, 0, 0, 1]) == [1.0, 0.0, 1.0, 0.0, 1.0]


def test_format_reward_wants_the_final_answer_line() -> None:
    completions = [
        said("The trip is in winter, so it matters.\nAnswer: NO"),
        said("**Answer:** YES"),
        said("Answer: YES\nBut I could be wrong about that."),  # a YES/NO, not as the last line
        said("no idea, maybe"),
        said("It depends on the weather."),
    ]
    assert format_reward(completions) == [1.0, 1.0, FORMAT_PARTIAL, FORMAT_PARTIAL, 0.0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("Reason.\nAnswer: YES\n", True), ("Answer - no", False), ("Answer: YES\nmore text", None), ("", None)],
)
def test_final_answer(text: str, expected: bool | None) -> None:
    assert final_answer(text) is expected


def write_pilot(path: Path, prompt_index: int, prompt: str, labels: list[int]) -> None:
    rows = [
        {
            "prompt_index": prompt_index,
            "sample_index": i // 3,
            "attribute": f"attribute {i}",
            "prompt_text": prompt,
            "label": y,
        }
        for i, y in enumerate(labels)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_training_set_is_the_llm_backend_prompt_and_never_holds_a_val_prompt(tmp_path: Path) -> None:
    train, val = tmp_path / "train.jsonl", tmp_path / "val.jsonl"
    write_pilot(train, 0, "How do bats find insects?", [1, 0, 0, 0, 1, 0])
    # The val prompt also appears in the train file (as in the weak sources): the split is by prompt text.
    leaked = {"prompt_index": 4, "sample_index": 9, "attribute": "a", "prompt_text": "Write a design doc.", "label": 1}
    with train.open("a") as f:
        f.write(json.dumps(leaked) + "\n")
    write_pilot(val, 4, "Write a design doc.", [1, 0, 0])

    rows = build_dataset(train, [val], examples=None, positive_share=None, seed=0)

    assert len(rows) == 6
    assert all("design doc" not in m["content"] for r in rows for m in r["prompt"])
    expected = [m.model_dump() for m in messages_for("How do bats find insects?", "attribute 0")]
    assert expected in [r["prompt"] for r in rows]
    assert sorted(r["label"] for r in rows) == [0, 0, 0, 0, 1, 1]


def test_positive_share_balances_the_draw(tmp_path: Path) -> None:
    train, val = tmp_path / "train.jsonl", tmp_path / "val.jsonl"
    write_pilot(train, 0, "How do bats find insects?", [1, 1, 1] + [0] * 17)
    write_pilot(val, 4, "Write a design doc.", [1])

    rows = build_dataset(train, [val], examples=6, positive_share=0.5, seed=0)

    assert [r["label"] for r in rows].count(1) == 3
    assert len(rows) == 6
    assert rows == build_dataset(train, [val], examples=6, positive_share=0.5, seed=0)  # fixed by the seed


def test_configs_load_and_the_paper_one_is_128_prompts_by_5() -> None:
    paper = GRPORunConfig.load(CONFIG_DIR / "paper-qwen3-4b.json")
    cpu = GRPORunConfig.load(CONFIG_DIR / "cpu-smollm2-135m.json")

    assert paper.prompts_per_step == 128
    assert paper.num_train_epochs == 15
    assert paper.model == "Qwen/Qwen3-4B"
    assert cpu.lora_rank == 8  # vLLM (CPU) serves up to --max-lora-rank 8
    assert cpu.per_device_train_batch_size % NUM_GENERATIONS == 0
    assert cpu.threads == 1
    assert cpu.max_minutes is not None and cpu.max_minutes < 60


def test_unknown_config_keys_are_refused(tmp_path: Path) -> None:
    raw = json.loads((CONFIG_DIR / "cpu-smollm2-135m.json").read_text())
    (tmp_path / "bad.json").write_text(json.dumps(raw | {"num_generation": 4}))
    with pytest.raises(ValueError, match="num_generation"):
        GRPORunConfig.load(tmp_path / "bad.json")


def test_eval_subset_is_fixed_and_keeps_labels_with_their_items() -> None:
    groups = [
        EvalGroup(
            s,
            "p",
            [Memory.new(f"u{s}", f"m{s}-{i}") for i in range(10)],
            np.array([i % 2 for i in range(10)]),
            [Judged(i % 2, 3, i) for i in range(10)],  # each item's vote count tells it apart
        )
        for s in range(3)
    ]
    subset = item_subset(groups, 12)

    assert sum(len(g.memories) for g in subset) == 12
    again = item_subset(groups, 12)
    assert [[m.id for m in g.memories] for g in subset] == [[m.id for m in g.memories] for g in again]
    for g in subset:
        assert [int(m.text.split("-")[1]) % 2 for m in g.memories] == g.labels.tolist()
        assert [int(m.text.split("-")[1]) for m in g.memories] == [v.said_relevant for v in g.votes or []]
    assert item_subset(groups, 0) is groups
