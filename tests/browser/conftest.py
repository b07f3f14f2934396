"""Browser tests: the real app served by uvicorn on a loopback port, driven by headless Debian Chromium.

The server runs in the test's own event loop, on the `components` fixture (real Redis, the embedded
Qdrant store, the ONNX embedder), so a test can check through `components.store` what the page did.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn
from playwright.async_api import Browser, Dialog, Page, async_playwright

from service.app import create_app
from service.wiring import Components

CHROMIUM = Path(os.environ.get("HEEDFUL_TEST_CHROMIUM", "/usr/bin/chromium"))
# What works on this machine (2 cores, no screen, no network); playwright adds --headless and a fresh profile.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
SERVER_START_S = 10.0


@pytest.fixture
async def live_url(components: Components) -> AsyncIterator[str]:
    """The app on http://127.0.0.1:<free port>, served until the test ends."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))  # the kernel picks a free port, and nobody can take it before uvicorn listens
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(components=components), log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    async with asyncio.timeout(SERVER_START_S):
        while not server.started:
            if serving.done():
                serving.result()  # raises the reason the server stopped
                pytest.fail("uvicorn stopped before it started serving")
            await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving
        sock.close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"no Chromium at {CHROMIUM}: the browser tests need Debian's chromium (`apt-get install -y chromium`, "
            "which `make test` does) or HEEDFUL_TEST_CHROMIUM pointing at a Chromium binary"
        )
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh tab that fails the test on any script error or alert (an alert would mean injected code ran)."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    tab = await context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(f"script error: {error}"))

    async def refuse(dialog: Dialog) -> None:
        problems.append(f"dialog opened: {dialog.message}")
        await dialog.dismiss()  # an unanswered dialog would freeze the page

    tab.on("dialog", refuse)
    tab.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text}")
            if message.type == "error" and "Content Security Policy" in message.text
            else None
        ),
    )
    yield tab
    await context.close()
    assert problems == [], problems


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name
