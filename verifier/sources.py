"""Readers for the extraction data sets, read in place from ../shared/data/extraction.

Each reader returns plain records; nothing here decides labels. Layout and fields are
described in ../shared/data/README.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from verifier.words import detokenize, split_sentences

MSC_DIR = Path("extraction/msc/msc_personasummary")
DNLI_DIR = Path("extraction/dnli_evalset")
PERSONAEXT_FILE = Path("extraction/personaext/personaext_union_devtest.jsonl")


@dataclass(frozen=True)
class Turn:
    speaker: str
    text: str
    persona: tuple[str, ...]  # the crowdworker's statements about the speaker, one sentence each


@dataclass(frozen=True)
class Dialogue:
    group: str  # the speaker pair: all sessions of one pair share it, so splits never cut a pair
    session: int
    turns: tuple[Turn, ...]


@dataclass(frozen=True)
class DnliItem:
    persona: tuple[str, ...]
    triple: tuple[str, str, str]
    context: str  # the partner's last turn before the candidates
    contradicting: tuple[str, ...]  # candidate replies the DNLI authors marked as contradicting the triple
    prefix: tuple[str, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class Triplet:
    utterance: str
    relation: str
    tail: str


def read_msc(data_dir: Path) -> list[Dialogue]:
    dialogues = []
    for session_dir in sorted((data_dir / MSC_DIR).glob("session_*")):
        session = int(session_dir.name.rsplit("_", 1)[1])
        for record in _jsonl(session_dir / "valid.txt"):
            turns = tuple(
                Turn(u["id"], u["text"].strip(), tuple(split_sentences(u.get("persona_text") or "")))
                for u in record["dialog"]
            )
            dialogues.append(Dialogue(record["initial_data_id"], session, turns))
    if not dialogues:
        raise FileNotFoundError(f"no MSC sessions under {data_dir / MSC_DIR}")
    return dialogues


def read_dnli(data_dir: Path) -> list[DnliItem]:
    items = []
    for path in sorted((data_dir / DNLI_DIR).glob("*.jsonl")):
        for record in _jsonl(path):
            items.append(
                DnliItem(
                    persona=tuple(detokenize(p) for p in record["persona"]),
                    triple=(record["triple"][0], record["triple"][1], record["triple"][2]),
                    context=detokenize(record["prefix"][-1]) if record["prefix"] else "",
                    contradicting=tuple(detokenize(c) for c in record["candidates"]["neg"]),
                    prefix=tuple(record["prefix"]),
                )
            )
    return items


def read_personaext(data_dir: Path) -> list[Triplet]:
    path = data_dir / PERSONAEXT_FILE
    if not path.exists():
        return []
    return [
        Triplet(detokenize(r["utterance"]), r["relation"], r["tail"])
        for r in _jsonl(path)
        if r["head"] == "i"  # statements about the speaker themself, not "my brother ..."
    ]


def _jsonl(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)
