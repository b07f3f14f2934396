"""All configuration, in one place: `HEEDFUL_*` environment variables over embedded defaults."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Every field works unset: the embedded defaults run on one machine with nothing configured."""

    model_config = SettingsConfigDict(env_prefix="HEEDFUL_", env_file=None, extra="ignore")

    # where the embedded store, key file and caches live
    data_dir: Path = Path("var")
    host: str = "127.0.0.1"
    port: int = 8000

    # Redis: the ingestion stream and the raw conversation store
    redis_url: str = "redis://127.0.0.1:6379/0"
    stream_key: str = "heedful:conversations"
    consumer_group: str = "extractors"
    dead_letter_stream: str = "heedful:dead-letter"
    conversation_retention_s: int = Field(default=30 * 24 * 3600, ge=60)
    key_prefix: str = "heedful"

    # Vector store: Qdrant server when a URL is set, else the embedded Qdrant engine on disk
    qdrant_url: str | None = None
    qdrant_api_key: SecretStr | None = None
    qdrant_collection: str = "heedful_memories"
    edge_path: Path | None = None  # default: <data_dir>/qdrant-edge

    # LLM: a vLLM OpenAI-compatible server when a URL is set, else the embedded SmolLM2
    llm_url: str | None = None
    llm_model: str = "SmolLM2-135M-Instruct"
    llm_api_key: SecretStr | None = None
    llm_timeout_s: float = 60.0
    llm_retries: int = 2
    llm_threads: int = Field(default=2, ge=1, description="torch threads for the embedded LLM")
    # Extraction's model. Embedded: SmolLM2 with the LoRA adapter under models/extractor ("tuned", the
    # default: the untuned 135M model cannot extract) or without it ("base"). With llm_url: the served
    # model name extraction asks for, e.g. the adapter served by vLLM as `--lora-modules extractor=...`;
    # unset, extraction uses llm_model like generation.
    extractor: Literal["tuned", "base"] = "tuned"
    extractor_llm_model: str | None = None

    # Trained models (ONNX), committed under models/
    models_dir: Path = REPO_ROOT / "models"
    selector_backend: Literal["classifier", "llm", "embedding", "bm25"] = "classifier"
    onnx_threads: int = Field(default=1, ge=1, description="intra-op threads per ONNX session")

    # Input limits
    max_body_bytes: int = 1_000_000
    max_messages: int = 500
    max_message_chars: int = 20_000
    max_user_id_chars: int = 128

    # Worker
    embedded_worker: bool | None = None  # default: on with the embedded store (one process owns it)
    worker_batch: int = 8
    worker_block_ms: int = 2000
    worker_claim_idle_ms: int = 60_000
    worker_max_attempts: int = 3
    worker_metrics_port: int = 9100
    erasure_tombstone_s: int = Field(default=7 * 24 * 3600, ge=60)

    # Auth: app keys are stored hashed; user tokens are HS256 JWTs signed with this secret
    token_secret: SecretStr | None = None  # default: generated once into <data_dir>/token_secret
    token_ttl_s: int = 3600
    api_key_hashes: dict[str, str] = Field(
        default_factory=dict, description="sha256 hex of an API key -> app id (JSON); keys can also be created"
    )
    dev_key: bool = True  # the embedded default prints a development key on start
    rate_limit_per_minute: int = 6000

    @model_validator(mode="after")
    def _embedded_worker_default(self) -> Settings:
        if self.embedded_worker is None:
            self.embedded_worker = self.qdrant_url is None
        return self

    @property
    def edge_dir(self) -> Path:
        return self.edge_path or self.data_dir / "qdrant-edge"


@lru_cache
def get_settings() -> Settings:
    return Settings()
