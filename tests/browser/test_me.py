"""/me in headless Chromium: a user sees their memories and evidence, and what they delete is gone from the store."""

from __future__ import annotations

import json

import httpx
import jwt
import pytest
from playwright.async_api import Locator, Page, expect

from memory.model import MemoryStatus
from service.wiring import Components
from tests.api.test_ingest import conversation
from tests.api.test_memories import remember
from tests.browser.conftest import artifact
from tests.conftest import bearer

pytestmark = [pytest.mark.browser, pytest.mark.integration]

XSS = "<img src=x onerror=alert(1)> likes <b>bold</b> claims"
TENANT = "acme:alice"


def item(page: Page, text: str) -> Locator:
    return page.locator("li.memory", has=page.locator(".memory-text", has_text=text))


async def test_me_lists_changes_and_erases(live_url: str, page: Page, app_key: str, components: Components):
    async with httpx.AsyncClient(base_url=live_url, headers=bearer(app_key)) as api:
        await api.post("/v1/conversations", json=conversation("alice"))
        token = (await api.post("/v1/users/alice/token")).json()["token"]
        await api.post("/v1/conversations", json=conversation("bob"))
    shorts, vegetarian, hostile = await remember(components, TENANT, "prefers short answers", "is vegetarian", XSS)
    bobs = await remember(components, "acme:bob", "is a pilot")

    await page.goto(f"{live_url}/me#token={token}")
    memories = page.locator("#memories li.memory")
    await expect(memories).to_have_count(3)
    assert "token" not in page.url, "the token must leave the address bar"
    assert await page.evaluate("sessionStorage.getItem('heedful.userToken')") == token
    await expect(item(page, "is vegetarian").locator("blockquote.quote")).to_have_text("is vegetarian")
    await expect(page.locator("#state")).to_contain_text("3 memories (3 in use)")

    # memory text is data: shown character for character, never parsed as markup
    await expect(item(page, "likes").locator(".memory-text")).to_have_text(XSS)
    await expect(item(page, "likes").locator("blockquote.quote")).to_have_text(XSS)
    assert await page.locator("#memories img, #memories b").count() == 0

    await item(page, "is vegetarian").locator("button.toggle").click()
    await expect(item(page, "is vegetarian")).to_have_attribute("data-status", "disabled")
    stored = await components.store.get(TENANT, vegetarian.id)
    assert stored is not None and stored.status == MemoryStatus.disabled

    async with page.expect_download() as download_info:
        await page.click("#export")
    exported = json.loads((await (await download_info.value).path()).read_text())
    assert sorted(m["text"] for m in exported["memories"]) == sorted([shorts.text, vegetarian.text, hostile.text])

    await page.click("#pause")
    await expect(page.locator("#resume")).to_be_visible()
    assert await components.conversations.paused(TENANT)

    await item(page, "prefers short answers").locator("button.delete").click()
    await expect(memories).to_have_count(2)
    assert await components.store.get(TENANT, shorts.id) is None

    await page.screenshot(path=artifact("me.png"), full_page=True)

    await page.click("#delete-all")
    await expect(page.locator("#confirm")).to_be_visible()
    await page.click("#cancel-delete-all")
    await expect(page.locator("#confirm")).to_be_hidden()
    assert await components.store.count(TENANT) == 2, "nothing is erased before the confirmation"

    await page.click("#delete-all")
    await page.click("#confirm-delete-all")
    await expect(page.locator("#memories .empty-state")).to_be_visible()
    await expect(page.locator("#notice")).to_have_text("Everything was deleted.")
    assert await components.store.count(TENANT) == 0
    assert await components.store.get("acme:bob", bobs[0].id) is not None, "another user's memories stay"

    await page.reload()  # the token is still in this tab; the user is gone, so there is simply nothing
    await expect(page.locator("#memories .empty-state")).to_be_visible()
    await expect(page.locator("#notice")).to_have_text("")


async def test_me_without_a_valid_token_explains_where_to_go(live_url: str, page: Page, components: Components):
    await page.goto(f"{live_url}/me")
    await expect(page.locator("#notice")).to_contain_text("Open this page from the app")
    await expect(page.locator("#controls")).to_be_hidden()

    secret = components.settings.token_secret.get_secret_value()  # type: ignore[union-attr]
    expired = jwt.encode({"sub": "alice", "app": "acme", "aud": "heedful:user", "exp": 1}, secret, algorithm="HS256")
    await page.goto(f"{live_url}/me#token={expired}")
    await expect(page.locator("#notice")).to_contain_text("This link has expired")
    assert await page.evaluate("sessionStorage.getItem('heedful.userToken')") is None
