"""Relevance data (prompt, attribute, label) from ../shared/data/relevance, read in place.

Sources and how they become labels:
- pilot_{train,val}.jsonl: human majority labels (the paper's pilot). The only human signal.
- llm_labels_stage2/gpt-5.4.jsonl joined with profiles_task5_items.jsonl (for the prompt text)
  and profiles_task6_items.jsonl: gpt-5.4's yes/no on many more prompts. Weak labels.
- prefeval/explicit_preference: a question with its own preference is relevant; with a
  preference from another topic it is not (random ones; optionally one of them the nearest
  preference of another category, a near miss). LLM-made, weak.

Graded annotations (raw_annotations/graded_*) are not used as labels: on the pilot prompts they
rate the same items the majority label already summarizes, and on every other prompt (4, 6-9)
the one annotator left all items at the default `none`, which is "not rated", not "irrelevant".
If they were used, the mapping would be: necessary_explicit, necessary_implicit, optional ->
relevant (the paper's I.8 instruction: relevant if it would affect the response in any way);
unnecessary, forbidden -> irrelevant; none -> unlabeled.

Every loader takes `held_out`: prompt texts that must not appear in training (the val prompt),
since the split is by prompt.

Memory form: the data's attributes are statements ("The user is vegetarian.", PrefEval's "I am
vegetarian."), while the extractor stores subject-less third person ("is vegetarian"; memory.
phrasing.third_person). `as_extracted` rewrites one into the other, so the selector can be
trained and evaluated on memories as it is served them.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from memory.model import normalize_text
from memory.phrasing import as_extracted, as_statement

DEFAULT_DATA_DIR = Path("../shared/data/relevance")
# FINDINGS (PrefEval helped most with three off-topic negatives per question).
PREFEVAL_NEGATIVES = 3
# Near misses, when asked for: of those negatives, this many are the preferences nearest the question (by
# the store's embedder) among other categories (the topic file's prefix: lifestyle, travel, ...). Random
# negatives are easy, and a prompt encoder tuned on them learned that a food prompt makes any food memory
# relevant ("Recommend some dog food brands." -> "likes spicy food" over "has two dogs"); a near miss kept
# the plain matches. Another category, not just another topic: the nearest preference of a sibling topic
# is often relevant after all ("resources to learn Ancient History" -> "I avoid text-heavy materials due to
# my dyslexia", from education_learning_styles), and would be a wrong label (docs/selector.md).
PREFEVAL_NEAR_MISSES = 1

# Texts -> unit vectors (one row per text), the store's embedder: how PrefEval's near misses are found.
Embed = Callable[[Sequence[str]], np.ndarray]


@dataclass(frozen=True)
class Example:
    prompt: str
    attribute: str
    label: int  # 1 relevant
    group: str  # one user x prompt: the set a selection decision is made over
    source: str  # human | stage2 | task6 | prefeval


def prompt_key(prompt: str) -> str:
    return normalize_text(prompt)


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open() as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def load_pilot(path: Path) -> list[Example]:
    """A file in the pilot format: one (prompt, attribute, majority label) per line."""
    return [
        Example(
            prompt=r["prompt_text"],
            attribute=r["attribute"],
            label=int(r["label"]),
            group=f"pilot:{r['prompt_index']}:{r['sample_index']}",
            source="human",
        )
        for r in _jsonl(path)
    ]


def load_stage2(data_dir: Path, held_out: set[str]) -> list[Example]:
    prompts = {
        (r["prompt_index"], r["user_id"]): r["prompt_text"] for r in _jsonl(data_dir / "profiles_task5_items.jsonl")
    }
    out = []
    for r in _jsonl(data_dir / "llm_labels_stage2" / "gpt-5.4.jsonl"):
        prompt = prompts[(r["prompt_index"], r["user_id"])]
        if prompt_key(prompt) in held_out:
            continue
        group = f"stage2:{r['prompt_index']}:{r['user_id'][:12]}"
        out += [Example(prompt, i["attribute"], int(bool(i["relevant"])), group, "stage2") for i in r["items"]]
    return out


def load_task6(data_dir: Path, held_out: set[str]) -> list[Example]:
    out = []
    for r in _jsonl(data_dir / "profiles_task6_items.jsonl"):
        if prompt_key(r["prompt_text"]) in held_out:
            continue
        group = f"task6:{r['prompt_id']}"
        out += [
            Example(r["prompt_text"], a["attribute"], int(bool(a["is_relevant"])), group, "task6")
            for a in r["attributes"]
        ]
    return out


def load_prefeval(data_dir: Path, seed: int = 0, embed: Embed | None = None) -> list[Example]:
    """Each question with its own preference (relevant) and PREFEVAL_NEGATIVES preferences of other topics
    (not), drawn at random; with `embed`, PREFEVAL_NEAR_MISSES of them are the nearest of other categories."""
    rows = []  # (topic, index within the topic, question, preference)
    for path in sorted((data_dir / "prefeval" / "explicit_preference").glob("*.json")):
        rows += [(path.stem, i, r["question"], r["preference"]) for i, r in enumerate(json.loads(path.read_text()))]
    topics = np.array([row[0] for row in rows])
    categories = np.array([t.split("_")[0] for t in topics])
    preferences = [row[3] for row in rows]
    similarity = None
    if embed is not None:  # one call: each call reads the embedding cache
        vectors = embed([row[2] for row in rows] + preferences)
        similarity = vectors[: len(rows)] @ vectors[len(rows) :].T
    rng = random.Random(seed)
    out = []
    for i, (topic, index, question, preference) in enumerate(rows):
        group = f"prefeval:{topic}:{index}"
        others = np.flatnonzero(topics != topic)
        nearest: list[int] = []
        if similarity is not None:
            far = np.flatnonzero(categories != categories[i])
            nearest = far[np.argsort(-similarity[i, far], kind="stable")[:PREFEVAL_NEAR_MISSES]].tolist()
        rest = [j for j in others.tolist() if j not in nearest]
        drawn = rng.sample(rest, PREFEVAL_NEGATIVES - len(nearest))
        out.append(Example(question, preference, 1, group, "prefeval"))
        out += [Example(question, preferences[j], 0, group, "prefeval") for j in [*nearest, *drawn]]
    return out


# How an evaluation file's attributes are given to a selector as memories (selector.evaluate --memory-form).
MEMORY_FORMS: dict[str, Callable[[str], str]] = {
    "as-written": lambda text: text,
    "extracted": as_extracted,
    "restated": as_statement,
}


def as_served(examples: Sequence[Example]) -> list[Example]:
    """The same examples with each attribute as the selector is served a memory: a statement about "The
    user" (memory.phrasing.as_statement). Changes PrefEval's first person ("I am vegetarian.") and little else."""
    return [replace(e, attribute=as_statement(e.attribute)) for e in examples]


def held_out_prompts(*eval_files: Path) -> set[str]:
    return {prompt_key(e.prompt) for path in eval_files for e in load_pilot(path)}


def load_training(data_dir: Path, held_out: set[str], sources: set[str], embed: Embed | None = None) -> list[Example]:
    """The human pilot train split plus the chosen weak sources, none on a held-out prompt. `embed`: PrefEval
    with near-miss negatives (load_prefeval)."""
    loaders = {
        "human": lambda: [
            e for e in load_pilot(data_dir / "pilot_train.jsonl") if prompt_key(e.prompt) not in held_out
        ],
        "stage2": lambda: load_stage2(data_dir, held_out),
        "task6": lambda: load_task6(data_dir, held_out),
        "prefeval": lambda: [e for e in load_prefeval(data_dir, embed=embed) if prompt_key(e.prompt) not in held_out],
    }
    return [e for name in sorted(sources) for e in loaders[name]()]
