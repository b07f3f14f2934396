"""/dashboard in headless Chromium: a key unlocks it, and traffic shows up in its numbers."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.async_api import Page, expect
from prometheus_client import REGISTRY

from memory.metrics import SELECTOR_CONSIDERED, SELECTOR_SELECTED, VERIFIER_ATTRIBUTES, VERIFIER_CONTRADICTED
from service.wiring import Components
from tests.api.test_ingest import conversation
from tests.browser.conftest import artifact
from tests.conftest import bearer

pytestmark = [pytest.mark.browser, pytest.mark.integration]

CONVERSATIONS = 6


async def count(page: Page, selector: str) -> int:
    return int((await page.text_content(selector) or "").replace(",", ""))


async def test_dashboard_shows_traffic_after_a_key(live_url: str, page: Page, app_key: str, components: Components):
    await page.goto(f"{live_url}/dashboard")
    await expect(page.locator("#notice")).to_contain_text("Enter an app API key")

    await page.fill("#key", "hfk_not-a-key")
    await page.click("#connect")
    await expect(page.locator("#notice")).to_contain_text("refused")
    await expect(page.locator("#key-form")).to_be_visible()

    await page.fill("#key", app_key)
    await page.click("#connect")
    await expect(page.locator("#stream-length")).to_have_text("0")
    assert app_key not in page.url
    assert await page.evaluate("sessionStorage.getItem('heedful.opsKey')") == app_key
    before = await count(page, "#ingested-total")

    settings = components.settings
    async with httpx.AsyncClient(base_url=live_url, headers=bearer(app_key)) as api:
        for i in range(CONVERSATIONS):
            assert (await api.post("/v1/conversations", json=conversation(f"user{i}", f"c{i}"))).status_code == 202
        assert (await api.post("/v1/conversations", json={"user_id": "x"})).status_code == 422
    await components.redis.xadd(
        settings.dead_letter_stream,
        {
            "tenant": "acme:zoe-private",
            "conversation": "c-poison",
            "error": "ExtractionError: model output was not JSON",
        },
    )
    # No worker runs in this process yet: count verdicts and selections the way the worker and /respond do.
    VERIFIER_ATTRIBUTES.labels(outcome="accepted").inc(3)
    VERIFIER_ATTRIBUTES.labels(outcome="dropped").inc(1)
    VERIFIER_CONTRADICTED.labels(model="passed").inc(2)
    VERIFIER_CONTRADICTED.labels(model="flagged").inc(1)
    SELECTOR_CONSIDERED.labels(backend="classifier").inc(10)
    SELECTOR_SELECTED.labels(backend="classifier").inc(2)

    await page.click("#refresh")
    await expect(page.locator("#ingested-total")).to_have_text(str(before + CONVERSATIONS))
    await expect(page.locator("#stream-length")).to_have_text(str(CONVERSATIONS))
    await expect(page.locator("#lag")).to_have_text(str(CONVERSATIONS))
    await expect(page.locator("#pending")).to_have_text("0")
    await expect(page.locator("#dead-letter-count")).to_have_text("1")
    await expect(page.locator("#ingest-rate")).to_have_text(re.compile(r"^(?!0\.00$)\d+\.\d+$"))
    await expect(page.locator("#accept-rate")).to_have_text(re.compile(r"^\d+\.\d%$"))
    passed, flagged = (
        int(REGISTRY.get_sample_value("heedful_verifier_contradicted_total", {"model": m}) or 0)
        for m in ("passed", "flagged")
    )
    flips = f"{passed + flagged} flipped preferences sent back ({passed} the model passed)"
    await expect(page.locator("#contradicted")).to_have_text(flips)
    await expect(page.locator("#selection-rate")).to_have_text(re.compile(r"^\d+\.\d%$"))
    await expect(page.locator("#selection-note")).to_contain_text("humans choose ~20%")

    conversations_row = page.locator("#latency tbody tr", has_text="/v1/conversations")
    await expect(conversations_row.first).to_contain_text("POST")
    # exactly the API's own kind: other tests in the process may have counted kinds that contain the word
    validation = page.locator("#errors tbody td", has_text=re.compile(r"^validation$"))
    await expect(validation).to_have_count(1)
    dead = page.locator("#dead-letters tbody tr")
    await expect(dead).to_have_count(1)
    await expect(dead).to_contain_text("c-poison")
    await expect(dead).to_contain_text("model output was not JSON")
    assert "zoe-private" not in (await page.content()), "dead letters must not show whose conversation it was"

    await page.screenshot(path=artifact("dashboard.png"), full_page=True)

    await page.click("#forget")
    assert await page.evaluate("sessionStorage.getItem('heedful.opsKey')") is None
    await expect(page.locator("#key-form")).to_be_visible()
