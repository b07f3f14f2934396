"""`heedful eval verifier`: the trained verifier against the baselines and zero-shot LLMs, on the val pairs.

    heedful eval verifier [--data DIR] [--json] [--llm-pairs 200] [--checkpoint var/verifier/checkpoint]
                          [--write-threshold]

Unsupported is the positive class (the paper's Table 2). On every pair: the int8 ONNX model at its shipped
threshold (models/verifier/config.json) and at the threshold that reaches unsupported recall 0.9 on these pairs;
the PyTorch checkpoint at the shipped threshold, when there is one; word overlap and embedding cosine at that
recall rule and at their best F1 (an oracle). The zero-shot LLM rows (the embedded SmolLM2, and the model at
HEEDFUL_LLM_URL when set) run on a seeded sample stratified by kind, with the ONNX model on the same sample.
`--write-threshold` ships the refit threshold into the model's config.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from verifier.config import CONFIG_FILE, VerifierConfig
from verifier.dataset import DEFAULT_DATA_DIR, DEFAULT_SEED, REPO_ROOT, build_splits
from verifier.evaluate import SystemResult, cross_fitted, evaluate
from verifier.pairs import UNSUPPORTED, Pair
from verifier.runtime import Verifier
from verifier.sources import MSC_DIR
from verifier.systems import baseline_results, checkpoint_scores
from verifier.zero_shot import run_zero_shot, stratified_sample

DEFAULT_MODEL = REPO_ROOT / "models" / "verifier"
DEFAULT_CHECKPOINT = REPO_ROOT / "var" / "verifier" / "checkpoint"  # = verifier.train.DEFAULT_OUT, without torch
REFIT_ROW = "verifier, ONNX int8 (threshold refit)"
DEFAULT_LLM_PAIRS = 200  # the embedded 135M model takes ~2 s per pair on one CPU core
MSC_SUFFIXES = (".txt", ".jsonl")

DATA_HELP = f"""\
a data root laid out like ../shared/data ({MSC_DIR}/session_N/valid.txt, plus DNLI and PersonaExt when
present), or any directory of MSC-format files (*.txt / *.jsonl under it, one dialogue per line:
{{"initial_data_id", "dialog": [{{"id", "text", "persona_text"}}]}}). MSC alone gives every kind: supported,
missing_evidence, other_speaker, task_context, overgeneralization and rule-negated contradiction;
DNLI adds contradiction pairs, PersonaExt supported and overgeneralization pairs. Default: {DEFAULT_DATA_DIR}"""


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    from service.settings import get_settings

    settings = get_settings()
    parser = argparse.ArgumentParser(
        prog="heedful eval verifier",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR, help=DATA_HELP)
    parser.add_argument("--split", choices=["val", "all"], default="val", help="'all' for data never trained on")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="pair building, the split, the LLM sample")
    parser.add_argument("--json", action="store_true", help="print the same numbers as one JSON object")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="the int8 ONNX model directory")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT, help="PyTorch fp32 checkpoint")
    parser.add_argument(
        "--llm-pairs", type=int, default=DEFAULT_LLM_PAIRS, help="stratified sample for the LLM rows (0: no LLM rows)"
    )
    parser.add_argument("--llm-url", default=settings.llm_url, help="an OpenAI-compatible server (HEEDFUL_LLM_URL)")
    parser.add_argument("--llm-model", default=settings.llm_model, help="the model to ask the server for")
    parser.add_argument("--threads", type=int, default=2, help="ONNX, torch and embedded-LLM threads")
    parser.add_argument(
        "--write-threshold",
        action="store_true",
        help="set the model's threshold (its config.json) to the refit one: unsupported recall >= 0.9 on these pairs",
    )
    args = parser.parse_args(argv)
    args.settings = settings
    return args


@contextlib.contextmanager
def data_root(directory: Path) -> Iterator[Path]:
    """A directory `build_splits` reads: `directory` itself when it is a data root, else a staged copy.

    Each MSC-format file found under `directory` is linked in as one session's valid.txt (session numbers only
    seed the random draws), so files need not follow MSC's own layout.
    """
    if (directory / MSC_DIR).is_dir():
        yield directory
        return
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix in MSC_SUFFIXES)
    if not files:
        raise SystemExit(f"no MSC-format files (*.txt, *.jsonl) under {directory}")
    with tempfile.TemporaryDirectory(prefix="verifier-eval-") as tmp:
        for n, path in enumerate(files, 1):
            target = Path(tmp) / MSC_DIR / f"session_{n}" / "valid.txt"
            target.parent.mkdir(parents=True)
            target.symlink_to(path.resolve())
        yield Path(tmp)


def load_pairs(directory: Path, split: str, seed: int) -> list[Pair]:
    with data_root(directory) as root:
        splits = build_splits(root, seed)
    pairs = splits.val if split == "val" else splits.train + splits.val
    labels = {p.label for p in pairs}
    if len(labels) < 2:
        raise SystemExit(f"{len(pairs)} {split} pairs from {directory} hold one label only; try --split all")
    return pairs


def row(result: SystemResult, seconds: float | None = None) -> dict[str, Any]:
    return {**result.as_dict(), "seconds": seconds}


def verifier_rows(
    args: argparse.Namespace, pairs: list[Pair], notes: list[str], timing: dict[str, float]
) -> tuple[list[dict[str, Any]], list[float], float]:
    """ONNX at the shipped and at a refit threshold, PyTorch at the shipped one; the ONNX scores; the threshold."""
    texts = [(p.snippet, p.attribute) for p in pairs]
    started = time.monotonic()
    verifier = Verifier.load(args.model, threads=args.threads)
    onnx = verifier.score(texts)
    timing["verifier, ONNX int8"] = time.monotonic() - started
    shipped = replace(evaluate("verifier, ONNX int8", pairs, onnx, verifier.threshold), rule=_shipped_rule(args))
    refit = evaluate(REFIT_ROW, pairs, onnx)
    rows = [row(shipped, timing["verifier, ONNX int8"]), row(refit)]
    if not (args.checkpoint / "config.json").is_file():
        notes.append(
            f"PyTorch fp32 row skipped: no checkpoint at {_shown(args.checkpoint)} (it is not committed: 90 MB, over "
            "the 30 MB artifact budget); `heedful train verifier` writes it."
        )
        return rows, onnx, verifier.threshold
    training_file = args.checkpoint / "training.json"
    training = json.loads(training_file.read_text(encoding="utf-8")) if training_file.is_file() else {}
    config = VerifierConfig.load(args.model)  # the same tokenizer, unless training.json says otherwise
    max_length = int(training.get("args", {}).get("max_length", config.max_length))
    pad_id = int(training.get("pad_id", config.pad_id))
    started = time.monotonic()
    scores = checkpoint_scores(args.checkpoint, texts, max_length, pad_id, args.threads)
    timing["verifier, PyTorch fp32"] = time.monotonic() - started
    pytorch = replace(evaluate("verifier, PyTorch fp32", pairs, scores, verifier.threshold), rule="shipped (same)")
    rows.append(row(pytorch, timing["verifier, PyTorch fp32"]))
    return rows, onnx, verifier.threshold


def llm_section(
    args: argparse.Namespace, pairs: list[Pair], onnx: list[float], threshold: float, timing: dict[str, float]
) -> dict[str, Any]:
    """The zero-shot rows on a stratified sample, with the ONNX verifier on the same pairs."""
    from memory.llm.factory import build_llm

    indices = stratified_sample(pairs, args.llm_pairs, args.seed)
    sample = [pairs[i] for i in indices]
    onnx_row = replace(
        evaluate("verifier, ONNX int8", sample, [onnx[i] for i in indices], threshold),
        rule=_shipped_rule(args),
    )
    settings = args.settings
    api_key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    cache = settings.data_dir / "models" / "smollm2"
    backends = {"embedded": None, "server": args.llm_url} if args.llm_url else {"embedded": None}
    rows = [row(onnx_row)]
    for where, url in backends.items():
        llm = build_llm(url, args.llm_model, api_key, settings.llm_timeout_s, settings.llm_retries, cache, args.threads)
        name = f"zero-shot {llm.model_name} ({'embedded' if url is None else url})"
        started = time.monotonic()
        rows.append(asyncio.run(run_zero_shot(name, llm, sample)))
        timing[f"zero-shot, {where}"] = time.monotonic() - started
    return {"pairs": len(sample), "seed": args.seed, "kinds": _kind_counts(sample), "systems": rows}


def run(args: argparse.Namespace, command: str) -> dict[str, Any]:
    started = time.monotonic()
    load = os.getloadavg()
    timing: dict[str, float] = {}
    notes: list[str] = []
    pairs = load_pairs(args.data, args.split, args.seed)
    timing["building pairs"] = time.monotonic() - started
    systems, onnx, threshold = verifier_rows(args, pairs, notes, timing)
    tick = time.monotonic()
    systems += [row(result) for result in baseline_results(pairs)]
    timing["baselines"] = time.monotonic() - tick
    llm = None
    if args.llm_pairs > 0:
        llm = llm_section(args, pairs, onnx, threshold, timing)
    else:
        notes.append("Zero-shot LLM rows skipped (--llm-pairs 0).")
    timing["total"] = time.monotonic() - started
    return {
        "command": command,
        "data": str(args.data),
        "split": args.split,
        "seed": args.seed,
        "pairs": len(pairs),
        "unsupported": sum(p.label == UNSUPPORTED for p in pairs),
        "kinds": _kind_counts(pairs),
        "shipped_threshold": threshold,
        "systems": systems,
        "cross_fitted_int8": _cross_fitted(pairs, onnx),
        "llm_sample": llm,
        "notes": notes,
        "seconds": {k: round(v, 1) for k, v in timing.items()},
        "load_average_at_start": [round(x, 2) for x in load],
    }


def write_threshold(model_dir: Path, threshold: float) -> str:
    """Ship the refit threshold: the val split grows when pair kinds are added, and the rule is recall >= 0.9."""
    config = VerifierConfig.load(model_dir)
    old, config.threshold = config.threshold, threshold
    config.save(model_dir)
    return f"Wrote threshold {config.threshold:.4f} (was {old:.4f}) to {_shown(model_dir / CONFIG_FILE)}."


def _cross_fitted(pairs: Sequence[Pair], onnx: Sequence[float]) -> dict[str, Any] | None:
    try:
        return cross_fitted(pairs, onnx).as_dict()
    except ValueError:  # a half of the dialogues without unsupported pairs (tiny --data directories)
        return None


def _shipped_rule(args: argparse.Namespace) -> str:
    return f"shipped ({_shown(args.model / CONFIG_FILE)})"


def _kind_counts(pairs: Sequence[Pair]) -> dict[str, int]:
    return dict(sorted(Counter(p.report_kind for p in pairs).items()))


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def _cell(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def systems_table(rows: Sequence[dict[str, Any]], zero_shot: bool = False) -> str:
    extra = ["parsable", "s/pair"] if zero_shot else []
    header = ["system", "threshold rule", "threshold", "accuracy", "precision", "recall", "F1", "AUC", *extra]
    lines = ["| " + " | ".join(header) + " |", "|---|---|" + "---:|" * (len(header) - 2)]
    for r in rows:
        cells = [r["name"], r["rule"], _cell(r["threshold"], 4)]
        cells += [_cell(r[k]) for k in ("accuracy", "precision", "recall", "f1", "auc")]
        if zero_shot:
            cells += [_cell(r.get("parsable")), _cell(r.get("seconds_per_pair"), 2)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _label(r: dict[str, Any]) -> str:
    return r["name"] + (" (best F1)" if r["rule"].startswith("best") else "")


def kinds_table(rows: Sequence[dict[str, Any]], counts: dict[str, int]) -> str:
    lines = ["| kind | pairs | " + " | ".join(_label(r) for r in rows) + " |", "|---|---:|" + "---:|" * len(rows)]
    for kind, n in counts.items():
        lines.append(f"| {kind} | {n} | " + " | ".join(_cell(r["by_kind"].get(kind)) for r in rows) + " |")
    return "\n".join(lines)


def render(report: dict[str, Any]) -> str:
    seconds = ", ".join(f"{k} {v:.1f} s" for k, v in report["seconds"].items())
    load = " ".join(f"{x:.2f}" for x in report["load_average_at_start"])
    parts = [
        f"Command: {report['command']}",
        f"Pairs: {report['pairs']} ({report['split']} split of {report['data']}, seed {report['seed']}; "
        f"{report['unsupported']} unsupported). Unsupported is the positive class, as in the paper's Table 2.",
        f"Timing: {seconds}; load average at start {load}.",
        "",
        systems_table(report["systems"]),
        "",
        "Per kind: share of negatives flagged (recall), and for `supported` the share kept.",
        "",
        kinds_table(report["systems"], report["kinds"]),
    ]
    cf = report["cross_fitted_int8"]
    if cf is not None:
        parts += [
            "",
            "ONNX int8 with the recall-0.9 threshold chosen on one half of the dialogues and measured on the other "
            f"(both ways): precision {cf['precision']:.3f}, recall {cf['recall']:.3f}, F1 {cf['f1']:.3f}.",
        ]
    llm = report["llm_sample"]
    if llm is not None:
        parts += [
            "",
            f"Zero-shot LLMs on a stratified sample of {llm['pairs']} of these pairs (seed {llm['seed']}), beside the "
            "ONNX verifier on the same pairs. An answer that is neither SUPPORTED nor UNSUPPORTED counts as "
            "supported (not flagged); `parsable` is the share that was one of them.",
            "",
            systems_table(llm["systems"], zero_shot=True),
            "",
            kinds_table(llm["systems"], llm["kinds"]),
        ]
        failed = [r for r in llm["systems"] if r.get("errors")]
        parts += [f"{r['name']}: {r['errors']} calls failed, e.g. {r['first_error']}" for r in failed]
    if report["notes"]:
        parts += ["", *report["notes"]]
    return "\n".join(parts)


def _json_safe(value: Any) -> Any:
    """NaN (an AUC over one class) as null, so the output is strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    report = run(args, " ".join(["heedful eval verifier", *argv]))
    if args.write_threshold:
        [refit] = [r for r in report["systems"] if r["name"] == REFIT_ROW]
        report["notes"].append(write_threshold(args.model, refit["threshold"]))
    print(json.dumps(_json_safe(report), indent=2) if args.json else render(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
