"""The routes behind the pages, without a browser: /v1/ops/stats, the page shells and their assets."""

from __future__ import annotations

import math
import re

import httpx
import pytest

from service.routes.pages import assets
from service.routes.stats import ERROR_TEXT_MAX, quantile
from service.wiring import Components
from tests.api.test_ingest import conversation
from tests.conftest import bearer

INF = math.inf


def test_quantile_interpolates_within_the_bucket_like_prometheus():
    buckets = [(0.1, 50.0), (0.2, 100.0), (INF, 100.0)]
    assert quantile(0.5, buckets) == pytest.approx(0.1)
    assert quantile(0.75, buckets) == pytest.approx(0.15)
    assert quantile(0.25, buckets) == pytest.approx(0.05)  # the first bucket starts at 0
    assert quantile(0.95, [(0.1, 0.0), (0.2, 0.0), (INF, 0.0)]) is None
    assert quantile(0.95, [(0.1, 1.0), (0.2, 1.0), (INF, 10.0)]) == 0.2, "beyond the last bound: the bound"


@pytest.mark.integration
async def test_stats_need_an_app_key(client: httpx.AsyncClient, app_key: str):
    assert (await client.get("/v1/ops/stats")).status_code == 401
    await client.post("/v1/conversations", json=conversation("alice"), headers=bearer(app_key))
    token = (await client.post("/v1/users/alice/token", headers=bearer(app_key))).json()["token"]
    assert (await client.get("/v1/ops/stats", headers=bearer(token))).status_code == 403


@pytest.mark.integration
async def test_stats_report_the_stream_and_dead_letters_without_whose(
    client: httpx.AsyncClient, app_key: str, components: Components
):
    settings = components.settings
    for i in range(3):
        await client.post("/v1/conversations", json=conversation(f"u{i}", f"c{i}"), headers=bearer(app_key))
    await components.redis.xadd(
        settings.dead_letter_stream, {"tenant": "acme:zoe-private", "conversation": "c-poison", "error": "E" * 5000}
    )
    response = await client.get("/v1/ops/stats", headers=bearer(app_key))
    assert response.status_code == 200
    stats = response.json()
    assert stats["stream"] == {"length": 3, "pending": 0, "lag": 3, "dead_letters": 1}
    [dead] = stats["dead_letter_entries"]
    assert dead["conversation"] == "c-poison" and len(dead["error"]) == ERROR_TEXT_MAX
    assert "zoe-private" not in response.text
    assert stats["selector"]["human_rate"] == 0.2
    ingest = [r for r in stats["latency"] if r["route"] == "/v1/conversations" and r["method"] == "POST"]
    assert ingest and ingest[0]["requests"] >= 3 and 0 < ingest[0]["p50_ms"] <= ingest[0]["p95_ms"]

    # a worker reading entries makes them pending and lowers the lag
    await components.redis.xreadgroup(settings.consumer_group, "w1", {settings.stream_key: ">"}, count=2)
    stream = (await client.get("/v1/ops/stats", headers=bearer(app_key))).json()["stream"]
    assert (stream["pending"], stream["lag"]) == (2, 1)


@pytest.mark.integration
async def test_stats_before_anything_was_queued(client: httpx.AsyncClient, app_key: str, components: Components):
    await components.redis.delete(components.settings.stream_key)  # no stream, so no consumer group either
    stream = (await client.get("/v1/ops/stats", headers=bearer(app_key))).json()["stream"]
    assert stream == {"length": 0, "pending": None, "lag": None, "dead_letters": 0}


@pytest.mark.integration
@pytest.mark.parametrize("path", ["/dashboard", "/me"])
async def test_pages_are_shells_that_only_load_their_own_scripts(client: httpx.AsyncClient, path: str):
    response = await client.get(path)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert response.headers["cache-control"] == "no-store"
    for src in re.findall(r'(?:src|href)="([^"]+)"', response.text):
        assert src.startswith("/web/") or src.startswith("data:"), src
        if src.startswith("/web/"):
            assert (await client.get(src)).status_code == 200


def test_no_asset_reaches_for_another_host():
    # no network in production pods either: every script, style and font ships in the package
    for name, body in assets().items():
        assert not re.search(rb"https?://|//cdn|@import|url\(", body), name


def test_memory_text_never_goes_through_markup_parsing():
    for name, body in assets().items():
        if name.endswith(".js"):
            assert not re.search(rb"innerHTML|outerHTML|insertAdjacentHTML|document\.write", body), name


@pytest.mark.integration
@pytest.mark.parametrize("name", ["nope.js", "..%2Fapp.py", "pages.py", ".hidden.css"])
async def test_only_shipped_assets_are_served(client: httpx.AsyncClient, name: str):
    assert (await client.get(f"/web/{name}")).status_code == 404
