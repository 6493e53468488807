"""Fixtures for the browser tests: one headless Chromium, pages that record trouble.

Every page is served with the strict Content-Security-Policy the chat is built
for (added here until the server sends it), so an inline script or style in the
page shows up as a console error, which the tests assert never happens.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Playwright,
    Route,
    expect,
    sync_playwright,
)

from tests.support import ROOT, ServerProcess

CHROMIUM = shutil.which("chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CSP = "script-src 'self'; style-src 'self'"
TIMEOUT = 10_000  # ms, for every expect(): generous, never waited in full on success


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Without Chromium every browser test is skipped, saying why."""
    if CHROMIUM is not None:
        return
    skip = pytest.mark.skip(
        reason="no chromium on PATH: the browser tests drive Debian's Chromium "
        "(apt-get install chromium)"
    )
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
    )
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots go: $CHAT_ARTIFACTS or <repo>/artifacts/screenshots."""
    path = Path(os.environ.get("CHAT_ARTIFACTS", ROOT / "artifacts" / "screenshots"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class ChatPage:
    """A page of the chat with what went wrong on it while the test ran."""

    page: Page
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _with_csp(route: Route) -> None:
    # A fulfilled page has no network address of its own, so Chromium's Local
    # Network Access checks treat it as public: see the permission below.
    response = route.fetch()
    headers = dict(response.headers)
    headers.setdefault("content-security-policy", CSP)  # the server's own wins
    route.fulfill(response=response, headers=headers)


@pytest.fixture
def browser_pages(browser: Browser) -> Iterator[Callable[..., ChatPage]]:
    """Open the chat page of a server at ``base_url`` in a fresh browser context
    (a separate user) each call; ``setup(page)`` runs before the page loads.

    For tests that run (and restart) their own servers; the others use
    ``open_chat``.
    """
    contexts = []

    def open_page(
        base_url: str,
        setup: Callable[[Page], None] | None = None,
        **context_options: Any,
    ) -> ChatPage:
        context = browser.new_context(
            permissions=["local-network-access"], **context_options
        )
        contexts.append(context)
        page = context.new_page()
        chat = ChatPage(page)

        def on_dialog(dialog: Any) -> None:
            chat.dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                chat.errors.append(message.text)

        page.on("dialog", on_dialog)
        page.on("console", on_console)
        page.on("pageerror", lambda exc: chat.errors.append(str(exc)))
        page.route(base_url + "/", _with_csp)
        if setup is not None:
            setup(page)
        page.goto(base_url + "/")
        return chat

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def open_chat(
    browser_pages: Callable[..., ChatPage], chat_server: ServerProcess
) -> Callable[..., ChatPage]:
    """Open the chat page of ``chat_server`` in a fresh browser context each call."""

    def open_page(**context_options: Any) -> ChatPage:
        return browser_pages(chat_server.http_url, **context_options)

    return open_page


def enter_chat(page: Page, name: str) -> None:
    """Pass the name screen and wait until the page is connected as ``name``."""
    expect(page.get_by_label("Your name")).to_be_visible(timeout=TIMEOUT)
    page.fill("#name-input", name)
    page.press("#name-input", "Enter")
    expect(page.locator("#status")).to_have_attribute(
        "data-state", "connected", timeout=TIMEOUT
    )
    expect(page.locator("#me-name")).to_have_text(name, timeout=TIMEOUT)
    expect(page.locator("#message-input")).to_be_enabled(timeout=TIMEOUT)


def wait_until(page: Page, predicate: str, arg: Any = None) -> None:
    """Poll ``predicate`` (a JavaScript function of ``arg``) until it is true.

    Not ``page.wait_for_function``: that polls by evaluating a string in the
    page, which the chat's Content-Security-Policy (no 'unsafe-eval') refuses
    whenever the first check is not already true.
    """
    deadline = time.monotonic() + TIMEOUT / 1000
    while not page.evaluate(predicate, arg):
        assert time.monotonic() < deadline, f"not true in {TIMEOUT} ms: {predicate}"
        page.wait_for_timeout(50)
