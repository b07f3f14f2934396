"""/respond without generation for users with 200 memories, beside a plain similarity top-k retrieval.

    python bench/respond.py [--users 4] [--memories 200] [--requests 150] [--phase-seconds 40]

Issue 6 asks that everything except generation stays at p50 <= 40 ms for a user with 200 memories.
Generation is left out by context-only mode (`generate: false`), which runs the same load and select
as a generating request and returns the system prompt instead of an answer.

One run, same users, same prompts (the task6 prompts, in turn), requests one after another:
1. in-process, interleaved per request: `Responder.plan` with the `classifier` and `embedding`
   selectors (its own timings: load = the store read of the user's active memories, select), and the
   approach of mem0 and similar systems: embed the prompt, `store.search` top-5, no selector; and the
   classifier path with the prompt embedded after the store read instead of beside it (the Responder
   before it overlapped the two);
2. `heedful serve` as a real process on the same store: POST /respond, generate false, for both
   selectors: the server's load/select timings and the client's end-to-end latency; and GET /healthz
   on the same connection, the floor any request pays on this machine.
The similarity top-k has no HTTP endpoint in heedful, so it is compared in-process.

Users are built from the profiles in profiles_task6_items.jsonl (each profile has ~24 attributes, so a
user combines consecutive profiles until it has --memories distinct ones), embedded with the real
embedder and written to a temp embedded store; Redis keys use a prefix of their own and are removed.
Timed requests follow warm-up requests for every user (steady state: the selectors' memory-vector
cache is filled). Writes bench/results/respond.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere

from memory.conversations import tenant_id  # noqa: E402
from memory.model import Memory, MemoryStatus  # noqa: E402
from memory.phrasing import as_statement  # noqa: E402
from memory.store import MemoryFilter  # noqa: E402
from service.auth import KEY_PREFIX, hash_key  # noqa: E402
from service.respond import MAX_CONSIDERED, Responder, Turn  # noqa: E402
from service.respond_eval import DATA_FILE, eval_settings, purge  # noqa: E402
from service.settings import Settings, get_settings  # noqa: E402
from service.wiring import Components, build  # noqa: E402

APP = "bench"
BACKENDS = ("classifier", "embedding")
TOP_K = 5  # mem0's default search limit is 100; chat integrations pass a handful, as /respond's max_memories
TARGET_P50_MS = 40.0  # issue 6: everything except generation
WARMUP_PER_USER = 3
SERVER_START_TIMEOUT_S = 90
# The same client and server doing nothing: what any request costs on this machine before heedful's work.
HTTP_FLOOR = "GET /healthz over HTTP (floor)"
SEQUENTIAL = "heedful classifier, prompt embedded after the read"


def user_profiles(path: Path, users: int, size: int) -> list[list[str]]:
    """`users` attribute lists of `size` distinct attributes: profile k, k+1, ... combined in file order."""
    profiles: dict[str, list[str]] = {}
    with path.open() as f:
        for line in f:
            row = json.loads(line)
            profile = profiles.setdefault(row["user_id"], [])
            profile.extend(a["attribute"] for a in row["attributes"] if a["attribute"] not in profile)
    ordered = list(profiles.values())
    out = []
    for k in range(users):
        texts: dict[str, None] = {}
        for step in range(len(ordered)):
            texts.update(dict.fromkeys(ordered[(k + step) % len(ordered)]))
            if len(texts) >= size:
                break
        if len(texts) < size:
            raise SystemExit(f"only {len(texts)} distinct attributes in {path}; ask for fewer --memories")
        out.append(list(texts)[:size])
    return out


def prompts(path: Path) -> list[str]:
    seen: dict[str, str] = {}
    with path.open() as f:
        for line in f:
            row = json.loads(line)
            seen.setdefault(row["prompt_id"], row["prompt_text"])
    return list(seen.values())


async def remember_users(components: Components, profiles: list[list[str]]) -> list[str]:
    unique = sorted({t for p in profiles for t in p})
    vectors = dict(zip(unique, await components.embed(unique), strict=True))
    statements = dict(zip(unique, await components.embed([as_statement(t) for t in unique]), strict=True))
    tenants = []
    for k, texts in enumerate(profiles):
        tenant = tenant_id(APP, f"user{k}")
        memories = [Memory.new(tenant, t, embedding=vectors[t], statement_embedding=statements[t]) for t in texts]
        await components.store.upsert(memories)
        tenants.append(tenant)
    return tenants


def ms(start: float, end: float) -> float:
    return (end - start) * 1000


async def in_process(
    components: Components, tenants: list[str], asks: list[str], requests: int, deadline: float
) -> dict[str, dict[str, list[float]]]:
    responder = Responder(components)
    samples: dict[str, dict[str, list[float]]] = {
        **{f"heedful {b}": {"load": [], "select": [], "total": []} for b in BACKENDS},
        SEQUENTIAL: {"load": [], "select": [], "total": []},
        f"similarity top-{TOP_K}": {"embed": [], "search": [], "total": []},
    }
    active = MemoryFilter(status=MemoryStatus.active)
    for i in range(-WARMUP_PER_USER * len(tenants), requests):
        if time.monotonic() > deadline:
            break
        tenant, prompt = tenants[i % len(tenants)], asks[i % len(asks)]
        for backend in BACKENDS:
            started = time.perf_counter()
            plan = await responder.plan(tenant, [Turn("user", prompt)], backend=backend, max_memories=5)
            total = ms(started, time.perf_counter())
            if i >= 0:
                row = samples[f"heedful {backend}"]
                row["load"].append(plan.timings_ms["load"])
                row["select"].append(plan.timings_ms["select"])
                row["total"].append(total)
        # The same read and selection with the prompt embedded after the read, as before the overlap.
        started = time.perf_counter()
        page = await components.store.page(tenant, active, limit=MAX_CONSIDERED, with_vectors=False)
        loaded = time.perf_counter()
        await components.selector("classifier").select(prompt, page.memories)
        done = time.perf_counter()
        if i >= 0:
            row = samples[SEQUENTIAL]
            row["load"].append(ms(started, loaded))
            row["select"].append(ms(loaded, done))
            row["total"].append(ms(started, done))
        started = time.perf_counter()
        (vector,) = await components.embed([prompt])
        embedded = time.perf_counter()
        await components.store.search(tenant, vector, limit=TOP_K)
        done = time.perf_counter()
        if i >= 0:
            row = samples[f"similarity top-{TOP_K}"]
            row["embed"].append(ms(started, embedded))
            row["search"].append(ms(embedded, done))
            row["total"].append(ms(started, done))
    return samples


class Server:
    """`heedful serve` as its own process on a free loopback port, configured by HEEDFUL_* variables."""

    def __init__(self, settings: Settings, log: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("HEEDFUL_")}
        env = {**inherited, **settings_env(settings), "HEEDFUL_PORT": str(self.port), "HF_HUB_OFFLINE": "1"}
        self._log = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve"],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"heedful serve exited with {self.process.returncode}; see {self._log.name}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise SystemExit(f"heedful serve not ready within {timeout_s:.0f} s; see {self._log.name}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()


def settings_env(settings: Settings) -> dict[str, str]:
    env = {}
    for name, value in settings.model_dump(mode="json").items():
        if value is not None:
            env[f"HEEDFUL_{name.upper()}"] = json.dumps(value) if isinstance(value, dict | list) else str(value)
    if settings.token_secret is not None:
        env["HEEDFUL_TOKEN_SECRET"] = settings.token_secret.get_secret_value()
    return env


def over_http(
    url: str, key: str, users: int, asks: list[str], requests: int, deadline: float
) -> dict[str, dict[str, list[float]]]:
    samples: dict[str, dict[str, list[float]]] = {
        **{f"heedful {b} over HTTP": {"load": [], "select": [], "rest": [], "end_to_end": []} for b in BACKENDS},
        HTTP_FLOOR: {"end_to_end": []},
    }
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        for i in range(-WARMUP_PER_USER * users, requests):
            if time.monotonic() > deadline:
                break
            started = time.perf_counter()
            client.get("/healthz").raise_for_status()
            if i >= 0:
                samples[HTTP_FLOOR]["end_to_end"].append(ms(started, time.perf_counter()))
            for backend in BACKENDS:
                body = {
                    "user_id": f"user{i % users}",
                    "messages": [{"role": "user", "content": asks[i % len(asks)]}],
                    "options": {"selector": backend, "generate": False},
                }
                started = time.perf_counter()
                response = client.post("/respond", json=body)
                elapsed = ms(started, time.perf_counter())
                response.raise_for_status()
                if i >= 0:
                    row, timings = samples[f"heedful {backend} over HTTP"], response.json()["timings_ms"]
                    row["load"].append(timings["load"])
                    row["select"].append(timings["select"])
                    # everything else in the same request: HTTP, auth, rate limit, the response record, JSON
                    row["rest"].append(elapsed - timings["load"] - timings["select"])
                    row["end_to_end"].append(elapsed)
    return samples


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {"n": len(values), "p50": round(float(p50), 2), "p95": round(float(p95), 2), "p99": round(float(p99), 2)}


def render(rows: dict[str, dict[str, dict[str, float]]]) -> str:
    lines = [
        "| path | requests | stage | p50 ms | p95 ms | p99 ms |",
        "|---|---|---|---|---|---|",
    ]
    for path, stages in rows.items():
        for stage, p in stages.items():
            if p["n"]:
                lines.append(f"| {path} | {p['n']} | {stage} | {p['p50']:.1f} | {p['p95']:.1f} | {p['p99']:.1f} |")
    return "\n".join(lines)


async def setup(settings: Settings, profiles: list[list[str]]) -> tuple[Components, list[str]]:
    components = await build(settings)
    return components, await remember_users(components, profiles)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--memories", type=int, default=200, help="memories per user")
    parser.add_argument("--requests", type=int, default=150, help="timed requests per path and phase")
    parser.add_argument("--phase-seconds", type=float, default=40, help="each phase stops by itself after this")
    parser.add_argument("--data", type=Path, default=DATA_FILE)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "respond.json")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.monotonic()
    load_at_start = os.getloadavg()
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    tmp = Path(tempfile.mkdtemp(prefix="heedful-bench-respond-"))
    settings = eval_settings(get_settings(), tmp / "var").model_copy(
        update={"api_key_hashes": {hash_key(key): APP}, "rate_limit_per_minute": 1_000_000}
    )
    profiles = user_profiles(args.data, args.users, args.memories)
    asks = prompts(args.data)
    server: Server | None = None
    try:

        async def first_phase() -> tuple[dict[str, dict[str, list[float]]], int]:
            components, tenants = await setup(settings, profiles)
            try:
                stored = await components.store.count(tenants[0])
                deadline = time.monotonic() + args.phase_seconds
                return await in_process(components, tenants, asks, args.requests, deadline), stored
            finally:
                await components.close()  # flushes and releases the shard for the server process

        samples, stored = asyncio.run(first_phase())
        print(f"in-process phase done ({time.monotonic() - began:.0f} s); starting heedful serve", file=sys.stderr)
        server = Server(settings, tmp / "server.log")
        server.wait_ready(SERVER_START_TIMEOUT_S)
        deadline = time.monotonic() + args.phase_seconds
        samples.update(over_http(server.url, key, args.users, asks, args.requests, deadline))
    finally:
        if server is not None:
            server.stop()
        purge(settings)
        shutil.rmtree(tmp, ignore_errors=True)
    rows = {path: {stage: percentiles(v) for stage, v in stages.items()} for path, stages in samples.items()}
    lengths = [len(p) for p in asks]
    doc = {
        "users": args.users,
        "memories_per_user": stored,
        "top_k": TOP_K,
        "prompts": len(asks),
        "prompt_chars_median": float(np.median(lengths)),
        "onnx_threads": settings.onnx_threads,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "loadavg_at_start": load_at_start,
        "loadavg_at_end": os.getloadavg(),
        "seconds": round(time.monotonic() - began, 1),
        "target_p50_ms": TARGET_P50_MS,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(render(rows))
    for backend in BACKENDS:
        p50 = rows[f"heedful {backend} over HTTP"]["end_to_end"].get("p50")
        verdict = "n/a" if p50 is None else ("meets" if p50 <= TARGET_P50_MS else "misses")
        print(
            f"{backend}: /respond without generation, client p50 {p50} ms: {verdict} the {TARGET_P50_MS:.0f} ms target"
        )
    print(f"load average {doc['loadavg_at_start']} -> {doc['loadavg_at_end']}; {doc['seconds']} s; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
