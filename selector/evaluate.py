"""The paper's Table 3 on the pilot val split: every selector backend against the human labels.

    python -m selector.evaluate [--data FILE] [--json] [--seeds 0,1,2] [--llm-rows base,grpo [--write-card]]

Each user x prompt in the file becomes one `select` call over that user's attributes, stored as
Memory objects with their embeddings precomputed (as the store holds them), so the numbers come
from the same code path /respond runs. Reference rows come from data/relevance/llm_labels where
those models answered the same items, and from the file's vote counts: what one human annotator scores
(selector.annotators). Trained rows are repeated over seeds (val is one prompt:
F1 moves by about +-0.08 between seeds, FINDINGS).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from memory.embeddings import Embedder, stored_memories
from memory.model import Memory
from selector import Selection, Selector
from selector.annotators import ONE_ANNOTATOR, Judged, against_other_annotators, judged, one_annotator_vs_majority
from selector.calibration import rule_from_dict
from selector.data import DEFAULT_DATA_DIR, MEMORY_FORMS
from selector.metrics import BinaryMetrics, binary_metrics
from selector.train import BILINEAR_RANK, TUNED_ENCODER_EPOCHS, TrainConfig

REFERENCE_MODELS = {
    "gpt-5.4": "gpt-5.4.jsonl",
    "claude-sonnet-4-6": "claude-sonnet-4-6.jsonl",
    "gemma-4-31b": "google_gemma-4-31b-it.jsonl",
    "llama-3.3-70b": "meta-llama_llama-3.3-70b-instruct.jsonl",
}
# Paper Table 3 (its human-labelled test items; not comparable item for item, shown for scale).
PAPER_F1 = {
    "bm25": 0.243,
    "embedding": 0.384,
    "best zero-shot LLM": 0.515,
    "RoBERTa classifier": 0.606,
    "GRPO Qwen3-4B": 0.641,
}


@dataclass(frozen=True)
class EvalGroup:
    sample_index: int
    prompt: str
    memories: list[Memory]
    labels: np.ndarray
    votes: list[Judged] | None = None  # each item's annotator votes, when the file gives them (selector.annotators)


def load_groups(path: Path, embedder: Embedder, memory_form: str = "as-written") -> list[EvalGroup]:
    """One group per user × prompt, each attribute given as a memory in `memory_form` (selector.data.MEMORY_FORMS:
    "extracted" as the extractor stores memories, "The user is vegetarian." -> "is vegetarian", what /respond
    sees; "restated" that with the subject put back)."""
    by_sample: dict[int, list[dict[str, object]]] = {}
    with path.open() as f:
        for line in f:
            r = json.loads(line)
            by_sample.setdefault(int(r["sample_index"]), []).append(r)
    groups = []
    for sample, rows in sorted(by_sample.items()):
        texts = [MEMORY_FORMS[memory_form](str(r["attribute"])) for r in rows]
        memories = stored_memories(f"sample-{sample}", texts, embedder)
        labels = np.array([int(r["label"]) for r in rows])  # type: ignore[call-overload]
        votes = [judged(r) for r in rows]
        known = None if None in votes else [v for v in votes if v is not None]
        groups.append(EvalGroup(sample, str(rows[0]["prompt_text"]), memories, labels, known))
    return groups


async def predict(selector: Selector, groups: list[EvalGroup]) -> np.ndarray:
    out = []
    for g in groups:
        chosen = {s.memory.id for s in await selector.select(g.prompt, g.memories) if s.relevant}
        out.append(np.array([m.id in chosen for m in g.memories]))
    return np.concatenate(out)


def evaluate(selector: Selector, groups: list[EvalGroup]) -> BinaryMetrics:
    return binary_metrics(np.concatenate([g.labels for g in groups]), asyncio.run(predict(selector, groups)))


def all_votes(groups: list[EvalGroup]) -> list[Judged] | None:
    """Every item's votes in the groups' order, or None when the file does not give them for every item."""
    if any(g.votes is None for g in groups):
        return None
    return [v for g in groups for v in g.votes or []]


def reference_rows(groups: list[EvalGroup], labels_dir: Path) -> dict[str, BinaryMetrics | None]:
    """Each reference LLM on the items it answered (None: it has no answers for these items)."""
    out: dict[str, BinaryMetrics | None] = {}
    for name, file in REFERENCE_MODELS.items():
        answers: dict[tuple[int, str], bool] = {}
        with (labels_dir / file).open() as f:
            for line in f:
                r = json.loads(line)
                for item in r["items"]:
                    for text in {form(item["attribute"]) for form in MEMORY_FORMS.values()}:  # any memory form
                        answers[(int(r["sample_index"]), text)] = bool(item["relevant"])
        pairs = [
            (label, answers[(g.sample_index, m.text)])
            for g in groups
            for m, label in zip(g.memories, g.labels, strict=True)
            if (g.sample_index, m.text) in answers
        ]
        out[name] = binary_metrics(np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])) if pairs else None
    return out


def baseline_selectors(models_dir: Path, embedder: Embedder) -> dict[str, Selector]:
    from selector import build
    from selector.embedding import EmbeddingSelector

    baselines = json.loads((models_dir / "selector" / "baselines.json").read_text())
    return {
        "bm25": build("bm25", models_dir),
        "embedding": build("embedding", models_dir, embedder),
        "embedding + top-share rule": EmbeddingSelector(
            embedder, rule_from_dict(baselines["embedding_top_share"]["rule"])
        ),
    }


@dataclass(frozen=True)
class Variant:
    name: str
    config: TrainConfig  # trained once per seed, with the seed replaced


ALL_SOURCES = ("human", "stage2", "task6", "prefeval")
VARIANTS = (
    Variant(f"classifier (bilinear-{BILINEAR_RANK} head, all sources)", TrainConfig(ALL_SOURCES)),
    # The prompt encoder fine-tuned with the head (~30x the training time): better held-out ranking, lost a
    # plain match (selector.train).
    Variant(
        f"classifier (tuned prompt encoder, bilinear-{BILINEAR_RANK} head, all sources)",
        TrainConfig(ALL_SOURCES, encoder_epochs=TUNED_ENCODER_EPOCHS),
    ),
    # Both again with a near miss among each PrefEval question's negatives (selector.data).
    Variant(
        f"classifier (tuned prompt encoder, PrefEval near misses, bilinear-{BILINEAR_RANK} head, all sources)",
        TrainConfig(ALL_SOURCES, encoder_epochs=TUNED_ENCODER_EPOCHS, prefeval_near_misses=True),
    ),
    Variant(
        f"classifier (bilinear-{BILINEAR_RANK} head, PrefEval near misses, all sources)",
        TrainConfig(ALL_SOURCES, prefeval_near_misses=True),
    ),
    # Trained on each attribute as the selector is served it, a statement about "The user" (selector.train).
    Variant(
        f"classifier (bilinear-{BILINEAR_RANK} head, all sources, as served)",
        TrainConfig(ALL_SOURCES, statement_form=True),
    ),
    Variant("classifier (logistic head, all sources)", TrainConfig(ALL_SOURCES, rank=0)),
    # The bilinear term without its own decay: better here, but it lost plain matches (selector.head).
    Variant(
        f"classifier (bilinear-{BILINEAR_RANK} head, decay 0.05, all sources)",
        TrainConfig(ALL_SOURCES, interaction_decay=0.05),
    ),
    Variant(f"classifier (bilinear-{BILINEAR_RANK} head, no PrefEval)", TrainConfig(("human", "stage2", "task6"))),
    Variant(f"classifier (bilinear-{BILINEAR_RANK} head, human only)", TrainConfig(("human",))),
)


def chosen_variants(fragments: str) -> list[Variant]:
    """The variant named exactly (names hold commas), else the variants whose names hold one of the
    comma-separated fragments; none given: every variant but the tuned prompt encoder's, which takes
    minutes per seed (8 fine-tunes) and runs only when named."""
    exact = [v for v in VARIANTS if v.name == fragments.strip()]
    if exact:
        return exact
    wanted = [w for w in fragments.split(",") if w]
    if not wanted:
        return [v for v in VARIANTS if not v.config.encoder_epochs]
    return [v for v in VARIANTS if any(w in v.name for w in wanted)]


def seed_rows(
    args: argparse.Namespace, embedder: Embedder, groups: list[EvalGroup], seeds: list[int]
) -> dict[str, list[np.ndarray]]:
    """Retrain each variant per seed (cheap: a head over cached embeddings); its choices on the groups' items,
    one array per seed."""
    from selector.classifier import ClassifierSelector
    from selector.data import held_out_prompts
    from selector.train import (
        DEFAULT_CACHE,
        PairEmbeddings,
        all_examples,
        near_miss_embed,
        runtime_config,
        train_classifier,
    )

    held_out = held_out_prompts(args.data_file)
    out: dict[str, list[np.ndarray]] = {}
    for variant in chosen_variants(args.variants):
        embed = near_miss_embed(variant.config.prefeval_near_misses, args.models / "embedder")
        examples = all_examples(args.data_dir, held_out, variant.config, [args.data_file], embed)
        emb = PairEmbeddings.build(args.models / "embedder", examples, DEFAULT_CACHE, variant.config.prompt_tokens)
        for seed in seeds:
            config = replace(variant.config, seed=seed)
            with tempfile.TemporaryDirectory() as tmp:
                trained = train_classifier(args.data_dir, held_out, emb, config, Path(tmp), embed)
                (Path(tmp) / "config.json").write_text(json.dumps(runtime_config(trained.rule, config)))
                selector = ClassifierSelector.load(Path(tmp), embedder)
                out.setdefault(variant.name, []).append(asyncio.run(predict(selector, groups)))
    return out


LLM_ROWS = {
    "base": "SmolLM2-135M (llm backend)",
    "grpo": "SmolLM2-135M + GRPO LoRA (llm backend)",
}


def item_subset(groups: list[EvalGroup], n: int, seed: int = 0) -> list[EvalGroup]:
    """A fixed seeded sample of `n` items across all groups (0: every item), grouped as before."""
    items = [(gi, mi) for gi, g in enumerate(groups) for mi in range(len(g.memories))]
    if n <= 0 or n >= len(items):
        return groups
    keep = set(random.Random(seed).sample(items, n))
    out = []
    for gi, g in enumerate(groups):
        idx = [mi for mi in range(len(g.memories)) if (gi, mi) in keep]
        if idx:
            votes = None if g.votes is None else [g.votes[i] for i in idx]
            out.append(EvalGroup(g.sample_index, g.prompt, [g.memories[i] for i in idx], g.labels[idx], votes))
    return out


async def _select_all(
    selector: Selector, groups: list[EvalGroup], close: Callable[[], Awaitable[None]]
) -> list[Selection]:
    """Each group's selections in its memories' order."""
    out: list[Selection] = []
    try:
        for g in groups:
            by_id = {s.memory.id: s for s in await selector.select(g.prompt, g.memories)}
            out += [by_id[m.id] for m in g.memories]
    finally:
        await close()
    return out


def llm_rows(args: argparse.Namespace, groups: list[EvalGroup]) -> dict[str, dict[str, float]]:
    """The `llm` backend on the embedded SmolLM2, without and with the GRPO adapter (one generation per item)."""
    import time

    from memory.extractor_train import BASE_CACHE
    from memory.llm.embedded import EmbeddedLLM
    from selector.llm import SCORE_UNPARSED, LLMSelector

    subset = item_subset(groups, args.llm_items)
    labels = np.concatenate([g.labels for g in subset])
    out: dict[str, dict[str, float]] = {}
    for key in args.llm_rows.split(","):
        adapter = args.adapter if key == "grpo" else None
        llm = EmbeddedLLM(BASE_CACHE, threads=args.llm_threads, adapter_dir=adapter)
        selector = LLMSelector(llm, max_tokens=args.llm_max_tokens)
        started = time.monotonic()
        chosen = asyncio.run(
            _select_all(selector, subset, llm.aclose)
        )  # one loop: the selector's semaphore lives in it
        predicted = [s.relevant for s in chosen]
        parsed = [s.score != SCORE_UNPARSED for s in chosen]
        metrics = binary_metrics(labels, np.array(predicted)).as_dict()
        out[LLM_ROWS[key]] = {
            **metrics,
            "parsable": float(np.mean(parsed)),
            "human_rate": float(labels.mean()),
            "minutes": round((time.monotonic() - started) / 60, 1),
        }
    return out


TABLE_COLUMNS = ("accuracy", "precision", "recall", "f1", "selection_rate")


def mean_sd(runs: list[BinaryMetrics]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key in TABLE_COLUMNS:
        values = [getattr(r, key) for r in runs]
        out[key] = statistics.fmean(values)
        out[f"{key}_sd"] = statistics.stdev(values) if len(values) > 1 else 0.0
    out["seeds"] = len(runs)
    return out


def render(rows: dict[str, dict[str, float] | None], human_rate: float, data: Path, memory_form: str) -> str:
    lines = [
        f"Items: {data} · memories {memory_form} · human selection rate {human_rate:.3f}",
        "",
        "| backend | accuracy | precision | recall | F1 | selection rate |",
        "|---|---|---|---|---|---|",
    ]
    for name, m in rows.items():
        lines.append(f"| {name} | no labels on these items | | | | |" if m is None else _row(name, m, TABLE_COLUMNS))
    return "\n".join(lines)


def render_against_others(rows: dict[str, dict[str, float]]) -> str:
    lines = [
        "Against the other annotators (one annotator left out, in expectation over which; a tie counts half):",
        "",
        "| who | precision | recall | F1 | selection rate |",
        "|---|---|---|---|---|",
    ]
    return "\n".join(lines + [_row(name, m, TABLE_COLUMNS[1:]) for name, m in rows.items()])


def _row(name: str, m: dict[str, float], columns: Sequence[str]) -> str:
    cells = [f"{m[k]:.3f}" + (f" ± {m[k + '_sd']:.3f}" if k + "_sd" in m else "") for k in columns]
    suffix = f" ({int(m['seeds'])} seeds)" if "seeds" in m else ""
    return f"| {name}{suffix} | " + " | ".join(cells) + " |"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Selector evaluation table (paper Table 3 layout).")
    parser.add_argument("--data", dest="data_file", type=Path, default=DEFAULT_DATA_DIR / "pilot_val.jsonl")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="training data for seed reruns")
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument(
        "--memory-form",
        choices=tuple(MEMORY_FORMS),
        default="as-written",
        help="memories as the file writes them ('The user is ...'), as the extractor stores them ('is ...'), "
        "or that restated ('The user is ...')",
    )
    parser.add_argument("--seeds", default="", help="comma-separated seeds to retrain the classifier variants with")
    parser.add_argument(
        "--variants",
        default="",
        help="a variant's whole name, or comma-separated name fragments: retrain the variants they match "
        "(default: all but the tuned prompt encoder)",
    )
    parser.add_argument("--llm-rows", default="", help="comma-separated: base, grpo (embedded SmolLM2, slow)")
    parser.add_argument("--llm-items", type=int, default=0, help="a fixed seeded sample of this many items (0: all)")
    parser.add_argument("--llm-max-tokens", type=int, default=48, help="completion budget (the GRPO training one)")
    parser.add_argument("--llm-threads", type=int, default=1)
    parser.add_argument("--adapter", type=Path, default=Path("models/selector-grpo"))
    parser.add_argument("--write-card", action="store_true", help="merge the llm rows into the adapter's card")
    parser.add_argument("--json", action="store_true", help="print one JSON object keyed by backend")
    parser.add_argument("--out-json", type=Path, help="also write the JSON here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    embedder = Embedder.load(args.models / "embedder", threads=2)
    groups = load_groups(args.data_file, embedder, args.memory_form)
    labels = np.concatenate([g.labels for g in groups])
    from selector import build

    committed: dict[str, Selector] = baseline_selectors(args.models, embedder)
    committed["classifier (committed model)"] = build("classifier", args.models, embedder)
    predicted = {name: asyncio.run(predict(s, groups)) for name, s in committed.items()}
    rows: dict[str, dict[str, float] | None] = {
        name: binary_metrics(labels, chosen).as_dict() for name, chosen in predicted.items()
    }
    seeded = seed_rows(args, embedder, groups, [int(s) for s in args.seeds.split(",")]) if args.seeds else {}
    for name, runs in seeded.items():
        rows[name] = mean_sd([binary_metrics(labels, chosen) for chosen in runs])
    measured = llm_rows(args, groups) if args.llm_rows else {}
    rows.update(measured)
    if measured:  # minutes of generation: never lose them to a later error
        print(json.dumps(measured), file=sys.stderr)
    if measured and args.write_card:
        from selector.grpo_card import merge_eval, write_card

        command = " ".join(["heedful eval selector", *(sys.argv[1:] if argv is None else argv)])
        merge_eval(args.adapter, measured, {"command": command, "max_tokens": args.llm_max_tokens})
        write_card(args.adapter)
    for name, metrics in reference_rows(groups, args.data_dir / "llm_labels").items():
        rows[f"reference: {name}"] = metrics.as_dict() if metrics else None
    votes = all_votes(groups)
    # How people agree on the same items: one annotator against the majority, and every committed backend and
    # one annotator against the other annotators' label (selector.annotators).
    others: dict[str, dict[str, float]] = {}
    if votes is not None:
        rows[f"reference: {ONE_ANNOTATOR} (own vote in the majority)"] = one_annotator_vs_majority(votes).as_dict()
        others = {ONE_ANNOTATOR: against_other_annotators(votes).as_dict()}
        others |= {name: against_other_annotators(votes, chosen).as_dict() for name, chosen in predicted.items()}
        others |= {name: mean_sd([against_other_annotators(votes, c) for c in runs]) for name, runs in seeded.items()}
    table = render(rows, float(labels.mean()), args.data_file, args.memory_form)
    if others:
        table += "\n\n" + render_against_others(others)
    if measured and args.llm_items:
        rate = next(iter(measured.values()))["human_rate"]
        table += f"\n\nllm rows: a fixed sample of {args.llm_items} items (seed 0), human rate {rate:.3f} on them."
    doc = {
        "data": str(args.data_file),
        "memory_form": args.memory_form,
        "human_selection_rate": float(labels.mean()),
        "n": len(labels),
        "rows": rows,
        "against_other_annotators": others,
    }
    if args.out_json:
        args.out_json.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps(doc, indent=2) if args.json else table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
