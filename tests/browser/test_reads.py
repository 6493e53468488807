"""Read positions in a real Chromium: unread badges that survive a reload,
show on a second device of the same account, and clear there live when the
first one reads; the "New messages" line at the read position."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.accounts_support import (
    connect_as,
    first_invite,
    path_of,
    redeem,
)
from tests.browser.conftest import TIMEOUT, ChatPage
from tests.browser.test_accounts import DESKTOP, accept_invite, connected_as
from tests.support import Client, ServerProcess, close_tracked, run_server

pytestmark = pytest.mark.browser


@pytest.fixture
def invite_server(tmp_path: Path) -> Iterator[ServerProcess]:
    with run_server("--access", "invite", log_dir=tmp_path) as server:
        yield server
        close_tracked()


@pytest.fixture
def fast_invite_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """Invite-only, and Bob may post a screenful at once."""
    flags = ("--access", "invite", "--rate", "1000", "--burst", "1000")
    with run_server(*flags, log_dir=tmp_path) as server:
        yield server
        close_tracked()


def session_of(page: Page) -> str:
    """The page's session cookie (HttpOnly: out of the page's reach, not ours)."""
    cookies = page.context.cookies()
    return next(c["value"] for c in cookies if c["name"] == "chat_session")


def ask(client: Client, kind: str) -> str:
    """A link from the server: ``invite`` or ``signin_link``."""
    client.send(type=kind)
    return str(client.recv_until(kind)["url"])


def join(page: Page, room: str) -> None:
    page.fill("#room-input", room)
    page.press("#room-input", "Enter")
    expect(page.locator("#room-title")).to_have_text(f"#{room}", timeout=TIMEOUT)


def open_room(page: Page, room: str) -> None:
    page.click(f"#rooms .room[data-room={room}] .room-select")
    expect(page.locator("#room-title")).to_have_text(f"#{room}", timeout=TIMEOUT)


def badge(page: Page, room: str) -> object:
    return page.locator(f"#rooms .room[data-room={room}] .unread")


def test_unread_survives_a_reload_and_follows_to_another_device(
    invite_server: ServerProcess, browser_pages: Callable[..., ChatPage]
) -> None:
    """Ensure Ann's unread count in #dev stays after a reload, shows the same
    on her phone (signed in by link), and clears on the laptop as soon as
    she reads #dev on the phone; the phone shows the "New messages" line
    above the first message she had not read."""
    # The server fixture first: it stops after the pages close (a signed-in
    # page that loses its server asks whether it is still signed in).
    server = invite_server
    laptop = browser_pages(server.http_url, **DESKTOP)
    accept_invite(laptop.page, server, first_invite(server), "Ann")
    ann = connect_as(server, session_of(laptop.page))
    phone_link = ask(ann, "signin_link")
    bob = connect_as(server, redeem(server, ask(ann, "invite"), "Bob"), room="dev")

    phone = browser_pages(server.http_url, **DESKTOP)
    phone.page.goto(server.http_url + path_of(phone_link))
    phone.page.get_by_role("button", name="Sign in").click()
    connected_as(phone.page, "Ann")
    for page in (laptop.page, phone.page):
        join(page, "dev")
        open_room(page, "lobby")

    bob.send(type="message", room="dev", text="seen before")
    bob.recv_until("message")
    dev = laptop.page.locator("#messages .room-pane[data-room=dev] .text")
    expect(dev).to_have_text(["seen before"], timeout=TIMEOUT)
    open_room(laptop.page, "dev")  # Ann reads it on the laptop
    expect(badge(phone.page, "dev")).to_be_hidden(timeout=TIMEOUT)
    open_room(laptop.page, "lobby")

    for text in ["are you there?", "the build is red", "never mind"]:
        bob.send(type="message", room="dev", text=text)
        bob.recv_until("message", lambda f, t=text: f["text"] == t)
    for page in (laptop.page, phone.page):
        expect(badge(page, "dev")).to_have_text("3 unread", timeout=TIMEOUT)

    laptop.page.reload()
    connected_as(laptop.page, "Ann")
    expect(laptop.page.locator("#room-title")).to_have_text("#lobby")
    expect(badge(laptop.page, "dev")).to_have_text("3 unread", timeout=TIMEOUT)
    phone.page.reload()
    connected_as(phone.page, "Ann")
    expect(badge(phone.page, "dev")).to_have_text("3 unread", timeout=TIMEOUT)

    open_room(phone.page, "dev")
    line = phone.page.locator("#messages .room-pane[data-room=dev] .new-messages")
    expect(line).to_have_count(1)
    expect(line).to_have_text("New messages")
    first_new = line.locator(
        "xpath=following-sibling::li[contains(@class,'message')][1]"
    )
    expect(first_new.locator(".text")).to_have_text("are you there?")
    expect(badge(laptop.page, "dev")).to_be_hidden(timeout=TIMEOUT)

    laptop.page.reload()
    connected_as(laptop.page, "Ann")
    expect(
        laptop.page.locator("#messages .room-pane[data-room=dev] .text")
    ).to_have_text(
        ["seen before", "are you there?", "the build is red", "never mind"],
        timeout=TIMEOUT,
    )
    expect(badge(laptop.page, "dev")).to_be_hidden()
    # The invite-needed page (401) before the sign-in is logged: nothing else.
    errors = [e for e in laptop.errors + phone.errors if "status of 401" not in e]
    assert errors == []


def test_a_room_is_read_only_once_its_end_is_seen(
    fast_invite_server: ServerProcess, browser_pages: Callable[..., ChatPage]
) -> None:
    """Ensure the laptop, open on #dev but scrolled up, does not mark a new
    message read (the phone keeps its badge), and does once scrolled down."""
    server = fast_invite_server
    laptop = browser_pages(server.http_url, **DESKTOP)
    accept_invite(laptop.page, server, first_invite(server), "Ann")
    ann = connect_as(server, session_of(laptop.page))
    phone_link = ask(ann, "signin_link")
    bob = connect_as(server, redeem(server, ask(ann, "invite"), "Bob"), room="dev")
    phone = browser_pages(server.http_url, **DESKTOP)
    phone.page.goto(server.http_url + path_of(phone_link))
    phone.page.get_by_role("button", name="Sign in").click()
    connected_as(phone.page, "Ann")
    join(phone.page, "dev")
    open_room(phone.page, "lobby")
    join(laptop.page, "dev")

    for n in range(40):  # more than the pane shows: it can scroll
        bob.send(type="message", room="dev", text=f"line {n}")
    bob.recv_until("message", lambda f: f["text"] == "line 39")
    pane = laptop.page.locator("#messages .room-pane[data-room=dev]")
    expect(pane.locator(".message")).to_have_count(40, timeout=TIMEOUT)
    expect(badge(phone.page, "dev")).to_be_hidden(timeout=TIMEOUT)

    pane.evaluate("el => { el.scrollTop = 0; }")
    bob.send(type="message", room="dev", text="while Ann scrolls back")
    expect(pane.locator(".message")).to_have_count(41, timeout=TIMEOUT)
    expect(badge(phone.page, "dev")).to_have_text("1 unread", timeout=TIMEOUT)
    laptop.page.wait_for_timeout(1500)  # longer than the page's read interval
    expect(badge(phone.page, "dev")).to_have_text("1 unread")

    pane.evaluate("el => { el.scrollTop = el.scrollHeight; }")
    expect(badge(phone.page, "dev")).to_be_hidden(timeout=TIMEOUT)
