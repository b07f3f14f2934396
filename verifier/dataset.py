"""The verifier's train/val pairs, built in memory from ../shared/data/extraction.

The data is read in place and never copied into the repository (several sets are
non-commercial or unlicensed). The split is by dialogue: every session of one MSC speaker
pair, and every DNLI or PersonaExt item whose utterances come from that pair, land in the
same split. Building is deterministic for a given seed.

    python -m verifier.dataset [--data-dir ../shared/data] [--seed 0] [--out DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from verifier.extra_pairs import dnli_pairs, personaext_pairs
from verifier.msc_pairs import pairs_for_dialogue
from verifier.pairs import Pair
from verifier.sources import Dialogue, read_dnli, read_msc, read_personaext
from verifier.task_context import task_context_pairs

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data"
DEFAULT_SEED = 0

VAL_SHARE = 0.2  # of speaker pairs
# Validation draws half of its overgeneralization negatives from held-out templates, and half
# of its flipped-preference contradictions from held-out antonyms, so seen and unseen patterns
# are measured on similar numbers.
VAL_HELD_OUT_SHARE = 0.5
# PersonaExt triples used per split: enough to vary the statement shapes, few enough that
# MSC dialogue pairs (the run-time shape) stay the majority.
PERSONAEXT_TRIPLETS = {"train": 3000, "val": 600}


@dataclass(frozen=True)
class Splits:
    train: list[Pair]
    val: list[Pair]


def build_splits(data_dir: Path = DEFAULT_DATA_DIR, seed: int = DEFAULT_SEED) -> Splits:
    dialogues = read_msc(data_dir)
    val_groups = _val_groups(dialogues, seed)
    index = _utterance_index(dialogues)
    out: dict[str, list[Pair]] = {"train": [], "val": []}

    donors = _first_person_statements(dialogues, val_groups)
    for dialogue in dialogues:
        split = "val" if dialogue.group in val_groups else "train"
        rng = random.Random(f"{seed}:msc:{dialogue.group}:{dialogue.session}")
        out[split].extend(pairs_for_dialogue(dialogue, rng, _held_out_share(split)))
        rng = random.Random(f"{seed}:task:{dialogue.group}:{dialogue.session}")
        out[split].extend(task_context_pairs(dialogue, donors[split], rng, training=split == "train"))

    for n, item in enumerate(read_dnli(data_dir)):
        group = _first_known(item.prefix, index) or "dnli:" + _digest(" ".join(item.persona))
        rng = random.Random(f"{seed}:dnli:{n}")
        out[_split_of(group, val_groups)].extend(dnli_pairs(item, group, rng))

    triplets = read_personaext(data_dir)
    random.Random(f"{seed}:personaext").shuffle(triplets)
    used: Counter[str] = Counter()
    for n, triplet in enumerate(triplets):
        group = index.get(_norm(triplet.utterance)) or "personaext:" + _digest(triplet.utterance)
        split = _split_of(group, val_groups)
        if used[split] >= PERSONAEXT_TRIPLETS[split]:
            continue
        rng = random.Random(f"{seed}:personaext:{n}")
        made = personaext_pairs(triplet, group, rng, _held_out_share(split))
        used[split] += bool(made)
        out[split].extend(made)

    return Splits(_dedupe(out["train"]), _dedupe(out["val"]))


def _first_person_statements(dialogues: list[Dialogue], val_groups: frozenset[str]) -> dict[str, list[str]]:
    """Per split, the "I ..." statements available as assistant-deliverable content."""
    donors: dict[str, set[str]] = {"train": set(), "val": set()}
    for d in dialogues:
        split = "val" if d.group in val_groups else "train"
        donors[split].update(s for t in d.turns for s in t.persona if s.startswith("I "))
    return {split: sorted(statements) for split, statements in donors.items()}


def _held_out_share(split: str) -> float:
    return VAL_HELD_OUT_SHARE if split == "val" else 0.0


def _val_groups(dialogues: list[Dialogue], seed: int) -> frozenset[str]:
    groups = sorted({d.group for d in dialogues})
    random.Random(seed).shuffle(groups)
    return frozenset(groups[: round(len(groups) * VAL_SHARE)])


def _split_of(group: str, val_groups: frozenset[str]) -> str:
    if ":" not in group:  # an MSC speaker pair
        return "val" if group in val_groups else "train"
    # Items from outside MSC are split by a stable hash, so the same item always lands the same way.
    return "val" if int(_digest(group), 16) % 1000 < VAL_SHARE * 1000 else "train"


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _digest(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()[:12]


def _utterance_index(dialogues: list[Dialogue]) -> dict[str, str]:
    """Normalized utterance -> MSC speaker pair, to place DNLI/PersonaExt items with their dialogue."""
    return {_norm(t.text): d.group for d in dialogues for t in d.turns if len(_norm(t.text)) > 15}


def _first_known(utterances: tuple[str, ...], index: dict[str, str]) -> str | None:
    return next((index[_norm(u)] for u in utterances if _norm(u) in index), None)


def _dedupe(pairs: list[Pair]) -> list[Pair]:
    """One pair per (snippet, attribute); a pair seen with both labels is dropped as ambiguous."""
    labels: dict[tuple[str, str], set[int]] = {}
    for p in pairs:
        labels.setdefault((p.snippet, p.attribute.lower()), set()).add(p.label)
    seen: set[tuple[str, str]] = set()
    kept = []
    for p in pairs:
        key = (p.snippet, p.attribute.lower())
        if len(labels[key]) == 1 and key not in seen:
            seen.add(key)
            kept.append(p)
    return kept


def count_table(splits: Splits) -> list[tuple[str, str, str, int]]:
    """(split, source, kind, count) rows, for the model card and the CLI."""
    rows: list[tuple[str, str, str, int]] = []
    for name, pairs in (("train", splits.train), ("val", splits.val)):
        counts = Counter((p.source, p.report_kind) for p in pairs)
        rows.extend((name, source, kind, n) for (source, kind), n in sorted(counts.items()))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build the verifier's (snippet, attribute, label) pairs.")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", type=Path, help="write train.jsonl and val.jsonl here (keep it outside the repo)")
    args = parser.parse_args(argv)
    splits = build_splits(args.data_dir, args.seed)
    for split, source, kind, n in count_table(splits):
        print(f"{split:6} {source:11} {kind:40} {n:6}")
    print(f"train {len(splits.train)} pairs, val {len(splits.val)} pairs")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        for name, pairs in (("train", splits.train), ("val", splits.val)):
            with (args.out / f"{name}.jsonl").open("w", encoding="utf-8") as handle:
                for p in pairs:
                    handle.write(json.dumps(p.as_dict()) + "\n")


if __name__ == "__main__":
    main()
