"""What /respond reads from the embedded store for a user the selector has not seen since the process started.

    python bench/cold_read.py [--sizes 100,500] [--users 20] [--runs 50]

The Responder lists a user's active memories without vectors, then reads the vectors the selector does not
hold yet (`Selector.missing_vectors`, after a restart: all of them). The selector scores only each memory's
statement vector, so the read asks for that vector alone (`MemoryStore.get_many(..., with_vectors=
[STATEMENT_VECTOR])`); before, it read both. This times, side by side in one run, interleaved per
repetition and each read first in half of them, for one user with N memories in a shard that holds --users such users:
- list: the page of active memories without vectors (what every request reads);
- both vectors: `get_many` of those ids with the text's and the statement's vectors (the read before);
- statement vector: `get_many` with the statement's vector only (the read now).
Vectors are seeded random unit vectors (the read's cost does not depend on their values). Prints a table of
medians and writes bench/results/cold_read.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as `python bench/cold_read.py`: keep the project's packages first
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from memory.model import Memory, MemoryStatus
from memory.store import STATEMENT_VECTOR, MemoryFilter
from memory.stores.edge import EdgeMemoryStore

ROOT = Path(__file__).resolve().parents[1]
DIM = 384
ACTIVE = MemoryFilter(status=MemoryStatus.active)
MODES = ("list", "both vectors", "statement vector")


def unit_vectors(rng: np.random.Generator, n: int) -> list[list[float]]:
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).tolist()


def user_memories(user: str, n: int, rng: np.random.Generator) -> list[Memory]:
    texts = [f"likes topic number {i} of {user}" for i in range(n)]
    return [
        Memory.new(user, text, embedding=e, statement_embedding=s)
        for text, e, s in zip(texts, unit_vectors(rng, n), unit_vectors(rng, n), strict=True)
    ]


async def time_reads(store: EdgeMemoryStore, user: str, n: int, runs: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {mode: [] for mode in MODES}
    reads: list[tuple[str, bool | list[str]]] = [("both vectors", True), ("statement vector", [STATEMENT_VECTOR])]
    for _ in range(runs):
        began = time.perf_counter()
        listed = (await store.page(user, ACTIVE, limit=n, with_vectors=False)).memories
        samples["list"].append((time.perf_counter() - began) * 1000)
        ids = [m.id for m in listed]
        reads.reverse()  # each read goes first in half the runs: the one after pays for the first's garbage
        for mode, vectors in reads:
            began = time.perf_counter()
            got = await store.get_many(user, ids, with_vectors=vectors)
            samples[mode].append((time.perf_counter() - began) * 1000)
            if len(got) != n or any(m.statement_embedding is None for m in got):
                raise SystemExit(f"{mode}: {len(got)} of {n} memories came back with their statement vectors")
    return samples


async def run(sizes: list[int], users: int, runs: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    rows = []
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            store = EdgeMemoryStore(Path(tmp) / "edge")
            for k in range(users):
                await store.upsert(user_memories(f"user-{k}", n, rng))
            await time_reads(store, "user-0", n, 3)  # warm-up, untimed
            samples = await time_reads(store, f"user-{users // 2}", n, runs)
            await store.close()
        medians = {mode: statistics.median(values) for mode, values in samples.items()}
        rows.append({"memories": n, "shard_memories": n * users, "median_ms": medians, "runs": runs})
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,500", help="memories of the user read (500: /respond's cap)")
    parser.add_argument("--users", type=int, default=20, help="users of that size in the shard")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "cold_read.json")
    args = parser.parse_args(argv)
    rows = asyncio.run(run([int(s) for s in args.sizes.split(",")], args.users, args.runs))
    print("| memories of the user | list ms | both vectors ms | statement vector ms | both / statement |")
    print("|---|---|---|---|---|")
    for row in rows:
        m = row["median_ms"]
        ratio = m["both vectors"] / m["statement vector"]
        print(
            f"| {row['memories']} | {m['list']:.2f} | {m['both vectors']:.2f} | {m['statement vector']:.2f} | {ratio:.2f} |"
        )
    doc = {
        "command": "python bench/cold_read.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()},
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
