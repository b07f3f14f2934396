"""How the classifier's head shape and prompt cut rank memories on sets it did not train on.

    python bench/selector_heads.py [--seed 0]

For each variant (a `selector.train.TrainConfig`), out-of-fold by prompt, nothing tuned on val:
- human: mean within-user AUC on the three human train prompts, each scored by a head trained without it;
- task6: the same on gpt-5.4's task6 labels, 4 folds of its 36 prompts;
- prefeval: share of PrefEval questions whose own preference ranks first of four, 4 folds of topics;
- plain: of four plain requests ("Recommend some dog food brands." with "The user has two dogs." among
  eight unrelated memories), how many rank their memory first (head trained on everything);
- val: mean within-user AUC on the pilot val prompt (reporting only).
Within-user AUC is what a per-user decision needs (the rule keeps each user's top share). About a
minute per variant on 2 cores. Writes bench/results/selector_heads.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as `python bench/selector_heads.py`: keep the selector package first
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import json
from collections.abc import Sequence
from dataclasses import asdict, replace

import numpy as np

from memory.embeddings import Embedder
from selector.calibration import mean_within_auc
from selector.data import Example, held_out_prompts, load_pilot, load_training, prompt_key
from selector.train import (
    DEFAULT_CACHE,
    DEFAULT_SOURCES,
    PairEmbeddings,
    TrainConfig,
    fit_head,
    out_of_fold_scores,
    prompt_folds,
    scored_groups,
)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "relevance"
UNRELATED = (
    "The user enjoys hiking in the mountains.",
    "The user's favorite color is blue.",
    "The user lives in Chicago.",
    "The user plays the guitar.",
    "The user supports Manchester United.",
    "The user likes spicy food.",
    "The user is learning Spanish.",
    "The user has a cat.",
)
PLAIN = (
    ("Can you suggest a dinner recipe for tonight?", "The user is vegetarian."),
    ("Recommend some dog food brands.", "The user has two dogs."),
    ("How do I fix a memory leak in my Python web server?", "The user is a backend developer who writes Python."),
    ("Explain how to write a Python decorator.", "The user prefers concise code examples."),
)
SHIPPED = TrainConfig()
VARIANTS = {
    "logistic head": replace(SHIPPED, rank=0),
    f"bilinear-{SHIPPED.rank}, decay 0.05": replace(SHIPPED, interaction_decay=0.05),
    f"bilinear-{SHIPPED.rank}, decay {SHIPPED.interaction_decay} (shipped)": SHIPPED,
    "shipped, whole prompt": replace(SHIPPED, prompt_tokens=None),
}


def topic_folds(prefeval: list[Example], n: int) -> list[set[str]]:
    """PrefEval's questions in `n` folds of whole topics (its groups are `prefeval:<topic>:<i>`)."""
    topics = sorted({e.group.split(":")[1] for e in prefeval})
    return [{prompt_key(e.prompt) for e in prefeval if e.group.split(":")[1] in topics[i::n]} for i in range(n)]


def within_auc(examples: list[Example], scores: np.ndarray) -> float:
    return mean_within_auc(scored_groups(examples, scores))


def measure(config: TrainConfig, everything: list[Example], val: list[Example]) -> dict[str, float]:
    from selector.head import predict

    emb = PairEmbeddings.build(ROOT / "models" / "embedder", everything + val, DEFAULT_CACHE, config.prompt_tokens)

    human = [e for e in everything if e.source == "human"]
    task6 = [e for e in everything if e.source == "task6"]
    prefeval = [e for e in everything if e.source == "prefeval"]
    out = {
        "human": within_auc(*out_of_fold_scores(everything, emb, config, human, prompt_folds(human, None))),
        "task6": within_auc(*out_of_fold_scores(everything, emb, config, task6, prompt_folds(task6, 4, config.seed))),
    }
    pref_examples, pref_scores = out_of_fold_scores(everything, emb, config, prefeval, topic_folds(prefeval, 4))
    by_question: dict[str, list[int]] = {}
    for i, e in enumerate(pref_examples):
        by_question.setdefault(e.group, []).append(i)
    out["prefeval"] = float(
        np.mean([pref_examples[idx[int(np.argmax(pref_scores[idx]))]].label for idx in by_question.values()])
    )

    head = fit_head(everything, emb, config)
    embedder = Embedder.load(ROOT / "models" / "embedder", threads=2)
    plain = 0
    for prompt, memory in PLAIN:
        texts = [memory, *UNRELATED]
        prompt_vector = embedder.embed([prompt], max_tokens=config.prompt_tokens)
        scores = predict(head, np.repeat(prompt_vector, len(texts), axis=0), embedder.embed(texts))
        plain += int(np.argmax(scores) == 0)
    out["plain"] = plain
    out["val"] = within_auc(val, predict(head, *emb.pair(val)))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "selector_heads.json")
    args = parser.parse_args(argv)
    val = load_pilot(args.data / "pilot_val.jsonl")
    everything = load_training(args.data, held_out_prompts(args.data / "pilot_val.jsonl"), set(DEFAULT_SOURCES))
    rows = {name: measure(replace(c, seed=args.seed), everything, val) for name, c in VARIANTS.items()}
    print(f"{'variant':34} {'human':>6} {'task6':>6} {'prefeval top-1':>15} {'plain':>6} {'val':>6}")
    for name, r in rows.items():
        print(
            f"{name:34} {r['human']:6.3f} {r['task6']:6.3f} {r['prefeval']:15.3f} "
            f"{int(r['plain'])}/{len(PLAIN):<4} {r['val']:6.3f}"
        )
    doc = {
        "command": "python bench/selector_heads.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "configs": {name: asdict(replace(c, seed=args.seed)) for name, c in VARIANTS.items()},
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
