"""Edits and deletes in a real Chromium: two users, live, after a reload, and
in the messages the page keeps on the device."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import TIMEOUT, ChatPage, enter_chat
from tests.browser.test_moderation import admin_key, with_key
from tests.browser.wire import Link
from tests.support import ServerProcess, run_server

pytestmark = pytest.mark.browser

DESKTOP = {"viewport": {"width": 1280, "height": 800}}
SECRET = "secret-xyz-do-not-keep"


def send_text(page: Page, text: str) -> None:
    page.fill("#message-input", text)
    page.press("#message-input", "Enter")
    expect(page.locator("#message-input")).to_have_value("")


def message(page: Page, text: str) -> Any:
    """The message element showing ``text``."""
    return page.locator("#messages .message[data-id]").filter(has_text=text)


def by_id(page: Page, found: Any) -> Any:
    """The element of the message ``found`` shows now, whatever it says later."""
    return page.locator(
        f'#messages .message[data-id="{found.get_attribute("data-id")}"]'
    )


def kept(page: Page) -> str:
    """The messages this page keeps on the device, as stored."""
    return page.evaluate("localStorage.getItem('chat.messages')") or ""


def wait_kept(page: Page, holds: Callable[[str], bool], what: str) -> None:
    """Until what the page keeps satisfies ``holds`` (it saves after a second)."""
    deadline = time.monotonic() + TIMEOUT / 1000
    while not holds(kept(page)):
        assert time.monotonic() < deadline, f"the cache never {what}: {kept(page)}"
        page.wait_for_timeout(100)


def test_edit_and_delete_live_after_a_reload_and_in_the_cache(
    browser_pages: Callable[..., ChatPage], chat_server: ServerProcess
) -> None:
    bob_link = Link()
    alice = browser_pages(chat_server.http_url, **DESKTOP)
    bob = browser_pages(chat_server.http_url, setup=bob_link.install, **DESKTOP)
    enter_chat(alice.page, "alice")
    enter_chat(bob.page, "bob")
    page = alice.page
    send_text(page, "helo wrold")
    send_text(page, SECRET)
    send_text(page, "third one")
    expect(bob.page.locator("#messages .message[data-id]")).to_have_count(
        3, timeout=TIMEOUT
    )
    # Others' messages have no actions for bob; alice's own have both.
    expect(bob.page.locator(".message-actions button")).to_have_count(0)
    expect(message(page, "helo wrold").locator(".edit-button")).to_have_count(1)

    # Edit with the button: Enter saves; bob sees it at once, marked.
    first = by_id(page, message(page, "helo wrold"))
    first.hover()
    first.locator(".edit-button").click()
    editor = first.locator(".edit-input")
    expect(editor).to_be_focused()
    editor.fill("hello world")
    editor.press("Enter")
    expect(message(bob.page, "hello world").locator(".edited-mark")).to_have_text(
        "(edited)", timeout=TIMEOUT
    )
    mark = message(bob.page, "hello world").locator(".edited-mark")
    assert mark.get_attribute("title").startswith("Edited ")
    expect(first.locator(".edit-form")).to_have_count(0, timeout=TIMEOUT)
    expect(first.locator(".text")).to_have_text("hello world")

    # Up in the empty composer edits my newest message; Escape cancels.
    page.focus("#message-input")
    page.keyboard.press("ArrowUp")
    last = message(page, "third one")
    expect(last.locator(".edit-input")).to_be_focused()
    page.keyboard.press("Escape")
    expect(last.locator(".edit-form")).to_have_count(0)
    expect(page.locator("#message-input")).to_be_focused()

    # Bob goes away; alice deletes (with the keyboard, confirming) meanwhile.
    wait_kept(bob.page, lambda text: "hello world" in text, "kept the edit")
    bob_link.cut()
    doomed = by_id(page, message(page, SECRET))
    doomed.locator(".delete-button").focus()
    page.keyboard.press("Enter")
    expect(doomed.locator(".cancel-delete")).to_be_focused()
    doomed.locator(".confirm-delete").click()
    expect(page.locator(".message.deleted .text")).to_have_text(
        "message deleted", timeout=TIMEOUT
    )
    expect(page.locator(f"text={SECRET}")).to_have_count(0)
    expect(page.locator("#message-input")).to_be_focused()  # its button is gone

    # Bob reloads off line: the cache still has the old state (he missed it);
    # back on line the replay deletes it from the page and from the cache.
    bob.page.reload()
    expect(message(bob.page, SECRET)).to_have_count(1, timeout=TIMEOUT)
    bob_link.online = True
    bob.page.click("#reconnect-button")
    expect(bob.page.locator(".message.deleted .text")).to_have_text(
        "message deleted", timeout=TIMEOUT
    )
    expect(message(bob.page, SECRET)).to_have_count(0)
    wait_kept(bob.page, lambda text: SECRET not in text, "dropped the deleted text")
    data = json.loads(kept(bob.page))
    deleted = [m for m in data["rooms"]["lobby"] if m.get("deleted")]
    assert len(deleted) == 1 and deleted[0]["text"] == ""

    # A live delete, then a reload: the cache shows the tombstone at once.
    third = by_id(page, message(page, "third one"))
    third.locator(".delete-button").click()
    third.locator(".confirm-delete").click()
    expect(bob.page.locator(".message.deleted")).to_have_count(2, timeout=TIMEOUT)
    wait_kept(bob.page, lambda text: "third one" not in text, "dropped the text")
    bob_link.cut()
    bob.page.reload()
    expect(bob.page.locator(".message.deleted")).to_have_count(2, timeout=TIMEOUT)
    expect(message(bob.page, "hello world").locator(".edited-mark")).to_have_count(1)
    assert alice.dialogs == [] and bob.dialogs == []
    assert alice.errors == []
    assert [e for e in bob.errors if "WebSocket" not in e] == []


def test_an_admin_deletes_anothers_message_live_and_after_a_reload(
    browser_pages: Callable[..., ChatPage], tmp_path: Path
) -> None:
    """An admin (made with the admin command) sees Delete, not Edit, on
    another person's message; the author sees the tombstone at once and after
    a reload, and the text leaves their browser's cache."""
    with run_server("--db", str(tmp_path / "chat.db"), log_dir=tmp_path) as server:
        boss = browser_pages(
            server.http_url, setup=with_key(admin_key(server)), **DESKTOP
        )
        bob = browser_pages(server.http_url, **DESKTOP)
        enter_chat(boss.page, "boss")
        enter_chat(bob.page, "bob")
        send_text(bob.page, "buy cheap watches")
        wait_kept(bob.page, lambda text: "cheap watches" in text, "kept the message")
        theirs = message(boss.page, "buy cheap watches")
        expect(theirs.locator(".delete-button")).to_have_count(1, timeout=TIMEOUT)
        expect(theirs.locator(".edit-button")).to_have_count(0)
        theirs.locator(".delete-button").click()
        theirs.locator(".confirm-delete").click()
        for page in (bob.page, boss.page):
            expect(page.locator(".message.deleted .text")).to_have_text(
                "message deleted", timeout=TIMEOUT
            )
        wait_kept(bob.page, lambda text: "cheap watches" not in text, "dropped it")
        bob.page.reload()
        expect(bob.page.locator(".message.deleted .text")).to_have_text(
            "message deleted", timeout=TIMEOUT
        )
        expect(bob.page.locator("#messages")).not_to_contain_text("cheap watches")
        assert boss.errors == []
