"""Load on `heedful serve` as a real process: mixed API traffic over 1,000 users, then an ingestion burst.

    python bench/load.py [--users 1000] [--rate 120] [--clients 64] [--seconds 60]
                         [--burst-seconds 20] [--burst-procs 2] [--burst-clients 32] [--py-spy DIR]

1. Seeds users with the attributes of the relevance-study profiles (profiles_task5/6_items.jsonl,
   read in place): user i gets study profile i mod 47, each attribute one memory, embedded in batches
   and upserted straight into the embedded store before the server opens it (one process owns the
   shard); users are registered in Redis and one app key is created.
2. Starts `heedful serve` (embedded Qdrant engine, HEEDFUL_EMBEDDED_WORKER=false so the 135M LLM is
   not measured, a unique Redis key prefix, a rate limit out of reach).
3. Cost: each route called one request at a time; the server's CPU seconds per request (from
   /proc, all threads) is what a request costs, whatever else the shared machine is doing.
4. Mixed, open loop: Poisson arrivals at --rate for --seconds, at most --clients in flight, of
   POST /respond (context-only: options.generate false), POST /v1/conversations and GET /v1/memories.
   Latency runs from each request's scheduled time, so a server that falls behind is charged for the
   queue it causes (no coordinated omission). The Redis stream backlog is sampled every second.
5. Ingestion burst, closed loop: --burst-procs client processes x --burst-clients clients post
   conversations as fast as they are accepted for --burst-seconds.
6. Nothing lost: no worker runs, so every conversation acknowledged (202) in phases 4 and 5 must be one new
   entry of the Redis stream (its length before and after).

Prints tables and writes bench/results/load.json. Bounded by the durations above plus seeding and
start-up; the server is stopped and its Redis keys purged at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import queue
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import redis
from pydantic import SecretStr
from redis.asyncio import Redis

from memory.embeddings import Embedder
from memory.ingest import ConversationLog
from memory.model import Evidence, Memory, MemoryKind
from memory.phrasing import as_statement
from memory.stores.edge import EdgeMemoryStore
from service.auth import ApiKeys
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "relevance"
PROFILE_FILES = ("profiles_task5_items.jsonl", "profiles_task6_items.jsonl")
APP = "loadapp"
REQUEST_TIMEOUT_S = 10.0
SEED_BATCH = 2_000  # memories per store upsert
EMBED_BATCH = 32  # bulk seeding accepts the int8 batch drift (memory/embeddings.py) for ~1.5x throughput
REPLY_CHARS = 1_500  # assistant replies in posted conversations are cut to a chat-like length
COST_REQUESTS = 60  # per route, one at a time

# The targets for this machine with the embedded store.
TARGET_RPS = 100
TARGET_P99_MS = 150
TARGET_INGEST_PER_S = 500

SHED = -1
RESPOND, INGEST, MEMORIES = "POST /respond", "POST /v1/conversations", "GET /v1/memories"
SUCCESS = {RESPOND: 200, INGEST: 202, MEMORIES: 200}


@dataclass
class Profile:
    attributes: list[str] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)


@dataclass
class Sample:
    route: str
    ms: float
    status: int  # 0: transport error or timeout; SHED: never sent, the server was too far behind


@dataclass
class Phase:
    samples: list[Sample]
    elapsed_s: float
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0


# --- data --------------------------------------------------------------------------------------------------


def load_profiles(data_dir: Path) -> list[Profile]:
    """One profile per study user: the union of their attributes, their prompts and the study's replies."""
    by_user: dict[str, Profile] = defaultdict(Profile)
    for name in PROFILE_FILES:
        with (data_dir / name).open() as f:
            for line in f:
                row = json.loads(line)
                profile = by_user[row["user_id"]]
                for item in row.get("profile_attributes") or row.get("attributes") or []:
                    if item["attribute"] not in profile.attributes:
                        profile.attributes.append(item["attribute"])
                profile.prompts.append(row["prompt_text"])
                if row.get("response_no_context"):
                    profile.replies.append(row["response_no_context"][:REPLY_CHARS])
    return [by_user[k] for k in sorted(by_user)]


def user_ids(n: int) -> list[str]:
    return [f"u{i:05d}" for i in range(n)]


async def seed(settings: Settings, profiles: list[Profile], users: list[str]) -> tuple[str, dict[str, float]]:
    """Memories into the store (before the server opens it), users into Redis; returns an app key."""
    started = time.perf_counter()
    texts = sorted({t for p in profiles for t in p.attributes})
    embedder = Embedder.load(settings.models_dir / "embedder", threads=2, batch_size=EMBED_BATCH)
    vectors = dict(zip(texts, embedder.embed(texts).tolist(), strict=True))
    statements = dict(zip(texts, embedder.embed([as_statement(t) for t in texts]).tolist(), strict=True))
    embedded = time.perf_counter()
    store = EdgeMemoryStore(settings.edge_dir)
    batch: list[Memory] = []
    total = 0
    for i, user in enumerate(users):
        for text in profiles[i % len(profiles)].attributes:
            kind = MemoryKind.profile if text.startswith("The user is") else MemoryKind.preference
            evidence = [Evidence(conversation_id="seed", turn_ids=[0], quote=text)]
            batch.append(
                Memory.new(
                    f"{APP}:{user}",
                    text,
                    kind=kind,
                    embedding=vectors[text],
                    statement_embedding=statements[text],
                    evidence=evidence,
                )
            )
        if len(batch) >= SEED_BATCH or i == len(users) - 1:
            await store.upsert(batch)
            total, batch = total + len(batch), []
    await store.close()
    stored = time.perf_counter()
    client = Redis.from_url(settings.redis_url)
    log = ConversationLog(
        client, prefix=settings.key_prefix, stream=settings.stream_key, retention_s=3600, erasure_secret=b""
    )
    async with client.pipeline(transaction=False) as pipe:
        for user in users:
            pipe.hsetnx(log.user_key(f"{APP}:{user}"), "created_at", f"{time.time():.6f}")
        await pipe.execute()
    key = await ApiKeys(client, settings.key_prefix).create(APP, name="load bench")
    await client.aclose()
    timings = {"memories": total, "unique_texts": len(texts)}
    return key, {**timings, "embed_s": round(embedded - started, 1), "upsert_s": round(stored - embedded, 1)}


# --- the server --------------------------------------------------------------------------------------------


def bench_settings(work: Path, redis_url: str) -> Settings:
    prefix = f"hfload-{uuid.uuid4().hex[:10]}"
    return Settings(
        data_dir=work / "var",
        redis_url=redis_url,
        key_prefix=prefix,
        stream_key=f"{prefix}:conversations",
        dead_letter_stream=f"{prefix}:dead-letter",
        embedded_worker=False,  # the API is measured, not the 135M extraction model
        dev_key=False,
        token_secret=SecretStr(uuid.uuid4().hex),
        rate_limit_per_minute=10**9,
    )


def server_env(settings: Settings, port: int) -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    for name, value in settings.model_dump(mode="json").items():
        if value is not None and not isinstance(value, dict | list):
            env[f"HEEDFUL_{name.upper()}"] = str(value)
    assert settings.token_secret is not None
    return {**env, "HEEDFUL_TOKEN_SECRET": settings.token_secret.get_secret_value(), "HEEDFUL_PORT": str(port)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(settings: Settings, log_path: Path, timeout_s: float = 90) -> Iterator[tuple[str, int]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve"],
            cwd=ROOT,
            env=server_env(settings, port),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + timeout_s
            while not ready(url):
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = log_path.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"heedful serve did not come up within {timeout_s} s:\n{tail}")
                time.sleep(0.3)
            yield url, process.pid
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


def ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def cpu_seconds(pid: int | None = None) -> Iterator[list[float]]:
    """CPU seconds used inside the block by process `pid` (all threads) or, without it, by this process."""
    ticks = os.sysconf("SC_CLK_TCK")

    def used() -> float:
        if pid is None:
            usage = resource.getrusage(resource.RUSAGE_SELF)
            return usage.ru_utime + usage.ru_stime
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime

    out: list[float] = []
    before = used()
    yield out
    out.append(round(used() - before, 3))


@contextmanager
def py_spy(pid: int, out_dir: Path | None, name: str, seconds: float) -> Iterator[None]:
    """Samples the server's Python stacks into <out_dir>/<name>.folded (flame-graph input) during the block."""
    if out_dir is None:
        yield
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    command = [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid), "--nonblocking"]
    command += ["--duration", str(int(seconds)), "--rate", "50", "--format", "raw"]
    spy = subprocess.Popen([*command, "--output", str(out_dir / f"{name}.folded")], stdout=subprocess.DEVNULL)
    try:
        yield
    finally:
        spy.wait(seconds + 30)


# --- traffic -----------------------------------------------------------------------------------------------

Request = tuple[str, str, dict[str, object]]


class Traffic:
    """Realistic requests: a user's own study prompts, and conversations of a prompt and a study reply."""

    def __init__(self, profiles: list[Profile], users: list[str], seed: int, tag: str) -> None:
        self.profiles = profiles
        self.users = users
        self.rng = random.Random(seed)
        self.tag = tag
        self.sent = 0

    def pick(self) -> tuple[str, Profile]:
        index = self.rng.randrange(len(self.users))
        return self.users[index], self.profiles[index % len(self.profiles)]

    def respond(self) -> Request:
        user, profile = self.pick()
        messages = [{"role": "user", "content": self.rng.choice(profile.prompts)}]
        return "POST", "/respond", {"user_id": user, "messages": messages, "options": {"generate": False}}

    def conversation(self) -> Request:
        user, profile = self.pick()
        self.sent += 1
        messages = [{"role": "user", "content": self.rng.choice(profile.prompts)}]
        if profile.replies:
            messages.append({"role": "assistant", "content": self.rng.choice(profile.replies)})
            messages.append({"role": "user", "content": "Thanks, that helps."})
        return (
            "POST",
            "/v1/conversations",
            {"user_id": user, "conversation_id": f"{self.tag}-{self.sent}", "messages": messages},
        )

    def memories(self) -> Request:
        user, _ = self.pick()
        return "GET", "/v1/memories", {"user_id": user}

    def maker(self, route: str) -> Callable[[], Request]:
        return {RESPOND: self.respond, INGEST: self.conversation, MEMORIES: self.memories}[route]


def http_client(url: str, key: str, connections: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=REQUEST_TIMEOUT_S)


async def call(client: httpx.AsyncClient, request: Request) -> int:
    method, path, payload = request
    try:
        if method == "GET":
            response = await client.get(path, params=payload)  # type: ignore[arg-type]
        else:
            response = await client.post(path, json=payload)
    except httpx.HTTPError:
        return 0
    return response.status_code


async def cost_phase(url: str, key: str, traffic: Traffic, pid: int) -> dict[str, dict[str, float]]:
    """Each route alone, one request at a time: server CPU ms per request and unloaded latency."""
    out = {}
    async with http_client(url, key, 1) as client:
        for route in (RESPOND, INGEST, MEMORIES):
            samples = []
            with cpu_seconds(pid) as cpu:
                for _ in range(COST_REQUESTS):
                    sent = time.perf_counter()
                    status = await call(client, traffic.maker(route)())
                    samples.append(Sample(route, (time.perf_counter() - sent) * 1000, status))
            ms = np.array([s.ms for s in samples])
            out[route] = {
                "requests": COST_REQUESTS,
                "errors": sum(s.status != SUCCESS[route] for s in samples),
                "server_cpu_ms_per_request": round(cpu[0] * 1000 / COST_REQUESTS, 2),
                "p50_ms": round(float(np.percentile(ms, 50)), 1),
            }
    return out


async def mixed_phase(
    url: str, key: str, traffic: Traffic, mix: dict[str, float], rate: float, clients: int, seconds: float
) -> tuple[list[Sample], float]:
    """Open loop: Poisson arrivals at `rate`, at most `clients` in flight; latency from the scheduled time.

    Ends at most two request timeouts after `seconds`: what has not started by then is counted as shed."""
    loop = asyncio.get_running_loop()
    slots = asyncio.Semaphore(clients)
    samples: list[Sample] = []
    routes, weights = list(mix), list(mix.values())

    async def one(client: httpx.AsyncClient, route: str, due: float) -> None:
        request = traffic.maker(route)()
        try:  # a request that cannot even start within the timeout is an error, and the phase stays bounded
            await asyncio.wait_for(slots.acquire(), max(0.0, due + REQUEST_TIMEOUT_S - loop.time()))
        except TimeoutError:
            samples.append(Sample(route, (loop.time() - due) * 1000, SHED))
            return
        try:
            status = await call(client, request)
        finally:
            slots.release()
        samples.append(Sample(route, (loop.time() - due) * 1000, status))

    async with http_client(url, key, clients) as client:
        start = due = loop.time()
        tasks = []
        while (due := due + traffic.rng.expovariate(rate)) < start + seconds:
            await asyncio.sleep(max(0.0, due - loop.time()))
            route = traffic.rng.choices(routes, weights)[0]
            tasks.append(asyncio.create_task(one(client, route, due)))
        await asyncio.gather(*tasks)
        return samples, loop.time() - start


def burst_process(url: str, key: str, users: int, clients: int, seconds: float, tag: str, out: queue.Queue) -> None:
    """One client process of the ingestion burst (processes of their own, so one client loop is not the limit)."""
    traffic = Traffic(load_profiles(DATA), user_ids(users), seed=sum(map(ord, tag)), tag=tag)

    async def run() -> tuple[list[tuple[float, int]], float]:
        results: list[tuple[float, int]] = []
        loop = asyncio.get_running_loop()
        async with http_client(url, key, clients) as client:
            start = loop.time()

            async def sender() -> None:
                while loop.time() < start + seconds:
                    request = traffic.conversation()
                    sent = loop.time()
                    status = await call(client, request)
                    results.append(((loop.time() - sent) * 1000, status))

            await asyncio.gather(*(sender() for _ in range(clients)))
            return results, loop.time() - start

    with cpu_seconds() as cpu:
        results, elapsed = asyncio.run(run())
    out.put((results, elapsed, cpu[0]))


def burst_phase(url: str, key: str, users: int, procs: int, clients: int, seconds: float) -> Phase:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    tags = [f"burst{p}-{uuid.uuid4().hex[:6]}" for p in range(procs)]
    workers = [ctx.Process(target=burst_process, args=(url, key, users, clients, seconds, t, out)) for t in tags]
    for w in workers:
        w.start()
    results: list[tuple[list[tuple[float, int]], float, float]] = []
    deadline = time.monotonic() + seconds + 120
    while len(results) < procs:
        try:
            results.append(out.get(timeout=1))
        except queue.Empty:
            if time.monotonic() > deadline or not any(w.is_alive() for w in workers):
                raise RuntimeError(f"{procs - len(results)} burst client processes gave no result") from None
    for w in workers:
        w.join(30)
    samples = [Sample(INGEST, ms, status) for rows, _, _ in results for ms, status in rows]
    return Phase(samples, max(r[1] for r in results), client_cpu_s=round(sum(r[2] for r in results), 2))


async def watch_backlog(settings: Settings, stop: asyncio.Event, every_s: float = 1.0) -> list[dict[str, float | None]]:
    """The conversation stream over time: entries, not yet delivered to the group (lag), delivered and unacked."""
    client = Redis.from_url(settings.redis_url)
    start = time.monotonic()
    points: list[dict[str, float | None]] = []
    try:
        while not stop.is_set():
            groups = {g["name"].decode(): g for g in await client.xinfo_groups(settings.stream_key)}
            group = groups.get(settings.consumer_group, {})
            points.append(
                {
                    "t_s": round(time.monotonic() - start, 1),
                    "length": int(await client.xlen(settings.stream_key)),
                    "lag": None if group.get("lag") is None else int(group["lag"]),
                    "pending": int(group.get("pending", 0)),
                }
            )
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)
    finally:
        await client.aclose()
    return points


async def stream_length(settings: Settings) -> int:
    client = Redis.from_url(settings.redis_url)
    try:
        return int(await client.xlen(settings.stream_key))
    finally:
        await client.aclose()


# --- numbers -----------------------------------------------------------------------------------------------


def reconcile(phases: Sequence[Phase], stream_added: int) -> dict[str, int | bool]:
    """Accepted conversations against stream entries: no worker runs, so every 202 must be an entry.

    A request the client gave up on (status 0) may still have been appended, so the stream may hold up to
    that many entries more than were acknowledged, never fewer.
    """
    ingest = [s for phase in phases for s in phase.samples if s.route == INGEST]
    accepted = sum(1 for s in ingest if s.status == SUCCESS[INGEST])
    unanswered = sum(1 for s in ingest if s.status == 0)
    return {
        "accepted": accepted,
        "unanswered": unanswered,
        "stream_added": stream_added,
        "accepted_missing": max(0, accepted - stream_added),
        "nothing_lost": accepted <= stream_added <= accepted + unanswered,
    }


def summarize(phase: Phase) -> dict[str, dict[str, float]]:
    by_route: dict[str, list[Sample]] = defaultdict(list)
    for s in phase.samples:
        by_route[s.route].append(s)
    by_route["all"] = phase.samples
    table = {}
    for route in (RESPOND, INGEST, MEMORIES, "all"):
        rows = by_route.get(route)
        if not rows:
            continue
        ms = np.array([s.ms for s in rows])  # every attempt, failed and shed ones included
        errors = sum(1 for s in rows if s.status != SUCCESS[s.route])
        table[route] = {
            "requests": len(rows),
            "errors": errors,
            "ok_per_s": round((len(rows) - errors) / phase.elapsed_s, 1),
            **{f"p{q}_ms": round(float(np.percentile(ms, q)), 1) for q in (50, 95, 99)},
            "max_ms": round(float(ms.max()), 1),
        }
    return table


def statuses(samples: list[Sample]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for s in samples:
        counts[f"{s.route} {s.status}"] += 1
    return dict(sorted(counts.items()))


def print_table(title: str, table: dict[str, dict[str, float]]) -> None:
    print(f"\n{title}")
    print(f"{'route':<26}{'requests':>9}{'errors':>8}{'ok/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for route, r in table.items():
        cells = [r["requests"], r["errors"], r["ok_per_s"], r["p50_ms"], r["p95_ms"], r["p99_ms"], r["max_ms"]]
        print(f"{route:<26}" + "".join(f"{c:>{w}}" for c, w in zip(cells, (9, 8, 8, 9, 9, 9, 9), strict=True)))


def verdicts(mixed: dict[str, float], ingest_per_s: float, kept: dict[str, int | bool]) -> dict[str, dict[str, object]]:
    rows = {
        "throughput": (f">= {TARGET_RPS} req/s answered", mixed["ok_per_s"], mixed["ok_per_s"] >= TARGET_RPS),
        "p99": (f"<= {TARGET_P99_MS} ms", mixed["p99_ms"], mixed["p99_ms"] <= TARGET_P99_MS),
        "errors": ("0", mixed["errors"], mixed["errors"] == 0),
        "ingestion": (f">= {TARGET_INGEST_PER_S} conversations/s", ingest_per_s, ingest_per_s >= TARGET_INGEST_PER_S),
        "kept": ("0 acknowledged and missing", kept["accepted_missing"], bool(kept["nothing_lost"])),
    }
    return {name: {"target": t, "measured": m, "met": ok} for name, (t, m, ok) in rows.items()}


# --- main --------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--rate", type=float, default=120.0, help="mixed phase: arrivals per second (Poisson)")
    parser.add_argument("--clients", type=int, default=64, help="mixed phase: most requests in flight")
    parser.add_argument("--seconds", type=float, default=60.0, help="mixed phase duration")
    parser.add_argument("--mix", default="respond=0.5,conversations=0.3,memories=0.2", help="route weights")
    parser.add_argument("--burst-seconds", type=float, default=20.0)
    parser.add_argument("--burst-procs", type=int, default=2, help="client processes of the ingestion burst")
    parser.add_argument("--burst-clients", type=int, default=32, help="concurrent clients per burst process")
    parser.add_argument("--py-spy", type=Path, default=None, help="record the server's stacks into this dir")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--redis-url", default=os.environ.get("HEEDFUL_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "load.json")
    return parser.parse_args(argv)


def parse_mix(text: str) -> dict[str, float]:
    names = {"respond": RESPOND, "conversations": INGEST, "memories": MEMORIES}
    mix = {names[k]: float(v) for k, v in (part.split("=") for part in text.split(","))}
    return {route: weight for route, weight in mix.items() if weight > 0}


def purge(settings: Settings) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    keys = list(client.scan_iter(f"{settings.key_prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def warm(url: str, key: str, traffic: Traffic) -> None:
    """A few requests of every route, so onnxruntime buffers and caches exist before anything is timed."""

    async def run() -> None:
        async with http_client(url, key, 4) as client:
            for _ in range(10):
                for route in (RESPOND, INGEST, MEMORIES):
                    await call(client, traffic.maker(route)())

    asyncio.run(run())


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    began, load_start = time.perf_counter(), os.getloadavg()
    profiles, users, mix = load_profiles(args.data), user_ids(args.users), parse_mix(args.mix)
    work = Path(tempfile.mkdtemp(prefix="heedful-load-"))
    settings = bench_settings(work, args.redis_url)
    try:
        key, seeded = asyncio.run(seed(settings, profiles, users))
        print(f"seeded {len(users)} users from {len(profiles)} study profiles: {seeded}", flush=True)
        with running_server(settings, work / "server.log") as (url, pid):
            warm(url, key, Traffic(profiles, users, seed=1, tag="warm"))
            costs = asyncio.run(cost_phase(url, key, Traffic(profiles, users, seed=2, tag="cost"), pid))
            stream_before = asyncio.run(stream_length(settings))

            async def mixed_with_backlog() -> tuple[Phase, list[dict[str, float | None]]]:
                stop = asyncio.Event()
                watcher = asyncio.create_task(watch_backlog(settings, stop))
                traffic = Traffic(profiles, users, seed=7, tag="mix")
                with cpu_seconds() as client_cpu:
                    samples, elapsed = await mixed_phase(url, key, traffic, mix, args.rate, args.clients, args.seconds)
                stop.set()
                return Phase(samples, elapsed, client_cpu_s=client_cpu[0]), await watcher

            with py_spy(pid, args.py_spy, "mixed", args.seconds), cpu_seconds(pid) as server_cpu:
                mixed, backlog = asyncio.run(mixed_with_backlog())
            mixed.server_cpu_s = server_cpu[0]
            with py_spy(pid, args.py_spy, "burst", args.burst_seconds), cpu_seconds(pid) as server_cpu:
                burst = burst_phase(url, key, len(users), args.burst_procs, args.burst_clients, args.burst_seconds)
            burst.server_cpu_s = server_cpu[0]
            kept = reconcile([mixed, burst], asyncio.run(stream_length(settings)) - stream_before)
    finally:
        purge(settings)
        shutil.rmtree(work, ignore_errors=True)
    report = build_report(args, mix, seeded, costs, mixed, backlog, burst, kept)
    report |= {"loadavg_at_start": load_start, "loadavg_at_end": os.getloadavg()}
    report["runtime_s"] = round(time.perf_counter() - began, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out} ({report['runtime_s']} s; load average {load_start} -> {os.getloadavg()})")
    return 0


def cpu_use(phase: Phase) -> dict[str, float]:
    """CPU the phase cost: what the shared machine gave the server and the load clients, per request sent
    (shed requests never reached the server, so they are not counted)."""
    n = max(1, sum(1 for s in phase.samples if s.status != SHED))
    return {
        "server_cpu_s": phase.server_cpu_s,
        "server_cores": round(phase.server_cpu_s / phase.elapsed_s, 2),
        "server_cpu_ms_per_request": round(phase.server_cpu_s * 1000 / n, 2),
        "client_cpu_s": phase.client_cpu_s,
        "client_cpu_ms_per_request": round(phase.client_cpu_s * 1000 / n, 2),
    }


def build_report(
    args: argparse.Namespace,
    mix: dict[str, float],
    seeded: dict[str, float],
    costs: dict[str, dict[str, float]],
    mixed: Phase,
    backlog: list[dict[str, float | None]],
    burst: Phase,
    kept: dict[str, int | bool],
) -> dict[str, object]:
    mixed_table, burst_table = summarize(mixed), summarize(burst)
    accepted = sum(1 for s in burst.samples if s.status == 202)
    ingest_per_s = round(accepted / burst.elapsed_s, 1)
    print("\ncost, one request at a time (server CPU ms per request; p50 latency):")
    for route, c in costs.items():
        print(f"  {route:<26}{c['server_cpu_ms_per_request']:>7} ms CPU   p50 {c['p50_ms']} ms")
    title = f"mixed: {args.rate:g} req/s offered (Poisson), <= {args.clients} in flight, {mixed.elapsed_s:.0f} s"
    print_table(title, mixed_table)
    print(f"CPU: {cpu_use(mixed)}")
    print_table(
        f"ingestion burst: {args.burst_procs} x {args.burst_clients} clients, {burst.elapsed_s:.0f} s", burst_table
    )
    print(f"CPU: {cpu_use(burst)}")
    every = max(1, len(backlog) // 8)
    points = " ".join(f"({p['t_s']}, {p['length']}, {p['lag']})" for p in backlog[::every])
    print(f"stream backlog (s, length, lag): {points}")
    print(
        f"accepted conversations (mixed + burst): {kept['accepted']} acknowledged, {kept['stream_added']} new stream "
        f"entries, {kept['unanswered']} unanswered by the client, {kept['accepted_missing']} acknowledged and missing"
    )
    targets = verdicts(mixed_table["all"], ingest_per_s, kept)
    for name, t in targets.items():
        print(f"target {name:<11}{t['target']:<30}measured {t['measured']!s:<10}{'met' if t['met'] else 'NOT met'}")
    return {
        "command": " ".join(["python", "bench/load.py", *sys.argv[1:]]),
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "store": "embedded (qdrant-edge), HEEDFUL_EMBEDDED_WORKER=false",
        "users": args.users,
        "seed": seeded,
        "cost_one_at_a_time": costs,
        "mixed": {
            "offered_per_s": args.rate,
            "max_in_flight": args.clients,
            "mix": mix,
            "seconds": round(mixed.elapsed_s, 1),
            "cpu": cpu_use(mixed),
            "routes": mixed_table,
            "statuses": statuses(mixed.samples),
        },
        "stream_backlog": backlog,
        "accepted_vs_stream": kept,
        "ingestion_burst": {
            "processes": args.burst_procs,
            "clients_per_process": args.burst_clients,
            "seconds": round(burst.elapsed_s, 1),
            "accepted": accepted,
            "accepted_per_s": ingest_per_s,
            "cpu": cpu_use(burst),
            "routes": burst_table,
            "statuses": statuses(burst.samples),
        },
        "targets": targets,
    }


if __name__ == "__main__":
    raise SystemExit(main())
