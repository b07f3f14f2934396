"""Verifier checks per second: ONNX int8 (what the worker runs) vs PyTorch fp32, batch 1 and 32.

    python bench/verifier.py [--pairs 512] [--single 128] [--threads 1]

Pairs are a random sample of the val split (real snippet lengths: partner turn + user turn).
"calls" rows send `batch` pairs per call in sample order (the issue's "batch 32": 32 checks asked at once);
"sorted" rows send the whole sample in one call. Either way each backend sorts a call's pairs by length and
runs them in batches padded to their own longest pair: ONNX in batches of 8 (`verifier.runtime`, the size
that was fastest per pair here), PyTorch in batches of 32, as the worker's gate does with a batch's
attributes. The PyTorch side
loads the training checkpoint (var/verifier/checkpoint, from `heedful train verifier`); the checkpoint is
not committed (90 MB), so on a fresh clone the PyTorch side runs the same architecture from the bundled base
model with an untrained 2-way head: the same computation, so the same speed, but its scores mean nothing
(the ONNX/PyTorch agreement is measured at export and reported in models/verifier/README.md).
Writes bench/results/verifier.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as `python bench/verifier.py`: this file's folder would shadow the verifier package
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import json
import os
import platform
import random
import time
from collections.abc import Callable, Sequence

import numpy as np

from verifier.dataset import DEFAULT_DATA_DIR, build_splits
from verifier.encoding import load_tokenizer, tokenize
from verifier.runtime import Verifier

ROOT = Path(__file__).resolve().parents[1]
MODEL_DIR = ROOT / "models" / "verifier"
CHECKPOINT = ROOT / "var" / "verifier" / "checkpoint"
RESULTS = ROOT / "bench" / "results" / "verifier.json"

Pairs = Sequence[tuple[str, str]]


def torch_scorer(checkpoint: Path, threads: int, max_length: int, pad_id: int) -> Callable[[Pairs], list[float]]:
    import torch

    from verifier.onnx_export import load_checkpoint
    from verifier.torch_scoring import torch_scores
    from verifier.train import default_base

    torch.set_num_threads(threads)
    if not (checkpoint / "config.json").is_file():
        print(f"no checkpoint at {checkpoint}: timing the same architecture from the base model (speed only)")
        checkpoint = Path(default_base())
    model = load_checkpoint(checkpoint)
    tokenizer = load_tokenizer(MODEL_DIR / "tokenizer.json", max_length)
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


def rate_sorted(score: Callable[[Pairs], list[float]], pairs: Pairs, repeats: int = 3) -> dict[str, float]:
    """All pairs in one call: the runtime sorts them by length and pads each batch to its own longest, as it
    does for a worker batch's attributes. A call of 32 pairs in arrival order (the "calls" rows) sorts only
    within those 32, so its batches pad to longer mixes."""
    score(pairs[:32])  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        score(pairs)
        times.append(time.perf_counter() - start)
    median = float(np.median(times))
    return {"pairs_per_s": len(pairs) / median, "p50_ms_per_call": 1000 * median}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=512, help="pairs timed at batch 32")
    parser.add_argument("--single", type=int, default=128, help="pairs timed at batch 1")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--checkpoint", type=Path, default=CHECKPOINT)
    parser.add_argument("--model", type=Path, default=MODEL_DIR, help="the exported model directory to time")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    val = build_splits(args.data_dir).val
    sample = [(p.snippet, p.attribute) for p in random.Random(0).sample(val, args.pairs)]
    onnx = Verifier.load(args.model, threads=args.threads)
    config = json.loads((args.model / "config.json").read_text())
    scorers = {
        "onnx int8": onnx.score,
        "torch fp32": torch_scorer(args.checkpoint, args.threads, config["max_length"], config["pad_id"]),
    }
    rows = []
    for batch, pairs in ((1, sample[: args.single]), (32, sample)):
        for name, score in scorers.items():
            rows.append(
                {"backend": name, "batch": batch, "mode": "calls", "pairs": len(pairs), **rate(score, pairs, batch)}
            )
    for name, score in scorers.items():
        rows.append(
            {"backend": name, "batch": 32, "mode": "sorted", "pairs": len(sample), **rate_sorted(score, sample)}
        )

    print(f"{'backend':12} {'batch':>5} {'mode':>7} {'pairs':>6} {'pairs/s':>9} {'p50 ms/call':>12}")
    for r in rows:
        print(
            f"{r['backend']:12} {r['batch']:5d} {r['mode']:>7} {r['pairs']:6d} {r['pairs_per_s']:9.1f} "
            f"{r['p50_ms_per_call']:12.1f}"
        )
    result = {
        "command": "python bench/verifier.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "torch_weights": str(args.checkpoint)
        if (args.checkpoint / "config.json").is_file()
        else "base model with an untrained head (speed only)",
        "model": str(args.model),
        "threads": args.threads,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "loadavg_at_end": list(os.getloadavg()),
        "mean_tokens_per_pair": mean_tokens(args.model, sample, config["max_length"]),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


def mean_tokens(model_dir: Path, pairs: Pairs, max_length: int) -> float:
    tokenizer = load_tokenizer(model_dir / "tokenizer.json", max_length)
    return float(np.mean([len(e.ids) for e in tokenize(tokenizer, pairs)]))


if __name__ == "__main__":
    main()
