"""The composition root: every part of heedful is built here, once, for both `serve` and `worker`."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path

from redis.asyncio import Redis
from redis.exceptions import RedisError

from memory.audit import AuditLog
from memory.embeddings import Embedder
from memory.extraction import Extractor
from memory.gate import AttributeGate, PassThroughGate
from memory.ingest import ConversationLog
from memory.llm import LLM
from memory.llm import factory as llm_factory
from memory.store import MemoryStore
from memory.stores.edge import EdgeMemoryStore
from memory.stores.qdrant_server import QdrantServerMemoryStore
from memory.worker import ExtractionWorker, WorkerConfig
from selector import Selector
from selector import build as build_selector
from service.auth import ApiKeys, UserTokens
from service.settings import Settings

log = logging.getLogger("heedful")


@dataclass
class Components:
    settings: Settings
    redis: Redis
    store: MemoryStore
    conversations: ConversationLog
    audit: AuditLog
    keys: ApiKeys
    tokens: UserTokens
    embedder: Embedder
    llm: LLM
    extractor_llm: LLM  # the same object as llm unless extraction has its own model (settings.extractor)
    gate: AttributeGate
    selectors: dict[str, Selector] = field(default_factory=dict)
    background: list[asyncio.Task[None]] = field(default_factory=list)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def embed(self, texts: list[str]) -> list[list[float]]:
        return await embed_off_loop(self.embedder, texts)

    async def start(self) -> None:
        try:
            await self.conversations.ensure_group(self.settings.consumer_group)
        except RedisError as exc:  # the API serves what it can and reports not-ready until Redis is back
            log.warning("Redis unavailable at start (%s); ingestion answers 503 until it returns", type(exc).__name__)
            return
        if self.settings.dev_key:
            key = await ensure_dev_key(self)
            print(f"heedful development API key (app 'dev'): {key}", flush=True)
        if self.settings.embedded_worker:
            # one process owns the embedded store, so its extraction worker runs here, beside the API
            worker = self.worker(f"embedded-{socket.gethostname()}-{os.getpid()}")
            self.background.append(asyncio.create_task(worker.run(self.stopping), name="extraction-worker"))

    def selector(self, backend: str) -> Selector:
        """The selector for a backend, built once; the configured default is built at start-up."""
        if backend not in self.selectors:
            self.selectors[backend] = build_selector(
                backend, self.settings.models_dir, embedder=self.embedder, llm=self.llm
            )
        return self.selectors[backend]

    def worker(self, consumer: str) -> ExtractionWorker:
        s = self.settings
        config = WorkerConfig(
            group=s.consumer_group,
            consumer=consumer,
            dead_letter_stream=s.dead_letter_stream,
            batch=s.worker_batch,
            block_ms=s.worker_block_ms,
            claim_idle_ms=s.worker_claim_idle_ms,
            max_attempts=s.worker_max_attempts,
        )
        return ExtractionWorker(
            self.conversations, self.store, Extractor(self.extractor_llm), self.gate, self.embed, config
        )

    async def close(self) -> None:
        self.stopping.set()
        for task in self.background:
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        await self.store.close()
        await self.llm.aclose()
        if self.extractor_llm is not self.llm:
            await self.extractor_llm.aclose()
        await self.redis.aclose()


async def embed_off_loop(embedder: Embedder, texts: list[str]) -> list[list[float]]:
    """`texts` embedded in a worker thread (the event loop keeps serving), as plain lists for the store."""
    vectors = await asyncio.to_thread(embedder.embed, texts)
    return [v.tolist() for v in vectors]


def token_secret(settings: Settings) -> str:
    """The configured secret, or one generated once into the data directory (readable by its owner only)."""
    if settings.token_secret is not None:
        return settings.token_secret.get_secret_value()
    path = settings.data_dir / "token_secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def connect_redis(settings: Settings) -> Redis:
    return Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2, health_check_interval=30)


async def build_store(settings: Settings) -> MemoryStore:
    if settings.qdrant_url:
        api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        return await QdrantServerMemoryStore.connect(settings.qdrant_url, settings.qdrant_collection, api_key)
    return await asyncio.to_thread(EdgeMemoryStore, settings.edge_dir)


async def build(settings: Settings) -> Components:
    redis = connect_redis(settings)
    secret = token_secret(settings)
    conversations = ConversationLog(
        redis,
        prefix=settings.key_prefix,
        stream=settings.stream_key,
        retention_s=settings.conversation_retention_s,
        erasure_secret=secret.encode(),
    )
    embedder = await asyncio.to_thread(Embedder.load, settings.models_dir / "embedder", settings.onnx_threads)
    llm = build_llm(settings)
    components = Components(
        settings=settings,
        redis=redis,
        store=await build_store(settings),
        conversations=conversations,
        audit=AuditLog(redis, f"{settings.key_prefix}:audit"),
        keys=ApiKeys(redis, settings.key_prefix, configured=settings.api_key_hashes),
        tokens=UserTokens(secret, settings.token_ttl_s),
        embedder=embedder,
        llm=llm,
        extractor_llm=build_extractor_llm(settings, llm),
        gate=build_gate(settings),
    )
    components.selector(settings.selector_backend)  # a missing model fails here, at start, not per request
    return components


def build_llm(settings: Settings, model: str | None = None, adapter_dir: Path | None = None) -> LLM:
    api_key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    return llm_factory.build_llm(
        settings.llm_url,
        model or settings.llm_model,
        api_key,
        settings.llm_timeout_s,
        settings.llm_retries,
        settings.data_dir / "models" / "smollm2",
        settings.llm_threads,
        adapter_dir,
    )


def build_extractor_llm(settings: Settings, generator: LLM) -> LLM:
    """Extraction's model: the LoRA-tuned SmolLM2 on the embedded default (models/extractor/README.md)."""
    if settings.llm_url:
        if not settings.extractor_llm_model or settings.extractor_llm_model == settings.llm_model:
            return generator
        return build_llm(settings, model=settings.extractor_llm_model)
    if settings.extractor == "base":
        return generator
    adapter = settings.models_dir / "extractor"
    if not (adapter / "adapter_config.json").is_file():
        raise RuntimeError(
            f"HEEDFUL_EXTRACTOR=tuned needs the LoRA adapter at {adapter} (rebuild: `heedful train extractor`), "
            "or set HEEDFUL_EXTRACTOR=base to extract with the untuned model"
        )
    return build_llm(settings, adapter_dir=adapter)


def build_gate(settings: Settings) -> AttributeGate:
    from verifier.refine import VerifyAndRefine
    from verifier.runtime import Verifier, VerifierModelMissing

    try:
        verifier = Verifier.load(settings.models_dir / "verifier", settings.onnx_threads)
    except VerifierModelMissing as exc:
        return PassThroughGate(f"no verifier model: {exc}")
    return VerifyAndRefine(verifier)


async def ensure_dev_key(components: Components) -> str:
    """The embedded default's development key for app `dev`: reused while valid, else created and saved."""
    path: Path = components.settings.data_dir / "dev-api-key"
    if path.exists():
        key = path.read_text().strip()
        if await components.keys.app_for(key) is not None:
            return key
    key = await components.keys.create("dev", name="development key")
    path.write_text(key)
    path.chmod(0o600)
    log.warning("development API key for app 'dev' written to %s", path)
    return key


def dump_settings(settings: Settings) -> str:
    return json.dumps(settings.model_dump(mode="json"), indent=2, default=str)
