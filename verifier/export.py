"""Export the trained verifier to int8 ONNX, check it against PyTorch, set the threshold, report.

    python -m verifier.export [--checkpoint var/verifier/checkpoint] [--out models/verifier]

Writes into --out: model.int8.onnx, tokenizer.json, config.json (threshold, max_length),
metrics.json and README.md (the model card); refreshes the results section of docs/verifier.md.
The threshold is set on the val split for unsupported recall >= 0.9, on the int8 model's
own scores, because that is the model the service runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from verifier.card import describe_base, update_docs, write_card
from verifier.config import ONNX_FILE, TOKENIZER_FILE, VerifierConfig
from verifier.dataset import REPO_ROOT, build_splits, count_table
from verifier.evaluate import cross_fitted, evaluate
from verifier.metrics import flagged
from verifier.onnx_export import export_fp32, load_checkpoint, quantize_int8
from verifier.pairs import Pair
from verifier.runtime import Verifier
from verifier.systems import baseline_results, checkpoint_scores
from verifier.train import DEFAULT_OUT

log = logging.getLogger("verifier.export")

DEFAULT_MODEL_DIR = REPO_ROOT / "models" / "verifier"
DOCS = REPO_ROOT / "docs" / "verifier.md"
MAX_ARTIFACT_MB = 30  # the committed model must stay small (issue 4)
BATCH_EFFECT_PAIRS = 256


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m verifier.export", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--data-dir", type=Path, default=None, help="default: the one used for training")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-docs", action="store_true", help="do not touch docs/verifier.md")
    parser.add_argument("--val-limit", type=int, default=0, help="score only this many val pairs (smoke runs)")
    return parser.parse_args(argv)


def build_model_dir(checkpoint: Path, out: Path, training: dict) -> VerifierConfig:
    """Write the int8 model, tokenizer and a provisional config (threshold set later)."""
    out.mkdir(parents=True, exist_ok=True)
    model = load_checkpoint(checkpoint)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "model.fp32.onnx"
        export_fp32(model, fp32)
        quantize_int8(fp32, out / ONNX_FILE)
    shutil.copyfile(checkpoint / TOKENIZER_FILE, out / TOKENIZER_FILE)
    size_mb = (out / ONNX_FILE).stat().st_size / 2**20
    if size_mb > MAX_ARTIFACT_MB:
        raise SystemExit(f"int8 model is {size_mb:.1f} MB, over the {MAX_ARTIFACT_MB} MB budget")
    args = training["args"]
    config = VerifierConfig(
        threshold=0.5,
        max_length=int(args["max_length"]),
        pad_id=int(training["pad_id"]),
        base_model=describe_base(training["base"]),
    )
    config.save(out)
    return config


def score_all(checkpoint: Path, out: Path, val: list[Pair], config: VerifierConfig, threads: int) -> dict:
    """P(supported) on val from the PyTorch fp32 checkpoint and from the int8 ONNX model."""
    texts = [(p.snippet, p.attribute) for p in val]
    tick = time.monotonic()
    torch_fp32 = checkpoint_scores(checkpoint, texts, config.max_length, config.pad_id, threads)
    log.info("torch fp32 scored %d pairs in %.0f s", len(texts), time.monotonic() - tick)
    tick = time.monotonic()
    onnx_int8 = Verifier.load(out, threads=threads).score(texts)
    log.info("onnx int8 scored %d pairs in %.0f s", len(texts), time.monotonic() - tick)
    return {"torch_fp32": torch_fp32, "onnx_int8": onnx_int8}


def agreement(torch_fp32: list[float], onnx_int8: list[float], threshold: float) -> dict[str, float | int]:
    a, b = np.asarray(torch_fp32), np.asarray(onnx_int8)
    flips = flagged(a, threshold) != flagged(b, threshold)
    return {
        "max_abs_score_diff": float(np.max(np.abs(a - b))),
        "mean_abs_score_diff": float(np.mean(np.abs(a - b))),
        "flipped_decisions": int(flips.sum()),
        "pairs": len(a),
    }


def batch_effect(out: Path, val: list[Pair], threads: int, n: int = BATCH_EFFECT_PAIRS) -> dict[str, float | int]:
    """How much a pair's int8 score depends on its batch-mates.

    Dynamic quantization picks activation scales per input tensor, so the same pair can score
    slightly differently alone and in a padded batch; the gate must not depend on that.
    """
    verifier = Verifier.load(out, threads=threads)
    texts = [(p.snippet, p.attribute) for p in random.Random(1).sample(val, min(n, len(val)))]
    batched = np.asarray(verifier.score(texts))
    single = np.asarray([verifier.score([t])[0] for t in texts])
    flips = flagged(batched, verifier.threshold) != flagged(single, verifier.threshold)
    return {"pairs": len(texts), "max_abs_diff": float(np.max(np.abs(batched - single))), "flipped": int(flips.sum())}


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    log.setLevel(logging.INFO)  # the quantizer logs every skipped node at INFO on the root logger
    args = parse_args(argv)
    training = json.loads((args.checkpoint / "training.json").read_text(encoding="utf-8"))
    data_dir = args.data_dir or Path(training["args"]["data_dir"])
    splits = build_splits(data_dir, int(training["args"]["data_seed"]))
    val = random.Random(0).sample(splits.val, args.val_limit) if args.val_limit else splits.val

    config = build_model_dir(args.checkpoint, args.out, training)
    scores = score_all(args.checkpoint, args.out, val, config, args.threads)
    shipped = evaluate("verifier, ONNX int8", val, scores["onnx_int8"])
    config.threshold = shipped.threshold
    config.save(args.out)

    report = {
        "threshold": shipped.threshold,
        "systems": [
            shipped.as_dict(),
            evaluate("verifier, PyTorch fp32 (same threshold)", val, scores["torch_fp32"], shipped.threshold).as_dict(),
            *(result.as_dict() for result in baseline_results(val)),
        ],
        "cross_fitted_int8": cross_fitted(val, scores["onnx_int8"]).as_dict(),
        "onnx_vs_torch": agreement(scores["torch_fp32"], scores["onnx_int8"], shipped.threshold),
        "int8_batch_vs_single": batch_effect(args.out, val, args.threads),
        "counts": count_table(splits),
        "training": training,
        "artifact_mb": (args.out / ONNX_FILE).stat().st_size / 2**20,
    }
    (args.out / "metrics.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    write_card(args.out / "README.md", report)
    if not args.no_docs:
        update_docs(DOCS, report)
    log.info("threshold %.4f; %s", shipped.threshold, shipped.metrics)


if __name__ == "__main__":
    main()
