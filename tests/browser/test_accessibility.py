"""The page for everyone, in a real Chromium: keyboard only, a 360 px phone,
an axe-core scan, and the screenshots the README shows."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import TIMEOUT, ChatPage, enter_chat
from tests.support import ROOT, Client, ServerProcess, connect

pytestmark = pytest.mark.browser

DESKTOP = {"viewport": {"width": 1280, "height": 800}}
PHONE = {
    "viewport": {"width": 360, "height": 740},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
# Installed by `npm ci --prefix tests/browser` (scripts/test does it).
AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
# The README's pictures are refreshed only when asked for
# (CHAT_UPDATE_SCREENSHOTS=1); other runs leave the working tree alone.
SCREENSHOTS = (
    ROOT / "docs" / "screenshots"
    if os.environ.get("CHAT_UPDATE_SCREENSHOTS")
    else Path(os.environ.get("CHAT_ARTIFACTS", ROOT / "artifacts" / "screenshots"))
)

FOCUS_RING = """() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  return {
    id: el.id, cls: el.className, tag: el.tagName,
    ring: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2,
  };
}"""


def focused_is(page: Page, selector: str) -> bool:
    return page.evaluate(
        "s => document.activeElement && document.activeElement.matches(s)", selector
    )


def tab_to(page: Page, selector: str, key: str = "Tab", most: int = 40) -> None:
    """Press Tab (or Shift+Tab) until ``selector`` has focus; every control
    passed on the way shows a focus ring."""
    for _ in range(most):
        page.keyboard.press(key)
        focus = page.evaluate(FOCUS_RING)
        if focus["tag"] not in ("BODY", "TEXTAREA"):
            # The composer shows its focus on its frame instead (see below).
            assert focus["ring"], f"no visible focus on {focus}"
        if focused_is(page, selector):
            return
    raise AssertionError(f"{selector} never got the focus")


def test_keyboard_only(open_chat: Callable[..., ChatPage]) -> None:
    chat = open_chat(**DESKTOP)
    page = chat.page
    keyboard = page.keyboard
    expect(page.locator("#name-input")).to_be_focused(timeout=TIMEOUT)
    keyboard.type("kay")
    keyboard.press("Enter")
    expect(page.locator("#status")).to_have_attribute(
        "data-state", "connected", timeout=TIMEOUT
    )
    composer = page.locator("#message-input")
    expect(composer).to_be_focused()
    keyboard.type("typed, never clicked")
    keyboard.press("Enter")
    expect(page.locator("#messages .message[data-id] .text")).to_have_text(
        ["typed, never clicked"], timeout=TIMEOUT
    )
    # The composer's frame lights up while it has the focus.
    border = page.evaluate(
        "getComputedStyle(document.querySelector('#composer')).borderTopColor"
    )
    body_border = page.evaluate(
        "getComputedStyle(document.querySelector('#room-input')).borderTopColor"
    )
    assert border != body_border

    # Back up to the join form, then into a new room.
    tab_to(page, "#room-input", key="Shift+Tab")
    keyboard.type("dev")
    keyboard.press("Enter")
    expect(page.locator("#room-title")).to_have_text("#dev", timeout=TIMEOUT)
    tab_to(page, "#rooms .room[data-room=lobby] .room-select", key="Shift+Tab")
    keyboard.press("Enter")
    expect(page.locator("#room-title")).to_have_text("#lobby")
    expect(composer).to_be_focused()
    keyboard.type("back in the lobby")
    keyboard.press("Enter")
    expect(page.locator(".room-pane[data-room=lobby] .message .text")).to_have_text(
        ["typed, never clicked", "back in the lobby"], timeout=TIMEOUT
    )
    # Settings are reachable and switch with the space bar.
    tab_to(page, "#no-cache-toggle", key="Shift+Tab")
    keyboard.press("Space")
    expect(page.locator("#no-cache-toggle")).to_be_checked()
    # Renaming, and Escape closes the form and gives the focus back.
    tab_to(page, "#rename-button", key="Shift+Tab")
    keyboard.press("Enter")
    expect(page.locator("#nick-input")).to_be_focused()
    keyboard.press("Escape")
    expect(page.locator("#nick-form")).to_be_hidden()
    expect(page.locator("#rename-button")).to_be_focused()
    assert chat.dialogs == []
    assert chat.errors == []


def scroll_width(page: Page) -> int:
    return page.evaluate("document.scrollingElement.scrollWidth")


def test_phone_has_no_sideways_scroll(open_chat: Callable[..., ChatPage]) -> None:
    chat = open_chat(**PHONE)
    page = chat.page
    expect(page.locator("#name-form")).to_be_visible(timeout=TIMEOUT)
    assert scroll_width(page) <= 360
    enter_chat(page, "Zoë O'Brien-Smith")
    for text in (
        "a link: https://example.com/" + "very-long-path/" * 12 + "end",
        "x" * 300,
        "@Zoë O'Brien-Smith look at this",
    ):
        page.fill("#message-input", text)
        page.press("#message-input", "Enter")
    expect(page.locator("#messages .message[data-id]")).to_have_count(
        3, timeout=TIMEOUT
    )
    assert scroll_width(page) <= 360, scroll_width(page)
    expect(page.locator("#composer")).to_be_in_viewport()
    page.click("#sidebar-toggle")
    expect(page.locator("#no-cache-toggle")).to_be_attached()
    expect(page.locator("#join-room-form")).to_be_visible()
    assert scroll_width(page) <= 360, scroll_width(page)
    page.locator("#no-cache-toggle").scroll_into_view_if_needed()
    expect(page.locator("#no-cache-toggle")).to_be_visible()
    assert scroll_width(page) <= 360, scroll_width(page)
    assert chat.dialogs == []
    assert chat.errors == []


@pytest.fixture
def conversation(
    browser_pages: Callable[..., ChatPage], chat_server: ServerProcess
) -> Iterator[Callable[..., tuple[ChatPage, ChatPage]]]:
    """alice and bob talking, carol joining in from a script; what alice's
    page shows includes a link, a reply that mentions her, a reaction and an
    unread room."""
    carol: list[Client] = []

    def start(**context_options: Any) -> tuple[ChatPage, ChatPage]:
        alice = browser_pages(chat_server.http_url, **context_options)
        bob = browser_pages(chat_server.http_url, **context_options)
        enter_chat(alice.page, "alice")
        enter_chat(bob.page, "bob")
        alice.page.fill("#room-input", "design")
        alice.page.press("#room-input", "Enter")
        expect(alice.page.locator("#room-title")).to_have_text(
            "#design", timeout=TIMEOUT
        )
        alice.page.click("#rooms .room[data-room=lobby] .room-select")
        carol.append(connect(chat_server, name="carol"))

        def say(page: Page, text: str) -> None:
            page.fill("#message-input", text)
            page.press("#message-input", "Enter")
            expect(page.locator("#message-input")).to_have_value("")

        def carol_says(text: str, room: str = "lobby", **extra: Any) -> dict:
            carol[0].send(type="message", room=room, text=text, **extra)
            return carol[0].recv_until("message", lambda f: f["text"] == text)

        say(bob.page, "Morning! Did the deploy go out?")
        say(
            alice.page,
            "Yes, 1.4 is live. Release notes: https://example.com/releases/1.4",
        )
        release = carol[0].recv_until("message", lambda f: "1.4" in f["text"])
        carol_says(
            "Nice. @alice the login page feels much faster now.",
            reply_to=release["id"],
        )
        carol[0].send(type="react", room="lobby", id=release["id"], emoji="🎉")
        carol[0].recv_until("reacted")
        say(bob.page, "I'll update the docs this afternoon.\nAnything else?")
        carol[0].send(type="join", room="design")
        carol_says("New mockups are up, have a look when you can.", room="design")
        messages = alice.page.locator(".room-pane[data-room=lobby] .message")
        expect(messages).to_have_count(4, timeout=TIMEOUT)
        expect(
            alice.page.locator("#rooms .room[data-room=design] .unread")
        ).to_be_visible(timeout=TIMEOUT)
        bob.page.locator("#message-input").press_sequentially("Sounds", delay=30)
        expect(alice.page.locator("#typing")).to_have_text(
            "bob is typing…", timeout=TIMEOUT
        )
        return alice, bob

    yield start
    for client in carol:
        client.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_problems(
    conversation: Callable[..., tuple[ChatPage, ChatPage]],
    browser_pages: Callable[..., ChatPage],
    chat_server: ServerProcess,
    scheme: str,
) -> None:
    if not AXE.exists():
        pytest.skip("axe-core is not installed: npm ci --prefix tests/browser")
    # axe is injected as a script of its own: allowed only past the CSP.
    options = {**DESKTOP, "color_scheme": scheme, "bypass_csp": True}
    newcomer = browser_pages(chat_server.http_url, **options)
    alice, _ = conversation(**options)
    pages = {"name screen": newcomer.page, "chat": alice.page}
    alice.page.get_by_label("Desktop notifications for mentions").focus()
    # Every violation counts, minor and moderate ones included.
    problems = []
    for what, page in pages.items():
        page.add_script_tag(path=str(AXE))
        result = page.evaluate("axe.run(document, { resultTypes: ['violations'] })")
        for violation in result["violations"]:
            nodes = [n["target"] for n in violation["nodes"]]
            problems.append(f"{what}: {violation['impact']} {violation['id']}: {nodes}")
    assert problems == [], json.dumps(problems, indent=2)


def test_screenshots_for_the_readme(
    conversation: Callable[..., tuple[ChatPage, ChatPage]],
    browser_pages: Callable[..., ChatPage],
    chat_server: ServerProcess,
) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    alice, bob = conversation(**DESKTOP, color_scheme="light")
    page = alice.page
    mention = page.locator(".room-pane[data-room=lobby] .message.mention")
    expect(mention).to_have_count(1)
    expect(page.locator(".room-pane[data-room=lobby] .text a")).to_have_count(1)
    page.locator("#message-input").focus()
    page.screenshot(path=SCREENSHOTS / "desktop.png")

    # The same user on a phone: the same key, so the same name.
    state = page.context.storage_state()
    phone = browser_pages(
        chat_server.http_url, storage_state=state, color_scheme="light", **PHONE
    )
    expect(phone.page.locator("#status")).to_have_attribute(
        "data-state", "connected", timeout=TIMEOUT
    )
    expect(phone.page.locator("#me-name")).to_have_text("alice")
    expect(phone.page.locator(".room-pane[data-room=lobby] .message")).to_have_count(
        4, timeout=TIMEOUT
    )
    # A newcomer hears of typing only when it starts: start again.
    bob.page.fill("#message-input", "")
    bob.page.locator("#message-input").press_sequentially("Sounds good", delay=30)
    expect(phone.page.locator("#typing")).to_have_text(
        "bob is typing…", timeout=TIMEOUT
    )
    phone.page.locator("#message-input").blur()
    phone.page.screenshot(path=SCREENSHOTS / "phone.png")
    assert scroll_width(phone.page) <= 360
    for chat in (alice, phone):
        assert chat.dialogs == []
        assert chat.errors == []
