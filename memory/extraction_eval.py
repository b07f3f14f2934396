"""`heedful eval extraction`: the worker's extraction on held-out MSC windows against the crowdworkers' persona
statements, for the untuned embedded model, the LoRA-tuned one, and a vLLM server when one is configured.

Each window (consecutive turns of a val dialogue, one speaker as USER) goes through the real `Extractor`
(chunk, constrained JSON, per-attribute parse, grounding in user turns, confidence cut), the verifier gate
(`--gate verifier`, the default: the real ONNX verifier, one revision by the same model for a flagged attribute,
then drop) and `merge`, as in the worker (`--gate none` leaves the gate out). Measured:

- precision / recall: a stored memory matches a human statement when their MiniLM cosine is at least
  MATCH_SIMILARITY, against either the crowdworker's sentence ("I have two jobs.") or its third-person form
  ("has two jobs"); matching is one-to-one, greedy by similarity, micro-averaged over windows;
- evidence in a user turn: share of the attributes the model proposed (before grounding drops the rest)
  whose evidence turns are all USER turns;
- empty kept empty: share of windows whose USER turns reveal nothing (no human statement) that end with
  no memory;
- duplicates after merge: share of stored memories with another memory of the same window at cosine
  >= MERGE_SIMILARITY or with the same normalized text;
- failed: windows whose call raised (e.g. JSON cut at max_tokens): they store nothing.

    heedful eval extraction [--data DIR] [--json] [--limit 30] [--write]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from memory.embeddings import Embedder
from memory.extraction import Extractor, parse
from memory.extractor_train import (
    DEFAULT_DATA_DIR,
    DEFAULT_OUT,
    EVAL_END,
    EVAL_START,
    REPO_ROOT,
    Window,
    eval_windows,
    load_dialogues,
)
from memory.gate import AttributeGate
from memory.llm import LLM, ChatMessage, Completion, LLMError
from memory.merge import MERGE_SIMILARITY, merge
from memory.model import MemoryStatus, normalize_text

# The paper's merge threshold (Appendix B): a memory and a human statement at or above it are "the same
# attribute". Random statement pairs from MSC score below 0.41 at the 99th percentile; a sentence and its
# own third-person rewrite score 0.86 at the median.
MATCH_SIMILARITY = MERGE_SIMILARITY
DEFAULT_LIMIT = 30
DEFAULT_WINDOW_TURNS = 4
DOC_PATH = REPO_ROOT / "docs" / "evaluation.md"


class RecordingLLM:
    """Passes calls through to an LLM and keeps what it answered, so the raw proposals can be scored."""

    def __init__(self, llm: LLM) -> None:
        self.llm = llm
        self.model_name = llm.model_name
        self.answers: list[str] = []

    async def complete(
        self,
        messages: list[ChatMessage],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        json_schema: dict[str, Any] | None = None,
    ) -> Completion:
        completion = await self.llm.complete(
            messages, max_tokens=max_tokens, temperature=temperature, json_schema=json_schema
        )
        self.answers.append(completion.text)
        return completion

    def stream(
        self, messages: list[ChatMessage], *, max_tokens: int = 256, temperature: float = 0.0
    ) -> AsyncIterator[str]:
        return self.llm.stream(messages, max_tokens=max_tokens, temperature=temperature)

    async def aclose(self) -> None:
        await self.llm.aclose()


@dataclass
class WindowResult:
    window: Window
    memories: list[tuple[str, list[int]]] = field(default_factory=list)  # stored text, evidence turns
    proposed: int = 0  # attributes the model returned that parse
    proposed_on_user_turns: int = 0
    refined: int = 0  # flagged by the verifier, revised, then accepted
    dropped: int = 0  # flagged by the verifier and dropped
    answers: list[str] = field(default_factory=list)  # the model's raw output
    error: str | None = None
    seconds: float = 0.0

    def details(self, model: str) -> dict[str, Any]:
        return {
            "model": model,
            "window": self.window.window_id,
            "turns": [f"[{i}] {role.upper()}: {text}" for i, role, text in self.window.turns],
            "human": [g.persona for g in self.window.gold],
            "memories": [text for text, _ in self.memories],
            "answers": self.answers,
            "error": self.error,
        }


async def run(
    llm: LLM, windows: Sequence[Window], embedder: Embedder, max_tokens: int, gate: AttributeGate | None = None
) -> list[WindowResult]:
    recorder = RecordingLLM(llm)
    extractor = Extractor(recorder, max_tokens=max_tokens)
    results = []
    for window in windows:
        result = WindowResult(window)
        started = time.perf_counter()
        recorder.answers.clear()
        extraction_answers: list[str] = []
        conversation = window.conversation()
        try:
            report = await extractor.extract(conversation)
            extraction_answers = list(recorder.answers)  # the gate's revisions are not proposals
            candidates = report.candidates
            if gate is not None:
                outcome = await gate.review(candidates, conversation, extractor)
                candidates, result.refined, result.dropped = outcome.accepted, outcome.refined, outcome.dropped
        except LLMError as exc:
            result.error = str(exc)[:200]
        else:
            vectors = embedder.embed([c.text for c in candidates]) if candidates else np.zeros((0, embedder.dim))
            stored = merge("eval", [(c, v.tolist()) for c, v in zip(candidates, vectors, strict=True)], [])
            result.memories = [
                (m.text, sorted({t for e in m.evidence for t in e.turn_ids}))
                for m in stored
                if m.status is MemoryStatus.active
            ]
        user_turns = {i for i, role, _ in window.turns if role == "user"}
        result.answers = list(recorder.answers)
        for answer in extraction_answers or recorder.answers:
            attributes, _ = parse(answer)
            result.proposed += len(attributes)
            result.proposed_on_user_turns += sum(
                1 for a in attributes if a.evidence_turns and set(a.evidence_turns) <= user_turns
            )
        result.seconds = time.perf_counter() - started
        results.append(result)
    return results


def score(results: Sequence[WindowResult], embedder: Embedder, threshold: float = MATCH_SIMILARITY) -> dict[str, Any]:
    matched = stored = gold = on_gold_turn = duplicates = 0
    empty_windows = empty_kept = 0
    for r in results:
        texts = [t for t, _ in r.memories]
        stored += len(texts)
        gold += len(r.window.gold)
        if not r.window.gold:
            empty_windows += 1
            empty_kept += not texts
        if not texts:
            continue
        mem = embedder.embed(texts)
        duplicates += _duplicates(texts, mem)
        if not r.window.gold:
            continue
        raw = embedder.embed([g.persona for g in r.window.gold])
        third = embedder.embed([g.statement for g in r.window.gold])
        similarity = np.maximum(mem @ raw.T, mem @ third.T)
        for m, g in _greedy_pairs(similarity, threshold):
            matched += 1
            on_gold_turn += bool(set(r.memories[m][1]) & set(r.window.gold[g].evidence_turns))
    proposed = sum(r.proposed for r in results)
    precision = matched / stored if stored else 0.0
    recall = matched / gold if gold else 0.0
    return {
        "windows": len(results),
        "failed": sum(1 for r in results if r.error),
        "human_statements": gold,
        "memories": stored,
        "matched": matched,
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "proposed": proposed,
        "evidence_in_user_turn": sum(r.proposed_on_user_turns for r in results) / proposed if proposed else None,
        "matched_on_gold_turn": on_gold_turn / matched if matched else None,
        "empty_windows": empty_windows,
        "empty_kept_empty": empty_kept / empty_windows if empty_windows else None,
        "duplicates_after_merge": duplicates / stored if stored else 0.0,
        "verifier_refined": sum(r.refined for r in results),
        "verifier_dropped": sum(r.dropped for r in results),
        "seconds_per_window": sum(r.seconds for r in results) / len(results) if results else 0.0,
        "threshold": threshold,
    }


def _greedy_pairs(similarity: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    pairs: list[tuple[int, int]] = []
    used_m: set[int] = set()
    used_g: set[int] = set()
    order = np.dstack(np.unravel_index(np.argsort(-similarity, axis=None), similarity.shape))[0]
    for m, g in order:
        if similarity[m, g] < threshold:
            break
        if m not in used_m and g not in used_g:
            pairs.append((int(m), int(g)))
            used_m.add(int(m))
            used_g.add(int(g))
    return pairs


def _duplicates(texts: list[str], vectors: np.ndarray) -> int:
    """Memories that still have a near-twin among the others after merge."""
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -1.0)
    normalized = [normalize_text(t) for t in texts]
    return sum(
        1
        for i in range(len(texts))
        if similarity[i].max(initial=-1.0) >= MERGE_SIMILARITY or normalized.count(normalized[i]) > 1
    )


def render(rows: dict[str, dict[str, Any]], args: argparse.Namespace) -> str:
    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.0%}"

    lines = [
        f"Val MSC windows of {args.window} turns ({args.limit} at most, one per dialogue, seed {args.seed}); "
        f"match = MiniLM cosine >= {MATCH_SIMILARITY} to the human statement; max_tokens {args.max_tokens}; "
        + ("verifier gate on (as in the worker)." if args.gate == "verifier" else "no verifier gate."),
        "",
        "| model | windows (failed) | human statements | memories | precision | recall | F1 "
        "| evidence in user turn | empty kept empty | duplicates after merge | verifier refined / dropped | s/window |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in rows.items():
        lines.append(
            f"| {name} | {m['windows']} ({m['failed']}) | {m['human_statements']} | {m['memories']} "
            f"| {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {pct(m['evidence_in_user_turn'])} "
            f"| {pct(m['empty_kept_empty'])} of {m['empty_windows']} | {pct(m['duplicates_after_merge'])} "
            f"| {m['verifier_refined']} / {m['verifier_dropped']} | {m['seconds_per_window']:.1f} |"
        )
    return "\n".join(lines)


def write_section(path: Path, body: str) -> None:
    """Replaces the text between the extraction-eval markers in `path` (appending the section if absent)."""
    block = f"{EVAL_START}\n{body}\n{EVAL_END}"
    text = path.read_text() if path.exists() else "# Evaluation\n"
    if EVAL_START in text and EVAL_END in text:
        head, rest = text.split(EVAL_START, 1)
        text = head + block + rest.split(EVAL_END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n## Extraction (stage 1)\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def models(args: argparse.Namespace) -> dict[str, Any]:
    """Name -> a zero-argument factory of the LLM, in table order."""
    from memory.llm.embedded import EmbeddedLLM

    chosen: dict[str, Any] = {}
    if "untuned" in args.models:
        chosen["SmolLM2-135M untuned"] = lambda: EmbeddedLLM(args.base, threads=args.threads)
    if "tuned" in args.models:
        chosen[f"SmolLM2-135M + LoRA ({_display(args.adapter)})"] = lambda: EmbeddedLLM(
            args.base, threads=args.threads, adapter_dir=args.adapter
        )
    if "server" in args.models and args.llm_url:
        from memory.llm.openai_http import OpenAIHTTPLLM

        chosen[f"{args.llm_model} (vLLM)"] = lambda: OpenAIHTTPLLM(args.llm_url, args.llm_model, timeout_s=300)
    return chosen


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


async def evaluate(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    windows = eval_windows(load_dialogues(args.data), args.window, args.limit, args.seed, split=args.split)
    embedder = Embedder.load(args.embedder, threads=1)
    gate = None
    if args.gate == "verifier":
        from verifier.refine import VerifyAndRefine
        from verifier.runtime import Verifier

        gate = VerifyAndRefine(Verifier.load(args.verifier))
    rows: dict[str, dict[str, Any]] = {}
    for name, factory in models(args).items():
        llm = factory()
        try:
            results = await run(llm, windows, embedder, args.max_tokens, gate)
        finally:
            await llm.aclose()
        rows[name] = score(results, embedder)
        if args.details:
            with args.details.open("a", encoding="utf-8") as out:
                out.writelines(json.dumps(r.details(name), ensure_ascii=False) + "\n" for r in results)
    return rows


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    from memory.extraction import EXTRACTION_MAX_TOKENS
    from memory.extractor_train import BASE_CACHE

    parser = argparse.ArgumentParser(prog="heedful eval extraction", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR, help="directory of MSC-format files")
    parser.add_argument("--split", choices=["val", "all"], default="val", help="'all' for data never trained on")
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help="windows to run (the model is slow on CPU)")
    parser.add_argument("--window", type=int, default=DEFAULT_WINDOW_TURNS, help="turns per window")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the numbers as one JSON object")
    parser.add_argument("--write", action="store_true", help=f"write the table into {_display(DOC_PATH)} and the card")
    parser.add_argument("--details", type=Path, help="append each window's turns, answers and memories (JSONL)")
    parser.add_argument("--models", default="untuned,tuned,server", help="comma-separated: untuned, tuned, server")
    parser.add_argument("--adapter", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--base", type=Path, default=BASE_CACHE, help="SmolLM2 safetensors copy (made if missing)")
    parser.add_argument("--embedder", type=Path, default=REPO_ROOT / "models" / "embedder")
    parser.add_argument("--gate", choices=["verifier", "none"], default="verifier", help="the worker's verifier gate")
    parser.add_argument("--verifier", type=Path, default=REPO_ROOT / "models" / "verifier")
    parser.add_argument("--max-tokens", type=int, default=EXTRACTION_MAX_TOKENS)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the embedded model")
    # The CLI's edge: the same variables the service reads through its settings.
    parser.add_argument("--llm-url", default=os.environ.get("HEEDFUL_LLM_URL"), help="default: $HEEDFUL_LLM_URL")
    parser.add_argument("--llm-model", default=os.environ.get("HEEDFUL_LLM_MODEL", "SmolLM2-135M-Instruct"))
    args = parser.parse_args(argv)
    args.models = set(args.models.split(","))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    rows = asyncio.run(evaluate(args))
    table = render(rows, args)
    if args.write:
        command = "heedful eval extraction " + " ".join(argv or [])
        body = f"`{command.strip()}`\n\n{table}"
        write_section(DOC_PATH, body)
        if args.adapter.is_dir() and (args.adapter / "README.md").exists():
            write_section(args.adapter / "README.md", body)
    print(json.dumps({"threshold": MATCH_SIMILARITY, "rows": rows}, indent=2) if args.json else table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
