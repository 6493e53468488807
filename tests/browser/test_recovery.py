"""Recovery in a real Chromium: a killed server, missed messages, older history.

These tests run their own servers (``browser_pages`` instead of ``open_chat``)
because they kill one and start it again on the same port with the same
``--db``, or need a server with lifted rate limits.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import TIMEOUT, ChatPage, enter_chat, wait_until
from tests.browser.wire import Link
from tests.support import Client, ServerProcess, connect, run_server

pytestmark = pytest.mark.browser

# The client retries after a random delay of at most 15 s (its backoff cap);
# add a server start and the replay.
RECONNECT_TIMEOUT = 45_000  # ms
# What Chromium logs, as an error, for every attempt while the server is down.
WS_REFUSED = re.compile(r"^WebSocket connection to 'ws://[^']+' failed")
GAP_TEXT = "Some messages are missing here — load older"
DESKTOP = {"viewport": {"width": 1280, "height": 800}}
FAST = ("--rate", "100000", "--burst", "100000")  # posting hundreds at once


def shown(page: Page) -> list[tuple[int, str]]:
    """(id, text) of every message with an id, in page order."""
    pairs = page.eval_on_selector_all(
        "#messages .message[data-id]",
        "els => els.map(e => [Number(e.dataset.id),"
        " e.querySelector('.text').textContent])",
    )
    return [(i, text) for i, text in pairs]


def send_text(page: Page, text: str) -> None:
    page.fill("#message-input", text)
    page.press("#message-input", "Enter")
    expect(page.locator("#message-input")).to_have_value("")


def unexpected_errors(chat: ChatPage) -> list[str]:
    """Console errors, less the refused connection attempts of an outage."""
    return [e for e in chat.errors if not WS_REFUSED.match(e)]


def post(client: Client, room: str, texts: list[str]) -> None:
    """Send every text at once, then read until the last one is acknowledged."""
    for text in texts:
        client.send(type="message", room=room, text=text)
    last = texts[-1]
    client.recv_until("message", lambda f: f["text"] == last, timeout=30)


def test_server_restart_loses_and_doubles_nothing(
    browser_pages: Callable[..., ChatPage], artifacts: Path, tmp_path: Path
) -> None:
    db = str(tmp_path / "chat.db")
    (tmp_path / "before").mkdir()
    (tmp_path / "after").mkdir()
    with contextlib.ExitStack() as stack:
        server: ServerProcess = stack.enter_context(
            run_server("--db", db, log_dir=tmp_path / "before")
        )
        alice = browser_pages(server.http_url, **DESKTOP)
        bob = browser_pages(server.http_url, **DESKTOP)
        enter_chat(alice.page, "alice")
        enter_chat(bob.page, "bob")
        for chat in (alice, bob):
            expect(chat.page.locator("#presence-count")).to_have_text(
                "2", timeout=TIMEOUT
            )

        before = ["hello bob, before the outage", "hi alice, before the outage"]
        send_text(alice.page, before[0])
        expect(bob.page.locator("#messages .message .text")).to_have_text(
            before[:1], timeout=TIMEOUT
        )
        send_text(bob.page, before[1])
        for chat in (alice, bob):
            expect(chat.page.locator("#messages .message[data-id]")).to_have_count(
                2, timeout=TIMEOUT
            )

        server.proc.kill()  # SIGKILL: no goodbye to anyone
        server.proc.wait()
        for chat in (alice, bob):
            page = chat.page
            expect(page.locator("#reconnect-banner")).to_be_visible(timeout=TIMEOUT)
            expect(page.locator("#status")).to_have_text("Disconnected")
            expect(page.locator("#reconnect-button")).to_be_visible()
            expect(page.locator("#reconnect-countdown")).to_have_text(
                re.compile(r"^Reconnecting( in \d+ s\.|…)$")
            )

        during = ["alice, offline 1", "alice, offline 2", "bob, offline 1"]
        send_text(alice.page, during[0])
        send_text(alice.page, during[1])
        send_text(bob.page, during[2])
        expect(alice.page.locator("#messages .message.pending")).to_have_count(2)
        expect(bob.page.locator("#messages .message.pending")).to_have_count(1)
        expect(alice.page.locator("#messages .message.pending .delivery")).to_have_text(
            ["Sending…", "Sending…"]
        )
        expect(alice.page.locator("#outbox-count")).to_have_text(
            "2 messages will be sent when the connection is back."
        )
        alice.page.screenshot(path=artifacts / "recovery-pending-alice.png")
        bob.page.screenshot(path=artifacts / "recovery-pending-bob.png")

        # The same port and file: "the" server is back. Nobody clicks
        # "Reconnect now": the pages come back by themselves.
        server = stack.enter_context(
            run_server("--db", db, log_dir=tmp_path / "after", port=server.port)
        )
        for chat in (alice, bob):
            expect(chat.page.locator("#status")).to_have_attribute(
                "data-state", "connected", timeout=RECONNECT_TIMEOUT
            )
        for chat in (alice, bob):
            page = chat.page
            expect(page.locator("#messages .message[data-id]")).to_have_count(
                5, timeout=TIMEOUT
            )
            expect(page.locator("#messages .message.outgoing")).to_have_count(
                0, timeout=TIMEOUT
            )
            expect(page.locator("#reconnect-banner")).to_be_hidden()

        conversations = {}
        for chat in (alice, bob):
            page = chat.page
            messages = shown(page)
            ids = [i for i, _ in messages]
            texts = [t for _, t in messages]
            assert ids == sorted(set(ids)), f"ids not unique and increasing: {ids}"
            assert texts[:2] == before
            assert sorted(texts[2:]) == sorted(during), texts
            assert len(set(texts)) == len(texts), f"a message shown twice: {texts}"
            # Nothing else in the list: no pending or failed copy, no gap.
            expect(page.locator("#messages .message")).to_have_count(5)
            expect(page.locator("#messages .message.pending")).to_have_count(0)
            expect(page.locator("#messages .message.failed")).to_have_count(0)
            expect(page.locator("#messages .gap")).to_have_count(0)
            conversations[id(chat)] = messages
        assert conversations[id(alice)] == conversations[id(bob)]

        # The server stored each message once, with the ids the pages show.
        checker = connect(server, name="checker")
        try:
            checker.send(type="history", room="lobby")
            history = checker.recv_until("history")
        finally:
            checker.close()
        stored = [(m["id"], m["text"]) for m in history["messages"]]
        assert stored == conversations[id(alice)]

        alice.page.screenshot(path=artifacts / "recovery-done-alice.png")
        bob.page.screenshot(path=artifacts / "recovery-done-bob.png")
        for chat in (alice, bob):
            assert chat.dialogs == []
            assert unexpected_errors(chat) == []


def test_stored_but_unacknowledged_message_is_shown_once(
    browser_pages: Callable[..., ChatPage], artifacts: Path, tmp_path: Path
) -> None:
    """The link dies after the server stored a message, before its echo came
    back: the page sends it again with the same client_id, the server answers
    with the original id, and the page shows it once (the replay has it too).
    """
    with run_server("--db", str(tmp_path / "chat.db"), log_dir=tmp_path) as server:
        watcher = connect(server, name="watcher", room="lobby")
        try:
            watcher.send(type="message", room="lobby", text="before")
            watcher.recv_until("message")
            link = Link()
            chat = browser_pages(server.http_url, setup=link.install, **DESKTOP)
            page = chat.page
            enter_chat(page, "alice")
            messages = page.locator("#messages .message[data-id]")
            expect(messages).to_have_count(1, timeout=TIMEOUT)

            link.hold_acks = True
            text = "stored, but the echo got lost"
            send_text(page, text)
            for _ in range(200):
                if link.held:
                    break
                page.wait_for_timeout(50)
            assert len(link.held) == 1, "the server never acknowledged the message"
            stored = link.held[0]
            # Everyone else has it; the sender does not know yet.
            seen = watcher.recv_until("message", lambda f: f["text"] == text)
            assert seen["id"] == stored["id"]
            expect(page.locator("#messages .message.pending")).to_have_count(1)

            link.cut()
            expect(page.locator("#reconnect-banner")).to_be_visible(timeout=TIMEOUT)
            expect(page.locator("#messages .message.pending")).to_have_count(1)
            link.hold_acks = False
            link.online = True
            expect(page.locator("#status")).to_have_attribute(
                "data-state", "connected", timeout=RECONNECT_TIMEOUT
            )
            expect(page.locator("#messages .message.outgoing")).to_have_count(
                0, timeout=TIMEOUT
            )
            expect(messages).to_have_count(2, timeout=TIMEOUT)
            # Sent twice with one client_id, after the rejoin with since...
            sent = link.sent
            sends = [i for i, f in enumerate(sent) if f["type"] == "message"]
            assert [sent[i]["client_id"] for i in sends] == [stored["client_id"]] * 2
            rejoin = next(
                i for i, f in enumerate(sent) if f["type"] == "join" and "since" in f
            )
            assert sent[rejoin]["since"] == stored["id"] - 1
            assert sends[0] < rejoin < sends[1]
            # ...stored and shown once, with the id it got the first time.
            page.wait_for_timeout(300)  # room for a late duplicate to show up
            assert shown(page) == [(stored["id"] - 1, "before"), (stored["id"], text)]
            # Alice left and came back; nothing was broadcast again.
            assert [f for f in watcher.drain() if f["type"] == "message"] == []
            page.screenshot(path=artifacts / "recovery-resent.png")
            assert chat.dialogs == []
            assert unexpected_errors(chat) == []
        finally:
            watcher.close()


def test_gap_marker_loads_what_the_replay_left_out(
    browser_pages: Callable[..., ChatPage], artifacts: Path, tmp_path: Path
) -> None:
    db = str(tmp_path / "chat.db")
    with run_server("--db", db, *FAST, log_dir=tmp_path) as server:
        poster = connect(server, name="poster", room="lobby")
        try:
            post(poster, "lobby", [f"early {n}" for n in range(1, 6)])  # ids 1-5
            link = Link()
            reader = browser_pages(server.http_url, setup=link.install, **DESKTOP)
            page = reader.page
            enter_chat(page, "reader")
            messages = page.locator("#messages .message[data-id]")
            expect(messages).to_have_count(5, timeout=TIMEOUT)

            link.cut()
            expect(page.locator("#reconnect-banner")).to_be_visible(timeout=TIMEOUT)
            # 750 while the page is away: the replay brings the newest 500
            # (ids 256-755) and marks 6-255 as a gap.
            post(poster, "lobby", [f"missed {n}" for n in range(6, 756)])
            link.online = True

            expect(page.locator("#status")).to_have_attribute(
                "data-state", "connected", timeout=RECONNECT_TIMEOUT
            )
            expect(messages).to_have_count(505, timeout=TIMEOUT)
            gap = page.locator("#messages .gap")
            expect(gap).to_have_count(1)
            expect(gap).to_have_attribute("data-after", "5")
            expect(gap).to_have_attribute("data-before", "256")
            button = gap.get_by_role("button", name=GAP_TEXT)
            expect(button).to_have_text(GAP_TEXT)
            # In its place: right after id 5, right before id 256; the line
            # above it marks where the reader stopped (reads.js).
            around = gap.evaluate(
                "el => [el.previousElementSibling.className,"
                " el.previousElementSibling.previousElementSibling.dataset.id,"
                " el.nextElementSibling.dataset.id]"
            )
            assert around == ["new-messages", "5", "256"]
            button.scroll_into_view_if_needed()
            page.screenshot(path=artifacts / "recovery-gap.png")

            button.click()
            # Filled in pages of 100 (156-255, 56-155, 6-55), then it goes.
            expect(gap).to_have_count(0, timeout=TIMEOUT)
            expect(messages).to_have_count(755, timeout=TIMEOUT)
            ids = [i for i, _ in shown(page)]
            assert ids == list(range(1, 756))
            texts = [t for _, t in shown(page)]
            assert texts[5] == "missed 6" and texts[-1] == "missed 755"
            expect(page.locator("#messages .message.outgoing")).to_have_count(0)
            page.screenshot(path=artifacts / "recovery-gap-filled.png")
            assert reader.dialogs == []
            assert unexpected_errors(reader) == []
        finally:
            poster.close()


PANE_OFFSET = """([id, toTop]) => {
    const pane = document.querySelector('.room-pane:not([hidden])');
    if (toTop) pane.scrollTop = 0;
    const el = pane.querySelector(`.message[data-id="${id}"]`);
    return el.getBoundingClientRect().bottom - pane.getBoundingClientRect().top;
}"""


def pane_offset(page: Page, message_id: int, to_top: bool = False) -> Any:
    """How far a message's bottom edge is from the top of the room pane, in px,
    after scrolling the pane to its top if ``to_top``.

    (Its top edge may move: joining the group of the messages loaded above
    it, it loses its author line.)
    """
    return page.evaluate(PANE_OFFSET, [message_id, to_top])


def test_scrolling_up_loads_older_history(
    browser_pages: Callable[..., ChatPage], tmp_path: Path
) -> None:
    with run_server("--db", str(tmp_path / "chat.db"), *FAST, log_dir=tmp_path) as (
        server
    ):
        poster = connect(server, name="poster", room="lobby")
        try:
            post(poster, "lobby", [f"line {n}" for n in range(1, 201)])
        finally:
            poster.close()
        reader = browser_pages(server.http_url, **DESKTOP)
        page = reader.page
        enter_chat(page, "reader")
        messages = page.locator("#messages .message[data-id]")
        expect(messages).to_have_count(50, timeout=TIMEOUT)  # the newest page
        older = page.locator(".room-pane:not([hidden]) .load-older")
        expect(older).to_be_visible()

        # At the top, the next page comes by itself, and what was on screen
        # stays where it was.
        # (Measured in the same task as the scroll, before any answer.)
        offset = pane_offset(page, 151, to_top=True)
        expect(messages).to_have_count(100, timeout=TIMEOUT)
        assert abs(pane_offset(page, 151) - offset) <= 2

        # The button does the same from the keyboard. (Focusing it scrolls it
        # into view, which may load a page by itself as well.)
        older.focus()
        page.keyboard.press("Enter")
        wait_until(
            page,
            "() => document.querySelectorAll('#messages .message[data-id]')"
            ".length >= 150",
        )
        for _ in range(5):
            if messages.count() == 200:
                break
            count = messages.count()
            page.evaluate(
                "document.querySelector('.room-pane:not([hidden])').scrollTop = 0"
            )
            wait_until(
                page,
                "n => document.querySelectorAll('#messages .message[data-id]')"
                ".length > n",
                count,
            )
        expect(messages).to_have_count(200)
        expect(older).to_be_hidden(timeout=TIMEOUT)  # no more history
        assert [i for i, _ in shown(page)] == list(range(1, 201))
        # The button had focus when it went: focus is on the list, not lost.
        assert page.evaluate("document.activeElement.classList.contains('room-pane')")
        assert reader.dialogs == []
        assert unexpected_errors(reader) == []


def test_offline_messages_survive_a_reload(
    browser_pages: Callable[..., ChatPage], tmp_path: Path
) -> None:
    with run_server("--db", str(tmp_path / "chat.db"), log_dir=tmp_path) as server:
        link = Link()
        chat = browser_pages(server.http_url, setup=link.install, **DESKTOP)
        page = chat.page
        enter_chat(page, "alice")
        link.cut()
        expect(page.locator("#reconnect-banner")).to_be_visible(timeout=TIMEOUT)
        text = "typed offline, then the page was reloaded"
        send_text(page, text)
        expect(page.locator("#messages .message.pending")).to_have_count(1)

        # Still offline: the outbox is in sessionStorage. A returning user
        # skips the name screen.
        page.reload()
        expect(page.locator("#me-name")).to_be_hidden()
        expect(page.locator("#name-screen")).to_be_hidden(timeout=TIMEOUT)
        pending = page.locator("#messages .message.pending")
        expect(pending).to_have_count(1, timeout=TIMEOUT)
        expect(pending.locator(".text")).to_have_text(text)
        expect(page.locator("#outbox-count")).to_have_text(
            "1 message will be sent when the connection is back.", timeout=TIMEOUT
        )

        link.online = True
        expect(page.locator("#status")).to_have_attribute(
            "data-state", "connected", timeout=RECONNECT_TIMEOUT
        )
        expect(page.locator("#messages .message.outgoing")).to_have_count(
            0, timeout=TIMEOUT
        )
        expect(page.locator("#messages .message[data-id] .text")).to_have_text([text])
        assert page.evaluate("sessionStorage.getItem('chat.outbox')") is None
        assert chat.dialogs == []
        assert unexpected_errors(chat) == []


def test_a_message_the_server_could_not_store_can_be_retried(
    browser_pages: Callable[..., ChatPage], artifacts: Path, tmp_path: Path
) -> None:
    with run_server("--db", str(tmp_path / "chat.db"), log_dir=tmp_path) as server:
        link = Link()
        chat = browser_pages(server.http_url, setup=link.install, **DESKTOP)
        page = chat.page
        enter_chat(page, "alice")
        link.refuse = True
        text = "the disk was full"
        send_text(page, text)
        failed = page.locator("#messages .message.failed")
        expect(failed).to_have_count(1, timeout=TIMEOUT)
        expect(failed.locator(".text")).to_have_text(text)
        expect(failed.locator(".delivery-text")).to_have_text("Not sent")
        expect(page.locator("#notices .notice[data-code=internal]")).to_have_count(1)
        retry = failed.get_by_role("button", name=re.compile(r"^Retry"))
        expect(retry).to_be_visible()
        page.screenshot(path=artifacts / "recovery-failed.png")

        link.refuse = False
        retry.focus()
        page.keyboard.press("Enter")
        expect(page.locator("#messages .message.outgoing")).to_have_count(
            0, timeout=TIMEOUT
        )
        expect(page.locator("#messages .message[data-id] .text")).to_have_text([text])
        # The retry used the same client_id; focus went back to the composer.
        sends = [f for f in link.sent if f["type"] == "message"]
        assert len(sends) == 2 and sends[0]["client_id"] == sends[1]["client_id"]
        expect(page.locator("#message-input")).to_be_focused()
        assert chat.dialogs == []
        assert unexpected_errors(chat) == []


def test_a_server_that_lost_its_history_is_followed_not_trusted(
    browser_pages: Callable[..., ChatPage], tmp_path: Path
) -> None:
    """Ensure a page whose server restarted without its history (--db
    :memory:) shows the new history whole, below a line, even once the new
    ids have passed the old ones (which ids alone cannot tell), and keeps
    only the new messages for the next visit."""
    (tmp_path / "before").mkdir()
    (tmp_path / "after").mkdir()
    with contextlib.ExitStack() as stack:
        server: ServerProcess = stack.enter_context(
            run_server("--db", ":memory:", *FAST, log_dir=tmp_path / "before")
        )
        chat = browser_pages(server.http_url, **DESKTOP)
        page = chat.page
        enter_chat(page, "alice")
        old = ["old one", "old two", "old three"]
        for text in old:
            send_text(page, text)
        expect(page.locator("#messages .message[data-id]")).to_have_count(3)
        server.proc.kill()
        server.proc.wait()
        expect(page.locator("#reconnect-banner")).to_be_visible(timeout=TIMEOUT)
        server = stack.enter_context(
            run_server(
                "--db", ":memory:", *FAST, log_dir=tmp_path / "after", port=server.port
            )
        )
        new = [f"new {n}" for n in range(1, 6)]  # ids 1..5: past the old 3
        poster = connect(server, name="bob")
        try:
            post(poster, "lobby", new)
        finally:
            poster.close()
        expect(page.locator("#status")).to_have_attribute(
            "data-state", "connected", timeout=RECONNECT_TIMEOUT
        )
        expect(page.locator("#messages .message[data-id]")).to_have_count(
            5, timeout=TIMEOUT
        )
        assert shown(page) == list(enumerate(new, start=1))
        expect(page.locator("#messages .divider")).to_contain_text("lost its history")
        expect(page.locator("#messages .message.archived .text")).to_have_text(old)
        page.reload()  # a returning user: no name screen
        expect(page.locator("#status")).to_have_attribute(
            "data-state", "connected", timeout=TIMEOUT
        )
        expect(page.locator("#messages .message[data-id]")).to_have_count(
            5, timeout=TIMEOUT
        )
        assert shown(page) == list(enumerate(new, start=1))
        expect(page.locator("#messages .message.archived")).to_have_count(0)
        assert unexpected_errors(chat) == []
