"""The `heedful` command: serve, worker, keys, store, train, build, eval."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import sys

from service.settings import get_settings

# command -> module whose main(argv) does the work; imported lazily so `serve` never imports torch
TRAINERS = {
    ("train", "verifier"): "verifier.train",
    ("train", "selector-classifier"): "selector.train",
    ("train", "selector-grpo"): "selector.grpo",
    ("train", "extractor"): "memory.extractor_train",
    ("build", "embedder"): "memory.embedder_export",
    ("build", "verifier-onnx"): "verifier.export",
    ("build", "verifier-data"): "verifier.dataset",
    ("eval", "selector"): "selector.evaluate",
    ("eval", "extraction"): "memory.extraction_eval",
    ("eval", "respond"): "service.respond_eval",
    ("eval", "verifier"): "verifier.eval_cli",
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a model hub
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if len(argv) >= 2 and (argv[0], argv[1]) in TRAINERS:
        module = importlib.import_module(TRAINERS[(argv[0], argv[1])])
        return int(module.main(argv[2:]) or 0)
    parser = argparse.ArgumentParser(prog="heedful", description="Personalization memory for chat apps.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the API (and, with the embedded store, the extraction worker)")
    sub.add_parser("worker", help="run an extraction worker against HEEDFUL_REDIS_URL and HEEDFUL_QDRANT_URL")
    keys = sub.add_parser("keys", help="API keys").add_subparsers(dest="action", required=True)
    create = keys.add_parser("create", help="create an API key for an app (printed once)")
    create.add_argument("--app", required=True)
    create.add_argument("--name", default="")
    hashed = keys.add_parser("hash", help="print the SHA-256 of a key, for HEEDFUL_API_KEY_HASHES")
    hashed.add_argument("key")
    store = sub.add_parser("store", help="maintenance of the memory store").add_subparsers(dest="action", required=True)
    fill = store.add_parser(
        "fill-statements",
        help="give every memory stored without a statement vector its vector (after an upgrade; with the "
        "embedded store, while the service is stopped)",
    )
    fill.add_argument("--batch", type=int, default=256, help="memories embedded and written per round")
    for verb in sorted({v for v, _ in TRAINERS}):
        choices = [w for v, w in TRAINERS if v == verb]
        sub.add_parser(verb, help=f"{verb} {', '.join(choices)} (options: heedful {verb} WHAT --help)").add_argument(
            "what", choices=choices
        )
    args = parser.parse_args(argv)
    if args.command == "serve":
        from service.serve import serve

        return serve(get_settings())
    if args.command == "worker":
        from service.serve import run_worker

        return run_worker(get_settings())
    if args.command == "keys":
        return asyncio.run(_keys(args))
    if args.command == "store":
        return asyncio.run(_fill_statements(args.batch))
    parser.error(f"unknown command {argv!r}")
    return 2


async def _keys(args: argparse.Namespace) -> int:
    from service.auth import ApiKeys, hash_key
    from service.wiring import connect_redis

    if args.action == "hash":
        print(hash_key(args.key))
        return 0
    settings = get_settings()
    redis = connect_redis(settings)
    try:
        key = await ApiKeys(redis, settings.key_prefix).create(args.app, args.name)
    finally:
        await redis.aclose()
    print(key)
    return 0


async def _fill_statements(batch: int) -> int:
    import functools
    import json

    from memory.embeddings import Embedder
    from memory.store import fill_all_statement_vectors
    from service.wiring import build_store, embed_off_loop

    settings = get_settings()
    embedder = Embedder.load(settings.models_dir / "embedder", settings.onnx_threads)
    store = await build_store(settings)
    try:
        counts = await fill_all_statement_vectors(store, functools.partial(embed_off_loop, embedder), batch)
    finally:
        await store.close()
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
