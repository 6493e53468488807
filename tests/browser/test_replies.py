"""Replies in a real Chromium: the Reply action and its bar, the quoted line
on every page, a deleted original shown as deleted, and a jump to an
original that loads older history until it is there."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import TIMEOUT, ChatPage, enter_chat
from tests.support import (
    ServerProcess,
    closed_after_the_test,
    connect,
    run_server,
)

pytestmark = pytest.mark.browser

DESKTOP = {"viewport": {"width": 1280, "height": 800}}
FILLER = 160  # messages between an original and its answer: three pages


@pytest.fixture
def fast_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server that takes messages as fast as a test sends them."""
    with run_server("--rate", "1000", "--burst", "1000", log_dir=tmp_path) as server:
        yield server


def message(page: Page, text: str):
    """The message whose own text (not a quote of it) holds ``text``."""
    own_text = page.locator(".body > .text", has_text=text)
    return page.locator("#messages .message[data-id]").filter(has=own_text)


def send_text(page: Page, text: str) -> None:
    page.fill("#message-input", text)
    page.press("#message-input", "Enter")
    expect(page.locator("#message-input")).to_have_value("")


def test_reply_quote_and_deleted_original(
    browser_pages: Callable[..., ChatPage], fast_server: ServerProcess
) -> None:
    alice = browser_pages(fast_server.http_url, **DESKTOP)
    bob = browser_pages(fast_server.http_url, **DESKTOP)
    enter_chat(alice.page, "alice")
    enter_chat(bob.page, "bob")
    a, b = alice.page, bob.page
    send_text(b, "Shall we ship on Friday?")
    original = message(a, "Shall we ship on Friday?")
    expect(original).to_have_count(1, timeout=TIMEOUT)

    # Reply: the bar says to whom, Escape drops it, Reply again, then send.
    original.hover()
    original.locator(".reply-button").click()
    expect(a.locator("#reply-bar")).to_be_visible()
    expect(a.locator("#reply-bar-text")).to_have_text(
        "Replying to bob: Shall we ship on Friday?"
    )
    expect(a.locator("#message-input")).to_be_focused()
    a.press("#message-input", "Escape")
    expect(a.locator("#reply-bar")).to_be_hidden()
    original.hover()
    original.locator(".reply-button").click()
    send_text(a, "Yes, Friday it is")
    expect(a.locator("#reply-bar")).to_be_hidden()
    for page in (a, b):
        answer = message(page, "Yes, Friday it is")
        expect(answer.locator(".quote")).to_have_text(
            "bobShall we ship on Friday?", timeout=TIMEOUT
        )
        expect(answer.locator(".quote .quote-author")).to_have_text("bob")

    # The original is edited, then deleted: the quotes follow on both pages.
    mine = message(b, "Shall we ship on Friday?")
    mine.hover()
    mine.locator(".edit-button").click()
    b.fill(".edit-input", "Shall we ship on Monday?")
    b.press(".edit-input", "Enter")
    for page in (a, b):
        expect(message(page, "Yes, Friday it is").locator(".quote-text")).to_have_text(
            "Shall we ship on Monday?", timeout=TIMEOUT
        )
    mine = message(b, "Shall we ship on Monday?")
    mine.hover()
    mine.locator(".delete-button").click()
    b.locator(".confirm-delete").click()
    for page in (a, b):
        quote = message(page, "Yes, Friday it is").locator(".quote")
        expect(quote).to_have_class("quote quote-deleted", timeout=TIMEOUT)
        expect(quote.locator(".quote-text")).to_have_text("message deleted")

    # Reloaded: the messages kept on the device (without quotes) show first,
    # then the server's page brings the quote as it is now.
    a.reload()
    quote = message(a, "Yes, Friday it is").locator(".quote")
    expect(quote).to_have_class("quote quote-deleted", timeout=TIMEOUT)
    assert "Monday" not in (a.evaluate("localStorage.getItem('chat.messages')") or "")

    # A page opened afterwards gets the quote from the server as it is now.
    carol = browser_pages(fast_server.http_url, **DESKTOP)
    enter_chat(carol.page, "carol")
    quote = message(carol.page, "Yes, Friday it is").locator(".quote")
    expect(quote).to_have_class("quote quote-deleted", timeout=TIMEOUT)
    assert not (alice.errors + bob.errors + carol.errors)


def test_a_jump_loads_older_history_until_the_original(
    browser_pages: Callable[..., ChatPage], fast_server: ServerProcess
) -> None:
    ann = closed_after_the_test(connect(fast_server, name="ann"))
    ann.send(type="message", room="lobby", text="The very first plan")
    first = ann.recv_until("message")
    for n in range(FILLER):
        ann.send(type="message", room="lobby", text=f"filler {n}")
    ann.recv_until("message", lambda f: f["text"] == f"filler {FILLER - 1}")
    ann.send(
        type="message", room="lobby", text="Back to the plan", reply_to=first["id"]
    )
    ann.recv_until("message", lambda f: f["text"] == "Back to the plan")

    viewer = browser_pages(fast_server.http_url, **DESKTOP)
    enter_chat(viewer.page, "viewer")
    page = viewer.page
    quote = message(page, "Back to the plan").locator(".quote")
    expect(quote).to_have_text("annThe very first plan", timeout=TIMEOUT)
    expect(message(page, "The very first plan")).to_have_count(0)  # not loaded yet
    quote.click()
    target = message(page, "The very first plan")
    expect(target).to_have_class("message jumped", timeout=TIMEOUT)
    expect(target).to_be_in_viewport()
    expect(target).to_be_focused()
    assert not viewer.errors, viewer.errors
