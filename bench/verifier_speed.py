"""Verifier checks per second: ONNX int8 (what the worker runs) vs PyTorch fp32, batch 1 and 32.

    python bench/verifier_speed.py [--pairs 512] [--single 128] [--threads 1]

Pairs are a random sample of the val split (real snippet lengths: partner turn + user turn).
Batch 32 sends 32 pairs per call in sample order, as the worker does with one chunk's
attributes; each backend pads a call's batches to their own longest pair. The PyTorch side
loads the training checkpoint (var/verifier/checkpoint, from `heedful train verifier`).
Writes bench/results/verifier_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from verifier.dataset import DEFAULT_DATA_DIR, build_splits
from verifier.encoding import load_tokenizer, tokenize
from verifier.runtime import Verifier

ROOT = Path(__file__).resolve().parents[1]
MODEL_DIR = ROOT / "models" / "verifier"
CHECKPOINT = ROOT / "var" / "verifier" / "checkpoint"
RESULTS = ROOT / "bench" / "results" / "verifier_speed.json"

Pairs = Sequence[tuple[str, str]]


def torch_scorer(checkpoint: Path, threads: int, max_length: int, pad_id: int) -> Callable[[Pairs], list[float]]:
    import torch

    from verifier.onnx_export import load_checkpoint
    from verifier.torch_scoring import torch_scores

    torch.set_num_threads(threads)
    model = load_checkpoint(checkpoint)
    tokenizer = load_tokenizer(checkpoint / "tokenizer.json", max_length)
    return lambda pairs: torch_scores(model, tokenizer, pairs, pad_id, batch_size=32)


def rate(score: Callable[[Pairs], list[float]], pairs: Pairs, batch: int) -> dict[str, float]:
    """Pairs per second over the whole sample, and the median time per call."""
    calls = [pairs[i : i + batch] for i in range(0, len(pairs), batch)]
    for call in calls[:3]:  # warm-up: first calls allocate buffers
        score(call)
    times = []
    for call in calls:
        start = time.perf_counter()
        score(call)
        times.append(time.perf_counter() - start)
    return {"pairs_per_s": len(pairs) / sum(times), "p50_ms_per_call": 1000 * float(np.median(times))}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=512, help="pairs timed at batch 32")
    parser.add_argument("--single", type=int, default=128, help="pairs timed at batch 1")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--checkpoint", type=Path, default=CHECKPOINT)
    args = parser.parse_args(argv)

    val = build_splits(args.data_dir).val
    sample = [(p.snippet, p.attribute) for p in random.Random(0).sample(val, args.pairs)]
    onnx = Verifier.load(MODEL_DIR, threads=args.threads)
    config = json.loads((MODEL_DIR / "config.json").read_text())
    scorers = {
        "onnx int8": onnx.score,
        "torch fp32": torch_scorer(args.checkpoint, args.threads, config["max_length"], config["pad_id"]),
    }
    rows = []
    for batch, pairs in ((1, sample[: args.single]), (32, sample)):
        for name, score in scorers.items():
            rows.append({"backend": name, "batch": batch, "pairs": len(pairs), **rate(score, pairs, batch)})

    print(f"{'backend':12} {'batch':>5} {'pairs':>6} {'pairs/s':>9} {'p50 ms/call':>12}")
    for r in rows:
        print(f"{r['backend']:12} {r['batch']:5d} {r['pairs']:6d} {r['pairs_per_s']:9.1f} {r['p50_ms_per_call']:12.1f}")
    result = {
        "threads": args.threads,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "loadavg_at_end": list(os.getloadavg()),
        "mean_tokens_per_pair": mean_tokens(sample, config["max_length"]),
        "rows": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


def mean_tokens(pairs: Pairs, max_length: int) -> float:
    tokenizer = load_tokenizer(MODEL_DIR / "tokenizer.json", max_length)
    return float(np.mean([len(e.ids) for e in tokenize(tokenizer, pairs)]))


if __name__ == "__main__":
    main()
