"""Selection latency per backend, side by side: one user with N memories, p50 / p99 per select call.

    python bench/selector.py [--sizes 50,200,1000] [--runs 200] [--threads 1]

Memories carry precomputed embeddings (as the store returns them); each call embeds the prompt
and scores every memory, through the same `select` the API awaits. Two prompts: a short one and
the pilot val prompt (~130 tokens), since prompt length drives the embedding cost. The LLM
backend is not timed here: its cost is the LLM server's, one request per memory.
Writes bench/results/selector.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as `python bench/selector.py`: this file's folder would shadow the selector package
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import asyncio
import json
import os
import platform
import random
import time
from collections.abc import Sequence

import numpy as np

from memory.embeddings import Embedder, stored_memories
from memory.model import Memory
from selector import Selector, build

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "relevance"
SHORT_PROMPT = "How do I get around St. Louis on the cheap?"
BACKENDS = ("classifier", "embedding", "bm25")
ROUNDS = 5


def attribute_pool(data_dir: Path) -> list[str]:
    texts: set[str] = set()
    with (data_dir / "profiles_task6_items.jsonl").open() as f:
        for line in f:
            texts.update(a["attribute"] for a in json.loads(line)["attributes"])
    return sorted(texts)


def long_prompt(data_dir: Path) -> str:
    with (data_dir / "pilot_val.jsonl").open() as f:
        return str(json.loads(f.readline())["prompt_text"])


def make_memories(texts: list[str], embedder: Embedder) -> list[Memory]:
    return stored_memories("bench-user", texts, embedder)


async def time_calls(selector: Selector, prompt: str, memories: list[Memory], runs: int) -> list[float]:
    for _ in range(5):  # warm-up: first runs allocate onnxruntime buffers
        await selector.select(prompt, memories)
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        await selector.select(prompt, memories)
        out.append((time.perf_counter() - start) * 1000)
    return out


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50,200,1000")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "selector.json")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    embedder = Embedder.load(args.models / "embedder", threads=args.threads)
    selectors = {name: build(name, args.models, embedder) for name in BACKENDS}
    pool = attribute_pool(args.data)
    prompts = {"short": SHORT_PROMPT, "long": long_prompt(args.data)}
    load_start = os.getloadavg()
    configs = []
    for size in [int(s) for s in args.sizes.split(",")]:
        memories = make_memories(random.Random(size).sample(pool, size), embedder)
        configs += [(name, size, pname, memories) for pname in prompts for name in selectors]
    # Rounds over all configurations, so that load from other jobs falls on all of them alike.
    samples: dict[tuple[str, int, str], list[float]] = {(n, s, p): [] for n, s, p, _ in configs}
    for _ in range(ROUNDS):
        for name, size, pname, memories in configs:
            ms = asyncio.run(time_calls(selectors[name], prompts[pname], memories, args.runs // ROUNDS))
            samples[(name, size, pname)] += ms
    rows = [
        {
            "backend": n,
            "memories": s,
            "prompt": p,
            "runs": len(ms),
            "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)),
        }
        for (n, s, p), ms in samples.items()
    ]
    load = os.getloadavg()
    doc = {
        "threads": args.threads,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "loadavg_at_start": load_start,
        "loadavg_at_end": load,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print()
    print(render(rows))
    return 0


def render(rows: list[dict[str, object]]) -> str:
    lines = [
        "| memories | prompt | " + " | ".join(f"{b} p50 / p99 ms" for b in BACKENDS) + " |",
        "|---|---|" + "---|" * len(BACKENDS),
    ]
    keys = sorted({(r["memories"], r["prompt"]) for r in rows}, key=lambda k: (k[0], k[1] != "short"))  # type: ignore[arg-type]
    for size, prompt in keys:
        cells = []
        for b in BACKENDS:
            r = next(r for r in rows if (r["memories"], r["prompt"], r["backend"]) == (size, prompt, b))
            cells.append(f"{r['p50_ms']:.1f} / {r['p99_ms']:.1f}")
        lines.append(f"| {size} | {prompt} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
