"""What a newcomer meets in a real Chromium: a burst paced in plain words, a
silent server noticed soon, notices that never hide the banner's button, and a
page that says so when JavaScript is off."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import TIMEOUT, ChatPage, enter_chat
from tests.support import connect, run_server

pytestmark = pytest.mark.browser

DESKTOP = {"viewport": {"width": 1280, "height": 800}}
# Every notice the page shows, kept even after it is dismissed or times out.
RECORD_NOTICES = """() => {
  window.noticesSeen = [];
  new MutationObserver((changes) => {
    for (const change of changes) {
      for (const node of change.addedNodes) {
        if (node.classList && node.classList.contains('notice')) {
          window.noticesSeen.push(node.textContent);
        }
      }
    }
  }).observe(document.querySelector('#notices'), { childList: true });
}"""
# Whether a click at the middle of the element lands on it (nothing covers it).
HIT_AT_CENTRE = """(el) => {
  const box = el.getBoundingClientRect();
  const hit = document.elementFromPoint(box.x + box.width / 2, box.y + box.height / 2);
  return el === hit || el.contains(hit);
}"""


def test_a_burst_is_paced_in_plain_words(
    open_chat: Callable[..., ChatPage], artifacts: Path
) -> None:
    chat = open_chat(**DESKTOP)
    page = chat.page
    enter_chat(page, "alice")
    page.evaluate(RECORD_NOTICES)
    pace = page.locator("#send-pace")
    total = 30
    for n in range(total):
        page.fill("#message-input", f"burst {n}")
        page.press("#message-input", "Enter")
    # More than the server's burst (10) went in at once: the rest wait.
    expect(pace).to_be_visible(timeout=TIMEOUT)
    expect(pace).to_contain_text("Sending slowly: ")
    expect(pace).to_contain_text("messages wait; the server allows 5 a second.")
    page.screenshot(path=artifacts / "sending-slowly.png")
    expect(page.locator("#messages .message[data-id]")).to_have_count(
        total, timeout=3 * TIMEOUT
    )
    expect(pace).to_be_hidden()
    # Every keystroke of the burst was a typing event too; none was refused
    # in front of the user (nor any message).
    assert page.evaluate("window.noticesSeen") == []
    assert chat.dialogs == []
    assert chat.errors == []


def test_a_notice_never_covers_the_reconnect_button(
    browser_pages: Callable[..., ChatPage], tmp_path: Path, artifacts: Path
) -> None:
    with run_server(log_dir=tmp_path) as server:
        chat = browser_pages(server.http_url, **DESKTOP)
        page = chat.page
        enter_chat(page, "alice")
        bob = connect(server, name="bob")
        try:
            bob.send(type="create", room="plans", private=True)
            bob.recv_until("presence", lambda f: f["room"] == "plans")
            bob.send(type="add", room="plans", name="alice")
            notice = page.locator("#notices .notice")
            expect(notice).to_contain_text("bob added you", timeout=TIMEOUT)
        finally:
            bob.close()
        server.proc.terminate()  # the banner comes at once; the notice stays
        server.proc.wait()
        button = page.locator("#reconnect-button")
        expect(button).to_be_visible(timeout=TIMEOUT)
        expect(notice).to_be_visible()
        assert button.evaluate(HIT_AT_CENTRE)
        button.click(trial=True, timeout=TIMEOUT)  # Playwright's own hit test
        notice_box, button_box = notice.bounding_box(), button.bounding_box()
        assert notice_box is not None and button_box is not None
        assert notice_box["y"] >= button_box["y"] + button_box["height"]
        page.screenshot(path=artifacts / "notice-below-banner.png")
        assert chat.dialogs == []


def test_a_silent_server_is_noticed_within_seconds(
    browser_pages: Callable[..., ChatPage], tmp_path: Path
) -> None:
    with run_server(log_dir=tmp_path) as server:
        chat = browser_pages(server.http_url, **DESKTOP)
        page = chat.page
        enter_chat(page, "alice")
        # Stopped, not killed: the socket stays open, and nothing comes.
        os.kill(server.proc.pid, signal.SIGSTOP)
        try:
            # At worst ~15 s (a ping after 8 s of quiet, 5 s for its pong,
            # checked every second); the old heartbeat took 35 s or more.
            expect(page.locator("#reconnect-banner")).to_be_visible(timeout=25_000)
            # Noticed: down, or already trying again (the first retry may
            # start at once and hangs on the stopped server).
            expect(page.locator("#status")).to_have_attribute(
                "data-state", re.compile(r"^(disconnected|connecting)$")
            )
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
        expect(page.locator("#status")).to_have_attribute(
            "data-state", "connected", timeout=4 * TIMEOUT
        )
        expect(page.locator("#reconnect-banner")).to_be_hidden()


def test_without_javascript_the_page_says_what_to_do(
    open_chat: Callable[..., ChatPage],
) -> None:
    chat = open_chat(java_script_enabled=False, **DESKTOP)
    page = chat.page
    expect(page.locator("#name-screen")).to_be_visible(timeout=TIMEOUT)
    # The form would do nothing: it stays hidden.
    expect(page.locator("#name-form")).to_be_hidden()
    # Chromium driven this way parses <noscript> but does not lay it out, so
    # what it holds is checked, not how it looks: the reason, and where to read.
    note = page.locator("#name-screen noscript")
    assert "This chat needs JavaScript" in (note.text_content() or "")
    expect(note.locator("a")).to_have_attribute("href", "/rooms")
    page.goto(page.url + "rooms")
    expect(page.locator("main")).to_contain_text("Rooms", timeout=TIMEOUT)


def test_with_javascript_there_is_no_such_note(
    open_chat: Callable[..., ChatPage],
) -> None:
    chat = open_chat(**DESKTOP)
    page = chat.page
    expect(page.locator("#name-form")).to_be_visible(timeout=TIMEOUT)
    expect(page.get_by_text("This chat needs JavaScript")).to_be_hidden()
    assert chat.errors == []
