"""Schema-driven fuzzing (schemathesis) of every route of the running service: no 5xx, responses match
the OpenAPI schema. Runs against `heedful serve` as a real process with real Redis and the Qdrant engine."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from tests.conftest import LiveServer, free_port, purge, test_settings

pytestmark = pytest.mark.integration

EXAMPLES_PER_OPERATION = 30


@pytest.fixture
def fuzz_server(tmp_path) -> Iterator[LiveServer]:
    """The service with its LLM behind a closed port: generation answers a documented 503 at once, so the
    fuzzer exercises every route without waiting on a model (generation has its own tests)."""
    settings = test_settings(tmp_path, llm_url=f"http://127.0.0.1:{free_port()}/v1", llm_retries=0)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    server = LiveServer(settings)
    server.start()
    yield server
    server.stop()
    purge(settings)


def no_llm(response: httpx.Response) -> bool:
    return response.status_code == 503 and "language model is unavailable" in response.text


def test_no_route_answers_5xx_or_violates_its_schema(fuzz_server: LiveServer) -> None:
    """Generated requests on every operation of the OpenAPI schema, with a valid API key.

    Lost: not checked: the fuzzer's own valid requests may erase or edit what it finds, so stored state is not
    compared; the test asserts no 5xx (other than the documented no-LLM 503) and schema-conforming answers."""
    live_server = fuzz_server
    key = httpx.post(f"{live_server.url}/healthz").status_code  # warm-up: the process is up
    assert key in (200, 405)
    app_key = _create_key(live_server)
    headers = {"Authorization": f"Bearer {app_key}"}
    seed = {"user_id": "alice", "conversation_id": "c1", "messages": [{"role": "user", "content": "I like tea."}]}
    assert httpx.post(f"{live_server.url}/v1/conversations", json=seed, headers=headers).status_code == 202

    schema = schemathesis.openapi.from_url(f"{live_server.url}/openapi.json")
    operations = [op for op in schema.get_all_operations() if op.ok()]
    assert len(operations) >= 10, "every route should be in the schema"
    failures: list[str] = []
    for result in operations:
        operation = result.ok()

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def check(case: schemathesis.Case) -> None:
            case.headers = {**(case.headers or {}), **headers}
            response = case.call(base_url=live_server.url, timeout=30)
            if response.status_code >= 500 and not no_llm(response):
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:200]}")
            case.validate_response(response, checks=[schemathesis.checks.response_schema_conformance])

        check()
    assert failures == []


def _create_key(server: LiveServer) -> str:
    import asyncio

    from redis.asyncio import Redis

    from service.auth import ApiKeys

    async def create() -> str:
        redis = Redis.from_url(server.settings.redis_url)
        try:
            return await ApiKeys(redis, server.settings.key_prefix).create("fuzz")
        finally:
            await redis.aclose()

    return asyncio.run(create())
