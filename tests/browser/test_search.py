"""Search in a real Chromium: results with the words marked, "More results",
a click that opens the room at the message (loading older history), and a
private room's messages found by its members only."""

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
FILLER = 120  # messages after the one searched for: it is not on the page


@pytest.fixture
def fast_server(tmp_path: Path) -> Iterator[ServerProcess]:
    with run_server("--rate", "1000", "--burst", "1000", log_dir=tmp_path) as server:
        yield server


def search(page: Page, words: str) -> None:
    page.fill("#search-input", words)
    page.press("#search-input", "Enter")


def test_search_finds_marks_jumps_and_never_leaks_a_private_room(
    browser_pages: Callable[..., ChatPage], fast_server: ServerProcess
) -> None:
    member = browser_pages(fast_server.http_url, **DESKTOP)
    outsider = browser_pages(fast_server.http_url, **DESKTOP)
    enter_chat(member.page, "bob")
    enter_chat(outsider.page, "eve")
    m, o = member.page, outsider.page

    ann = closed_after_the_test(connect(fast_server, name="ann"))
    ann.send(type="create", room="vault", private=True)
    ann.recv_until("presence", lambda f: f.get("room") == "vault")
    ann.send(type="add", room="vault", name="bob")
    ann.recv_until("added")
    ann.send(type="message", room="vault", text="The Treasure code is 4711")
    ann.send(type="message", room="lobby", text="A needle in the haystack")
    for n in range(FILLER):
        ann.send(type="message", room="lobby", text=f"hay {n}, treasure hunt")
    ann.recv_until("message", lambda f: f["text"] == f"hay {FILLER - 1}, treasure hunt")

    # The member finds the private room's message, the word marked.
    search(m, "treasure code")
    hits = m.locator("#search-results .search-hit")
    expect(hits).to_have_count(1, timeout=TIMEOUT)
    expect(hits.locator(".hit-room")).to_have_text("#vault")
    expect(hits.locator("mark")).to_have_text(["Treasure", "code"])
    expect(m.locator("#search-status")).to_have_text("1 message found.")

    # The outsider: the same words find nothing, anywhere on the page.
    search(o, "treasure code")
    expect(o.locator("#search-status")).to_have_text(
        "No messages found.", timeout=TIMEOUT
    )
    search(o, "treasure")
    hits = o.locator("#search-results .search-hit")
    expect(hits).to_have_count(20, timeout=TIMEOUT)
    expect(o.locator("#search-more")).to_be_visible()
    o.click("#search-more")
    expect(hits).to_have_count(40, timeout=TIMEOUT)
    assert "4711" not in o.content()
    assert "#vault" not in o.locator("#search-results").inner_text()

    # A result far back opens its room at the message, loading older pages.
    search(o, "needle")
    hit = o.locator("#search-results .search-hit")
    expect(hit).to_have_count(1, timeout=TIMEOUT)
    expect(hit.locator("mark")).to_have_text("needle")
    hit.click()
    target = o.locator("#messages .message[data-id]").filter(
        has=o.locator(".body > .text", has_text="A needle in the haystack")
    )
    expect(target).to_have_class("message jumped", timeout=TIMEOUT)
    expect(target).to_be_in_viewport()
    assert not (member.errors + outsider.errors)
