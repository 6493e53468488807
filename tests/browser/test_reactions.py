"""Reactions and the joined/left lines in a real Chromium: two people, live,
after a reload; lines grouped, without reconnect churn."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import TIMEOUT, ChatPage, enter_chat
from tests.browser.test_editing import DESKTOP, message, send_text, wait_kept
from tests.support import ServerProcess, closed_after_the_test, connect

pytestmark = pytest.mark.browser


def chip(page: Page, text: str, emoji: str) -> Any:
    return message(page, text).locator(f'.reaction-chip[data-emoji="{emoji}"]')


def test_a_reaction_is_seen_live_and_after_a_reload(
    browser_pages: Callable[..., ChatPage], chat_server: ServerProcess
) -> None:
    alice = browser_pages(chat_server.http_url, **DESKTOP)
    bob = browser_pages(chat_server.http_url, **DESKTOP)
    enter_chat(alice.page, "alice")
    enter_chat(bob.page, "bob")
    send_text(alice.page, "lunch at noon?")
    expect(message(bob.page, "lunch at noon?")).to_have_count(1, timeout=TIMEOUT)

    # Alice picks 🎉 from the palette: her chip is pressed, bob's is not.
    lunch = message(alice.page, "lunch at noon?")
    lunch.hover()
    lunch.locator(".reaction-add").click()
    expect(lunch.locator(".reaction-choice")).to_have_count(6)
    expect(lunch.locator(".reaction-choice").first).to_be_focused()
    lunch.locator('.reaction-choice[data-emoji="🎉"]').click()
    expect(lunch.locator(".reaction-picker")).to_have_count(0)
    mine = chip(alice.page, "lunch at noon?", "🎉")
    expect(mine).to_have_attribute("aria-pressed", "true", timeout=TIMEOUT)
    theirs = chip(bob.page, "lunch at noon?", "🎉")
    expect(theirs.locator(".reaction-count")).to_have_text("1", timeout=TIMEOUT)
    expect(theirs).to_have_attribute("aria-pressed", "false")
    expect(theirs).to_have_attribute("title", "alice reacted with 🎉")
    theirs.dispatch_event("contextmenu")  # what a long press on a touch screen fires
    expect(message(bob.page, "lunch at noon?").locator(".reaction-who")).to_have_text(
        "alice reacted with 🎉"
    )

    # Bob clicks the chip: his reaction joins hers, on both pages.
    theirs.click()
    expect(theirs).to_have_attribute("aria-pressed", "true", timeout=TIMEOUT)
    expect(mine.locator(".reaction-count")).to_have_text("2", timeout=TIMEOUT)
    expect(mine).to_have_attribute("title", "you and bob reacted with 🎉")

    # Any other single emoji through the field; text is refused on the page.
    lunch.hover()
    lunch.locator(".reaction-add").click()
    field = lunch.locator(".reaction-input")
    field.fill("ab")
    field.press("Enter")
    expect(lunch.locator(".reaction-error")).to_have_text("Give exactly one emoji.")
    field.fill("👍🏽")
    field.press("Enter")
    expect(chip(bob.page, "lunch at noon?", "👍🏽")).to_have_count(1, timeout=TIMEOUT)
    expect(lunch.locator(".reaction-add")).to_be_focused()

    # Bob reloads: the chips are there, his own still marked.
    wait_kept(bob.page, lambda text: "👍🏽" in text, "kept the reactions")
    bob.page.reload()
    expect(theirs.locator(".reaction-count")).to_have_text("2", timeout=TIMEOUT)
    expect(theirs).to_have_attribute("aria-pressed", "true")
    expect(message(bob.page, "lunch at noon?").locator(".reaction-chip")).to_have_count(
        2
    )

    # Bob's page is closed while alice adds 😮: back, the page shows what it
    # kept at once, and the replay adds the reaction he missed.
    bob.page.goto("about:blank")
    lunch.hover()
    lunch.locator(".reaction-add").click()
    lunch.locator('.reaction-choice[data-emoji="😮"]').click()
    expect(chip(alice.page, "lunch at noon?", "😮")).to_have_count(1, timeout=TIMEOUT)
    bob.page.goto(chat_server.http_url + "/")
    expect(chip(bob.page, "lunch at noon?", "😮")).to_have_attribute(
        "title", "alice reacted with 😮", timeout=TIMEOUT
    )
    expect(theirs).to_have_attribute("aria-pressed", "true")

    # And alice takes hers back: bob sees the count drop, live.
    mine.click()
    expect(theirs.locator(".reaction-count")).to_have_text("1", timeout=TIMEOUT)
    expect(mine).to_have_attribute("aria-pressed", "false", timeout=TIMEOUT)
    assert alice.errors == []
    assert [e for e in bob.errors if "WebSocket" not in e] == []


def test_joined_and_left_lines_are_grouped(
    browser_pages: Callable[..., ChatPage], chat_server: ServerProcess
) -> None:
    alice = browser_pages(chat_server.http_url, **DESKTOP)
    enter_chat(alice.page, "alice")
    lines = alice.page.locator("#messages .presence-line")
    send_text(alice.page, "hello room")

    people = [
        closed_after_the_test(connect(chat_server, name=name))
        for name in ("Ann", "Ben", "Cara")
    ]
    expect(lines).to_have_text(["Ann, Ben and Cara joined"], timeout=TIMEOUT)
    people += [
        closed_after_the_test(connect(chat_server, name=name))
        for name in ("Dan", "Eve")
    ]
    expect(lines).to_have_text(["Ann, Ben and 3 others joined"], timeout=TIMEOUT)

    # Ben reconnects at once (the same key): no "left", no second "joined".
    ben = people[1]
    ben.close()
    expect(lines).to_have_text(
        ["Ann, Ben and 3 others joined; Ben left"], timeout=TIMEOUT
    )
    closed_after_the_test(connect(chat_server, key=ben.welcome["key"]))
    expect(lines).to_have_text(["Ann, Ben and 3 others joined"], timeout=TIMEOUT)

    # A message ends the line; the next leave starts another below it.
    people[2].send(type="message", text="bye all")
    expect(message(alice.page, "bye all")).to_have_count(1, timeout=TIMEOUT)
    people[2].close()
    expect(lines).to_have_text(
        ["Ann, Ben and 3 others joined", "Cara left"], timeout=TIMEOUT
    )
    last = alice.page.locator("#messages .message-list > li").last
    expect(last).to_have_text("Cara left")
    assert alice.errors == []


def test_my_reaction_is_marked_beyond_the_people_named(
    browser_pages: Callable[..., ChatPage], chat_server: ServerProcess
) -> None:
    alice = browser_pages(chat_server.http_url, **DESKTOP)
    enter_chat(alice.page, "alice")
    send_text(alice.page, "who is in?")
    crowd = [
        closed_after_the_test(connect(chat_server, name=f"p{n}")) for n in range(21)
    ]
    crowd[0].send(type="history", room="lobby")
    [said] = crowd[0].recv_until("history")["messages"]
    for person in crowd:
        person.send(type="react", room="lobby", id=said["id"], emoji="👍")
    thumbs = chip(alice.page, "who is in?", "👍")
    expect(thumbs.locator(".reaction-count")).to_have_text("21", timeout=TIMEOUT)

    # Alice is the 22nd: not among the 20 named, yet her chip is pressed.
    thumbs.click()
    expect(thumbs.locator(".reaction-count")).to_have_text("22", timeout=TIMEOUT)
    expect(thumbs).to_have_attribute("aria-pressed", "true")
    wait_kept(alice.page, lambda text: '"mine"' in text, "kept my reaction")
    alice.page.reload()
    expect(thumbs.locator(".reaction-count")).to_have_text("22", timeout=TIMEOUT)
    expect(thumbs).to_have_attribute("aria-pressed", "true")
    thumbs.click()
    expect(thumbs.locator(".reaction-count")).to_have_text("21", timeout=TIMEOUT)
    expect(thumbs).to_have_attribute("aria-pressed", "false")
    assert alice.errors == []
