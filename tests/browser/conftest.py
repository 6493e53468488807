"""Fixtures for the browser tests: one headless Chromium, pages that record trouble.

Every page is served with the strict Content-Security-Policy the chat is built
for (added here until the server sends it), so an inline script or style in the
page shows up as a console error, which the tests assert never happens.
"""

from __future__ import annotations

import os
import shutil
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
    sync_playwright,
)

from tests.support import ROOT, ServerProcess

# The test modules skip themselves when this is missing.
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
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
def open_chat(
    browser: Browser, chat_server: ServerProcess
) -> Iterator[Callable[..., ChatPage]]:
    """Open the chat page in a fresh browser context (a separate user) each call."""
    contexts = []

    def open_page(**context_options: Any) -> ChatPage:
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
        page.route(chat_server.http_url + "/", _with_csp)
        page.goto(chat_server.http_url + "/")
        return chat

    yield open_page
    for context in contexts:
        context.close()
