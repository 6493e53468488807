"""The chat page in a real headless Chromium: two users, escaping, typing, phones."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import TIMEOUT, ChatPage, enter_chat

pytestmark = pytest.mark.browser

PAYLOAD = "<img src=x onerror=alert(1)> hello"
OWN = re.compile(r"(^|\s)own(\s|$)")


def test_two_users_chat_safely(
    open_chat: Callable[..., ChatPage], artifacts: Path
) -> None:
    alice = open_chat(viewport={"width": 1280, "height": 800})
    bob = open_chat(viewport={"width": 1280, "height": 800})
    enter_chat(alice.page, "alice")
    enter_chat(bob.page, "bob")

    members = bob.page.locator("#presence .member")
    expect(members.filter(has_text="alice")).to_have_count(1, timeout=TIMEOUT)
    expect(bob.page.locator("#presence-count")).to_have_text("2", timeout=TIMEOUT)
    expect(
        alice.page.locator("#presence .member").filter(has_text="bob")
    ).to_have_count(1, timeout=TIMEOUT)

    # Typed key by key, not sent: bob sees the indicator while alice types.
    alice.page.locator("#message-input").press_sequentially(PAYLOAD, delay=40)
    expect(bob.page.locator("#typing")).to_have_text(
        "alice is typing…", timeout=TIMEOUT
    )
    expect(alice.page.locator("#char-count")).to_have_text(
        re.compile(rf"^{len(PAYLOAD)} / \d+$")
    )
    alice.page.press("#message-input", "Enter")

    bob_message = bob.page.locator("#messages .message").last
    expect(bob_message.locator(".text")).to_have_text(PAYLOAD, timeout=TIMEOUT)
    assert bob_message.locator(".text").text_content() == PAYLOAD
    expect(bob_message.locator(".author")).to_have_text("alice")
    expect(bob_message).not_to_have_class(OWN)
    expect(bob.page.locator("#messages img")).to_have_count(0)
    # The server clears the indicator when the message lands.
    expect(bob.page.locator("#typing")).to_have_text("", timeout=TIMEOUT)

    alice_message = alice.page.locator("#messages .message").last
    expect(alice_message.locator(".text")).to_have_text(PAYLOAD, timeout=TIMEOUT)
    expect(alice_message).to_have_class(OWN)
    # The greyed "Sending…" copy is replaced by the server's echo.
    expect(alice.page.locator("#messages .message.pending")).to_have_count(0)
    expect(alice.page.locator("#message-input")).to_have_value("")
    expect(alice.page.locator("#messages img")).to_have_count(0)

    bob.page.fill("#message-input", "hi alice,\nnice to see you")
    bob.page.press("#message-input", "Enter")
    reply = alice.page.locator("#messages .message").last.locator(".text")
    expect(reply).to_have_text("hi alice,\nnice to see you", timeout=TIMEOUT)

    alice.page.screenshot(path=artifacts / "desktop-alice.png")
    bob.page.screenshot(path=artifacts / "desktop-bob.png")
    for chat in (alice, bob):
        assert chat.dialogs == []
        assert chat.errors == []


def test_phone_viewport(open_chat: Callable[..., ChatPage], artifacts: Path) -> None:
    phone = open_chat(
        viewport={"width": 360, "height": 740},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    page = phone.page
    expect(page.locator("#name-form")).to_be_visible(timeout=TIMEOUT)
    page.screenshot(path=artifacts / "phone-name.png")

    page.fill("#name-input", "Zoë O'Brien")
    page.click("#name-form button[type=submit]")
    composer = page.locator("#composer")
    expect(composer).to_be_visible(timeout=TIMEOUT)
    expect(page.locator("#message-input")).to_be_enabled(timeout=TIMEOUT)

    page.fill("#message-input", "Hello from a small screen")
    page.click("#send-button")
    message = page.locator("#messages .message").last
    expect(message.locator(".text")).to_have_text(
        "Hello from a small screen", timeout=TIMEOUT
    )
    expect(message).to_be_in_viewport()
    expect(composer).to_be_in_viewport()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"the page scrolls sideways: {width}px wide"
    page.screenshot(path=artifacts / "phone-chat.png")

    page.click("#sidebar-toggle")
    expect(page.locator("#presence .member")).to_have_count(1, timeout=TIMEOUT)
    expect(page.locator("#join-room-form")).to_be_visible()
    page.screenshot(path=artifacts / "phone-sidebar.png")
    assert phone.dialogs == []
    assert phone.errors == []
