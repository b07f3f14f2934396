"""Per-user list, search and select latency of the embedded store as it grows to 1,000,000 memories.

    python bench/scale.py [--users 10000] [--per-user 100] [--checkpoints 10000,100000,1000000]
                          [--sample 50] [--requests 4] [--dir DIR] [--no-erasure-probe]

Issue 8, point 5. The store is synthetic, built from the relevance-study profiles
(profiles_task6_items.jsonl, read in place): its ~1.1k distinct attribute texts are embedded once each
with the real embedder, and user k gets the --per-user distinct attributes of study profiles k, k+1, ...
(`user_profiles` of bench/respond.py; users k and k+47 share their texts). Each memory's vector is its
text's vector plus a small seeded random perturbation (length 0.05: cosine ~0.999 to the original), so
no two points are exact duplicates; ids are Memory.new's (user, text) ids, distinct for every memory.
Each memory's evidence names a conversation of its user only, and its quote (the text) ends in a tag
naming the memory. Both carry 16 pseudo-random capital letters so that an erased user's or a deleted
memory's bytes can be looked for in the shard's files: the engine does not store every payload string
byte for byte (ids like `synthetic-000007` were not found in files that held them). Users are written
in order, in upserts of 10,000 memories shuffled within the batch, so that a user's points are not
stored side by side.

At each checkpoint (memories written so far) --sample random users written so far get --requests
requests each, one at a time, each calling the store as the API does:
- list: the user's active memories, limit 100, without vectors (GET /v1/memories);
- search: the 10 nearest to a prompt's vector (embedded ahead, not timed), user and active filter;
- read with vectors: the user's active memories with their vectors (limit 500, as /respond), what the
  selector is given here;
- select: the classifier selector over those memories, the prompt's embedding included;
- unindexed scan (control): the same user's memories through a filter on a payload field with no index
  (the evidence's conversation id), which the engine can only answer by reading every point.
And the shard's size on disk (allocated blocks), its segments and indexed vectors, and process RSS.

Erasure probe (on by default), after the reads: one user not in the sample is erased (DELETE
/v1/memories?user_id=...), then one memory of a sampled user is deleted (DELETE /v1/memories/{id}), each
timed. The shard's files are searched for the user's and the memory's letters before (the control: both
must be found) and after, and the reads are measured again. EdgeMemoryStore runs the shard's optimizers
after every delete (the vacuum) and when 10,000 points wait outside sealed segments; it builds no vector
graph (memory/stores/edge.py), so an erasure rewrites only the segments holding the deleted points.

Prints the growth table and writes bench/results/scale.json. The shard lives in a temp dir removed at
the end, or in --dir (kept).
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as `python bench/scale.py`: this file's folder would shadow the selector package
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import asyncio
import hashlib
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import qdrant_edge as qe

from bench.respond import percentiles, prompts, user_profiles
from memory.embeddings import Embedder
from memory.model import Evidence, Memory, MemoryKind, MemoryStatus, memory_id
from memory.phrasing import as_statement
from memory.store import MemoryFilter
from memory.stores.edge import EdgeMemoryStore
from selector import Selector, build
from service.respond import MAX_CONSIDERED
from service.respond_eval import DATA_FILE

ROOT = Path(__file__).resolve().parents[1]
APP = "scale"
BATCH = 10_000  # memories per upsert
LIST_LIMIT = 100  # a user's ~100 memories in one page of GET /v1/memories
TOP_K = 10
NOISE_NORM = 0.05  # expected length of each vector's perturbation; the vectors are unit length
WARMUP = 10  # untimed requests before each measurement
SCAN_REQUESTS = 3  # the control scans the whole shard: a few are enough
SEED = 8
ACTIVE = MemoryFilter(status=MemoryStatus.active)
LIST, SEARCH, READ, SELECT, SCAN = "list", "search", "read with vectors", "select", "unindexed scan"


@dataclass
class Population:
    """The synthetic users: user k's texts, every distinct text's embeddings (text and statement), the
    prompts and theirs."""

    texts: list[list[str]]
    vectors: dict[str, np.ndarray]
    statements: dict[str, list[float]]
    asks: list[str]
    ask_vectors: np.ndarray

    @staticmethod
    def tenant(k: int) -> str:
        return f"{APP}:u{k:05d}"

    @staticmethod
    def conversation(k: int) -> str:
        return f"synthetic-{marker(k)}"

    @staticmethod
    def tag(k: int, j: int) -> str:
        """Names memory j of user k inside its quote."""
        return marker(k, j)


def marker(*parts: int) -> str:
    """16 capital letters, a function of `parts`, unlikely to repeat anything else a payload holds."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=16).digest()
    return "".join(chr(ord("A") + b % 26) for b in digest)


def populate(embedder: Embedder, users: int, per_user: int) -> Population:
    texts = user_profiles(DATA_FILE, users, per_user)
    unique = sorted({t for user in texts for t in user})
    asks = prompts(DATA_FILE)
    vectors = dict(zip(unique, embedder.embed(unique), strict=True))
    statements = dict(zip(unique, embedder.embed([as_statement(t) for t in unique]).tolist(), strict=True))
    return Population(texts, vectors, statements, asks, embedder.embed(asks))


def memories_of(population: Population, users: range, rng: np.random.Generator) -> list[Memory]:
    out: list[Memory] = []
    for k in users:
        texts = population.texts[k]
        vectors = np.stack([population.vectors[t] for t in texts])
        vectors += rng.normal(scale=NOISE_NORM / np.sqrt(vectors.shape[1]), size=vectors.shape).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        for j, (text, vector) in enumerate(zip(texts, vectors.tolist(), strict=True)):
            kind = MemoryKind.profile if text.startswith("The user is") else MemoryKind.preference
            quote = f"{text} {population.tag(k, j)}"
            evidence = [Evidence(conversation_id=population.conversation(k), turn_ids=[0], quote=quote)]
            statement = population.statements[text]
            memory = Memory.new(
                population.tenant(k),
                text,
                kind=kind,
                evidence=evidence,
                embedding=vector,
                statement_embedding=statement,
            )
            out.append(memory)
    return out


async def fill(
    store: EdgeMemoryStore, population: Population, users: range, rng: np.random.Generator
) -> dict[str, Any]:
    """Writes `users`' memories; the time spent building them (Python) and writing them (the engine)."""
    build_s = write_s = 0.0
    written = 0
    step = max(1, BATCH // len(population.texts[0]))
    for start in range(users.start, users.stop, step):
        began = time.perf_counter()
        batch = memories_of(population, range(start, min(start + step, users.stop)), rng)
        rng.shuffle(batch)
        built = time.perf_counter()
        await store.upsert(batch)
        build_s, write_s = build_s + built - began, write_s + time.perf_counter() - built
        written += len(batch)
    total = build_s + write_s
    return {
        "memories": written,
        "build_s": round(build_s, 1),
        "write_s": round(write_s, 1),
        "per_s": round(written / total) if total else None,
        "engine_per_s": round(written / write_s) if write_s else None,
    }


def ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


async def unindexed_scan(store: EdgeMemoryStore, population: Population, k: int) -> int:
    """The user's memories by a filter the store protocol cannot express: the engine is called directly."""
    condition = qe.FieldCondition(key="evidence[].conversation_id", match=qe.MatchValue(population.conversation(k)))
    request = qe.ScrollRequest(limit=LIST_LIMIT, filter=qe.Filter(must=[condition]), with_payload=True)
    records, _ = await store._run(lambda s: s.scroll(request))
    return len(records)


async def request(
    store: EdgeMemoryStore, selector: Selector, population: Population, k: int, i: int
) -> dict[str, float]:
    """One request of each operation for user k with prompt i; milliseconds per operation."""
    tenant, prompt = population.tenant(k), population.asks[i % len(population.asks)]
    times: dict[str, float] = {}
    began = time.perf_counter()
    listed = await store.page(tenant, ACTIVE, limit=LIST_LIMIT, with_vectors=False)
    times[LIST] = ms(began)
    began = time.perf_counter()
    vector = population.ask_vectors[i % len(population.asks)].tolist()
    hits = await store.search(tenant, vector, limit=TOP_K, filters=ACTIVE)
    times[SEARCH] = ms(began)
    began = time.perf_counter()
    loaded = await store.page(tenant, ACTIVE, limit=MAX_CONSIDERED, with_vectors=True)
    times[READ] = ms(began)
    began = time.perf_counter()
    await selector.select(prompt, loaded.memories)
    times[SELECT] = ms(began)
    if not listed.memories or not hits or any(h.memory.user_id != tenant for h in hits):
        raise SystemExit(f"{tenant}: {len(listed.memories)} listed, {len(hits)} hits: the store lost the user")
    return times


async def measure(
    store: EdgeMemoryStore, selector: Selector, population: Population, sample: list[int], requests: int, scans: bool
) -> dict[str, list[float]]:
    for i, k in enumerate(sample[:WARMUP]):
        await request(store, selector, population, k, i)
    samples: dict[str, list[float]] = {LIST: [], SEARCH: [], READ: [], SELECT: [], SCAN: []}
    for r in range(requests):
        for j, k in enumerate(sample):
            for op, value in (await request(store, selector, population, k, r * len(sample) + j)).items():
                samples[op].append(value)
    for k in sample[:SCAN_REQUESTS] if scans else []:
        began = time.perf_counter()
        found = await unindexed_scan(store, population, k)
        samples[SCAN].append(ms(began))
        if not found:
            raise SystemExit(f"the unindexed scan found {found} memories of user {k}")
    return samples


async def shard_state(store: EdgeMemoryStore, path: Path) -> dict[str, Any]:
    info = await store._run(lambda s: s.info())
    schema = info.payload_schema
    return {
        "points": info.points_count,
        "segments": info.segments_count,
        "indexed_vectors": info.indexed_vectors_count,
        "user_id_index_points": schema["user_id"].points if "user_id" in schema else None,
        "disk_mb": round(sum(f.stat().st_blocks * 512 for f in path.rglob("*") if f.is_file()) / 1e6, 1),
        **process_memory_mb(),
        "loadavg": os.getloadavg(),
    }


def process_memory_mb() -> dict[str, float]:
    """Resident set size now and at its peak (VmRSS, VmHWM)."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return {
        name: round(int(fields[key].split()[0]) / 1024, 1)
        for name, key in (("rss_mb", "VmRSS"), ("peak_rss_mb", "VmHWM"))
    }


async def erasure_probe(
    store: EdgeMemoryStore, population: Population, shard: Path, erase: int, delete: tuple[int, int]
) -> dict[str, Any]:
    """Erases user `erase`, deletes memory j of user k (`delete`), and looks for both on disk before and after.

    On disk after: True or False; None when the marker was not found before either (nothing to conclude).
    """
    k, j = delete
    # the conversation id's letters alone: the whole id was not found in files that held it
    markers = [marker(erase).encode(), population.tag(k, j).encode()]
    before = await asyncio.to_thread(found_on_disk, shard, markers)
    tenant = population.tenant(erase)
    began = time.perf_counter()
    erased = await store.delete_user(tenant)
    erase_ms = ms(began)
    state_after_erase = await shard_state(store, shard)
    tenant = population.tenant(k)
    began = time.perf_counter()
    if not await store.delete(tenant, memory_id(tenant, population.texts[k][j])):
        raise SystemExit(f"user {k}'s memory {j} was not there to delete")
    delete_ms = ms(began)
    user_left, memory_left = [
        hit if control else None
        for hit, control in zip(await asyncio.to_thread(found_on_disk, shard, markers), before, strict=True)
    ]
    return {
        "erase_user_ms": round(erase_ms, 1),
        "erased_memories": erased,
        "state_after_erase": state_after_erase,
        "delete_memory_ms": round(delete_ms, 1),
        "erased_user_on_disk": user_left,
        "deleted_memory_on_disk": memory_left,
        "state_after_delete": await shard_state(store, shard),
    }


def found_on_disk(path: Path, needles: Sequence[bytes]) -> list[bool]:
    """Whether each byte string occurs in any file under `path`, read in chunks that overlap."""
    found = [False] * len(needles)
    overlap = max(map(len, needles)) - 1
    for file in path.rglob("*"):
        if not file.is_file():
            continue
        with file.open("rb") as f:
            tail = b""
            while chunk := f.read(1 << 24):
                window = tail + chunk
                found = [hit or needle in window for hit, needle in zip(found, needles, strict=True)]
                tail = window[-overlap:]
    return found


def summary(samples: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    return {op: percentiles(values) for op, values in samples.items() if values}


async def run(args: argparse.Namespace, shard: Path, report: Report) -> None:
    embedder = Embedder.load(ROOT / "models" / "embedder")
    selector = build("classifier", ROOT / "models", embedder)
    began = time.perf_counter()
    population = await asyncio.to_thread(populate, embedder, args.users, args.per_user)
    print(f"embedded {len(population.vectors)} texts in {time.perf_counter() - began:.0f} s", file=sys.stderr)
    rng = np.random.default_rng(SEED)
    store = EdgeMemoryStore(shard)
    written = 0
    erased: set[int] = set()
    try:
        for n, checkpoint in enumerate(args.checkpoints):
            users = checkpoint // args.per_user
            row: dict[str, Any] = {"memories": checkpoint, "users": users}
            row["fill"] = await fill(store, population, range(written, users), rng)
            written = users
            row["state"] = await shard_state(store, shard)
            present = [k for k in range(users) if k not in erased]
            # one user more than the sample stays out of it, for the erasure probe
            sample = sorted(rng.choice(present, size=min(args.sample, len(present) - 1), replace=False).tolist())
            row["latency_ms"] = summary(await measure(store, selector, population, sample, args.requests, True))
            report.checkpoints.append(row)
            report.save()
            print(render_row(row), file=sys.stderr)
            if args.erasure_probe:
                erase = int(rng.choice(sorted(set(present) - set(sample))))
                row["erasure"] = await erasure_probe(store, population, shard, erase, (sample[0], n))
                erased.add(erase)
                after = await measure(store, selector, population, sample, args.requests, False)
                row["latency_after_erasure_ms"] = summary(after)
                report.save()
                print(f"{checkpoint:,}: {json.dumps(row['erasure'])}", file=sys.stderr)
    finally:
        await store.close()


class Report:
    """bench/results/scale.json, rewritten after every measurement: a run stopped midway keeps what it has."""

    def __init__(self, args: argparse.Namespace, argv: Sequence[str]) -> None:
        self.path: Path = args.out
        self.began = time.monotonic()
        self.checkpoints: list[dict[str, Any]] = []
        self.doc: dict[str, Any] = {
            "command": " ".join(["python", "bench/scale.py", *argv]),
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "users": args.users,
            "per_user": args.per_user,
            "sample_users": args.sample,
            "requests_per_user": args.requests,
            "batch": BATCH,
            "noise_norm": NOISE_NORM,
            "cpu_count": os.cpu_count(),
            "machine": platform.machine(),
            "loadavg_at_start": os.getloadavg(),
        }

    def save(self, complete: bool = False) -> None:
        self.doc |= {
            "complete": complete,
            "loadavg_at_end": os.getloadavg(),
            "seconds": round(time.monotonic() - self.began, 1),
            "checkpoints": self.checkpoints,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.doc, indent=2) + "\n")


def cell(latency: dict[str, dict[str, float]], op: str) -> str:
    p = latency.get(op)
    return f"{p['p50']:.1f} / {p['p99']:.1f}" if p else "-"


def render_row(row: dict[str, Any]) -> str:
    state, latency = row["state"], row["latency_ms"]
    scan = f"{latency[SCAN]['p50']:,.0f}" if SCAN in latency else "-"
    return (
        f"| {row['memories']:,} | {row['users']:,} | {row['fill']['per_s']:,} | {state['disk_mb']:,.0f} "
        f"| {state['rss_mb']:,.0f} | {state['segments']} / {state['indexed_vectors']:,} "
        f"| {cell(latency, LIST)} | {cell(latency, SEARCH)} | {cell(latency, READ)} | {cell(latency, SELECT)} "
        f"| {scan} |"
    )


def render(checkpoints: list[dict[str, Any]]) -> str:
    lines = [
        "| memories | users | fill /s | disk MB | RSS MB | segments / indexed vectors | list p50 / p99 ms "
        "| search p50 / p99 ms | read with vectors p50 / p99 ms | select p50 / p99 ms | unindexed scan p50 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *map(render_row, checkpoints),
    ]
    probed = [row for row in checkpoints if "erasure" in row]
    if probed:
        lines += [
            "",
            "Erasure probe: one user erased, then one memory deleted (each runs the shard's optimizers); "
            "were their bytes still on disk; the reads again:",
            "",
            "| memories | erase user ms | segments / indexed vectors | user on disk | delete memory ms "
            "| memory on disk | list p50 / p99 ms | search p50 / p99 ms | read with vectors p50 / p99 ms "
            "| select p50 / p99 ms |",
            "|---|---|---|---|---|---|---|---|---|---|",
            *map(render_probe, probed),
        ]
    return "\n".join(lines)


def yes_no(found: bool | None) -> str:
    return "?" if found is None else ("yes" if found else "no")


def render_probe(row: dict[str, Any]) -> str:
    probe, latency = row["erasure"], row["latency_after_erasure_ms"]
    state = probe["state_after_delete"]
    return (
        f"| {row['memories']:,} | {probe['erase_user_ms']:,.0f} | {state['segments']} / {state['indexed_vectors']:,} "
        f"| {yes_no(probe['erased_user_on_disk'])} | {probe['delete_memory_ms']:,.0f} "
        f"| {yes_no(probe['deleted_memory_on_disk'])} "
        f"| {cell(latency, LIST)} | {cell(latency, SEARCH)} | {cell(latency, READ)} | {cell(latency, SELECT)} |"
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--per-user", type=int, default=100, help="memories per user")
    parser.add_argument("--checkpoints", default="10000,100000,1000000", help="total memories, comma-separated")
    parser.add_argument("--sample", type=int, default=50, help="users measured at each checkpoint")
    parser.add_argument("--requests", type=int, default=4, help="timed requests per sampled user and operation")
    parser.add_argument("--dir", type=Path, help="where the shard goes (kept); a temp dir, removed, by default")
    parser.add_argument("--no-erasure-probe", dest="erasure_probe", action="store_false")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "scale.json")
    args = parser.parse_args(argv)
    args.checkpoints = sorted(int(c) for c in args.checkpoints.split(","))
    for checkpoint in args.checkpoints:
        if checkpoint % args.per_user or not 2 * args.per_user <= checkpoint <= args.users * args.per_user:
            parser.error(f"checkpoint {checkpoint}: not a multiple of --per-user, or not 2 to --users users")
    if args.dir is not None and (args.dir / "edge").exists():
        parser.error(f"{args.dir / 'edge'} exists: the bench fills a new shard")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    report = Report(args, argv)
    work = args.dir or Path(tempfile.mkdtemp(prefix="heedful-bench-scale-"))
    try:
        asyncio.run(run(args, work / "edge", report))
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)
    report.save(complete=True)
    print(render(report.checkpoints))
    doc = report.doc
    print(f"load average {doc['loadavg_at_start']} -> {doc['loadavg_at_end']}; {doc['seconds']} s; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
