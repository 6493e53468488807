"""Who may post what, in a real Chromium: reserved names and slow mode."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import TIMEOUT, ChatPage, enter_chat, wait_until
from tests.support import run_server

pytestmark = pytest.mark.browser

DESKTOP = {"viewport": {"width": 1280, "height": 800}}
KEY = re.compile(r"^[0-9a-f]{32}$")


def record_sockets(urls: list[str]) -> Callable[[Page], None]:
    def setup(page: Page) -> None:
        page.on("websocket", lambda ws: urls.append(ws.url))

    return setup


def send_text(page: Page, text: str) -> None:
    page.fill("#message-input", text)
    page.press("#message-input", "Enter")


def test_a_reserved_name_stays_with_its_browser(
    browser_pages: Callable[..., ChatPage], tmp_path: Path, artifacts: Path
) -> None:
    with run_server("--db", str(tmp_path / "chat.db"), log_dir=tmp_path) as server:
        urls: list[str] = []
        alice = browser_pages(server.http_url, setup=record_sockets(urls), **DESKTOP)
        enter_chat(alice.page, "alice")
        # The first connection had no key: the server issued one, kept here.
        assert "key=" not in urls[0]
        key = alice.page.evaluate("localStorage.getItem('chat.key')")
        assert KEY.match(key), key

        # Someone else, in another browser, asks for the same name.
        mallory = browser_pages(server.http_url, **DESKTOP)
        page = mallory.page
        page.fill("#name-input", "Alice")
        page.press("#name-input", "Enter")
        expect(page.locator("#status")).to_have_attribute(
            "data-state", "connected", timeout=TIMEOUT
        )
        expect(page.locator("#me-name")).to_have_text(re.compile(r"^guest-\d+$"))
        # The rename form is open, with the refused name, to pick another;
        # the reason is said once, next to the field, not in a notice too.
        expect(page.locator("#nick-form")).to_be_visible()
        expect(page.locator("#nick-input")).to_have_value("Alice")
        expect(page.locator("#nick-input")).to_be_focused()
        error = page.locator("#nick-error")
        expect(error).to_contain_text("“Alice” is being used by someone else")
        expect(error).to_contain_text("pick another name")
        expect(page.locator("#notices .notice")).to_have_count(0)

        # Alice closes her tab: the name is still hers.
        alice.page.goto("about:blank")
        expect(page.locator("#presence .member")).to_have_count(1, timeout=TIMEOUT)
        page.fill("#nick-input", "alice")
        page.press("#nick-input", "Enter")
        expect(page.locator("#nick-error")).to_contain_text("reserved", timeout=TIMEOUT)
        expect(page.locator("#me-name")).to_have_text(re.compile(r"^guest-\d+$"))
        page.screenshot(path=artifacts / "name-reserved.png")
        page.fill("#nick-input", "mallory")
        page.press("#nick-input", "Enter")
        expect(page.locator("#me-name")).to_have_text("mallory", timeout=TIMEOUT)

        # Back in her browser (a reload): straight in, with her name and key.
        alice.page.goto(server.http_url + "/")
        expect(alice.page.locator("#status")).to_have_attribute(
            "data-state", "connected", timeout=TIMEOUT
        )
        expect(alice.page.locator("#me-name")).to_have_text("alice")
        assert f"key={key}" in urls[-1]
        assert alice.page.evaluate("localStorage.getItem('chat.key')") == key
        expect(alice.page.locator("#notices .notice")).to_have_count(0)
        for chat in (alice, mallory):
            assert chat.dialogs == []
            assert chat.errors == []


def test_slow_mode_counts_down_per_room(
    browser_pages: Callable[..., ChatPage], tmp_path: Path, artifacts: Path
) -> None:
    with run_server("--slow-mode", "lobby=6", log_dir=tmp_path) as server:
        chat = browser_pages(server.http_url, **DESKTOP)
        page = chat.page
        enter_chat(page, "alice")
        note = page.locator("#slow-mode")
        send = page.locator("#send-button")
        messages = page.locator("#messages .message")
        expect(note).to_have_text("Slow mode: one message every 6 s.", timeout=TIMEOUT)

        send_text(page, "first")
        expect(page.locator("#messages .message[data-id] .text")).to_have_text(
            ["first"], timeout=TIMEOUT
        )
        waiting = re.compile(r"You can send again in (\d) s\.$")
        expect(note).to_have_text(waiting)
        page.fill("#message-input", "second")
        expect(send).to_be_disabled()
        expect(send).to_have_text(re.compile(r"^\d s$"))
        expect(send).to_have_accessible_name(
            re.compile(r"^Send: wait \d s \(slow mode\)$")
        )
        expect(page.locator("#message-input")).to_have_attribute(
            "aria-describedby", re.compile(r"\bslow-mode\b")
        )
        first_wait = int(waiting.search(note.text_content() or "").group(1))
        page.screenshot(path=artifacts / "slow-mode.png")
        page.press("#message-input", "Enter")  # not now: the text stays
        expect(page.locator("#message-input")).to_have_value("second")
        expect(messages).to_have_count(1)
        # The count goes down.
        wait_until(
            page,
            "n => { const m = /in (\\d) s/.exec("
            "document.getElementById('slow-mode').textContent);"
            " return m && Number(m[1]) < n; }",
            first_wait,
        )

        # Another room has no slow mode; the lobby's wait goes on meanwhile.
        page.fill("#room-input", "free")
        page.press("#room-input", "Enter")
        expect(page.locator("#room-title")).to_have_text("#free", timeout=TIMEOUT)
        expect(note).to_be_hidden()
        send_text(page, "no waiting here")
        expect(page.locator("#message-input")).to_have_value("")
        page.click("#rooms .room[data-room=lobby] .room-select")
        expect(page.locator("#message-input")).to_have_value("second")

        # Once the wait is over, it goes.
        expect(send).to_be_enabled(timeout=TIMEOUT)
        expect(send).to_have_text("Send")
        expect(note).to_have_text("Slow mode: one message every 6 s.")
        page.press("#message-input", "Enter")
        lobby = page.locator(".room-pane[data-room=lobby] .message[data-id] .text")
        expect(lobby).to_have_text(["first", "second"], timeout=TIMEOUT)

        # The server's own count wins: a reload forgets ours, and a message
        # sent too early waits for the server's retry_after, then goes.
        page.reload()
        expect(page.locator("#status")).to_have_attribute(
            "data-state", "connected", timeout=TIMEOUT
        )
        expect(send).to_have_text("Send")
        send_text(page, "third, too early")
        expect(page.locator("#messages .message.pending")).to_have_count(
            1, timeout=TIMEOUT
        )
        expect(note).to_have_text(waiting, timeout=TIMEOUT)
        expect(page.locator("#messages .message.pending")).to_have_count(
            0, timeout=TIMEOUT
        )
        expect(lobby).to_have_text(["first", "second", "third, too early"])
        expect(page.locator("#notices .notice")).to_have_count(0)
        assert chat.dialogs == []
        assert chat.errors == []
