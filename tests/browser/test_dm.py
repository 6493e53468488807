"""Direct messages in a real Chromium: one browser opens a conversation from
"Here now", the other hears of it and answers; a third browser sees nothing
of it and cannot open it, not even knowing its name."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import TIMEOUT, ChatPage, enter_chat
from tests.support import ServerProcess

pytestmark = pytest.mark.browser

DESKTOP = {"viewport": {"width": 1280, "height": 800}}


def person_menu(page: Page, name: str, action: str) -> None:
    """Choose ``action`` in the menu on ``name`` in "Here now"."""
    member = page.locator("#presence .member").filter(has_text=name)
    member.locator(".member-actions").click(timeout=TIMEOUT)
    member.locator(f".member-menu [data-action={action}]").click()


def send(page: Page, text: str) -> None:
    page.fill("#message-input", text)
    page.press("#message-input", "Enter")
    expect(page.locator("#message-input")).to_have_value("")


def test_a_dm_is_private_to_the_pair(
    open_chat: Callable[..., ChatPage], chat_server: ServerProcess
) -> None:
    ann, ben, cal = (open_chat(**DESKTOP) for _ in range(3))
    for chat, name in ((ann, "ann"), (ben, "ben"), (cal, "cal")):
        enter_chat(chat.page, name)
    a, b, c = ann.page, ben.page, cal.page
    expect(a.locator("#presence .member")).to_have_count(3, timeout=TIMEOUT)
    expect(a.locator("#dm-panel")).to_be_hidden()

    # Ann opens a conversation with Ben from "Here now" and writes.
    person_menu(a, "ben", "dm")
    item = a.locator("#dms .room.dm")
    expect(item).to_have_count(1, timeout=TIMEOUT)
    expect(a.locator("#dm-panel")).to_be_visible()
    expect(item).to_have_class("room dm active")
    expect(item.locator(".room-name")).to_have_text("ben")
    expect(a.locator("#room-title")).to_have_text("ben")
    expect(a.locator("#add-people-form")).to_be_hidden()
    expect(a.locator("#message-input")).to_be_focused()
    room = item.get_attribute("data-room")
    assert room is not None and room.startswith("@")
    send(a, "just between us")
    expect(a.locator("#messages .room-pane:visible .message .text")).to_have_text(
        ["just between us"], timeout=TIMEOUT
    )

    # Ben hears of it, sees it under "Direct messages" with an unread count,
    # and answers.
    expect(b.locator("#notices")).to_contain_text(
        "ann started a conversation with you.", timeout=TIMEOUT
    )
    ben_item = b.locator(f'#dms .room[data-room="{room}"]')
    expect(ben_item.locator(".room-name")).to_have_text("ann", timeout=TIMEOUT)
    expect(ben_item.locator(".unread")).to_contain_text("1", timeout=TIMEOUT)
    expect(b.locator(f'#rooms .room[data-room="{room}"]')).to_have_count(0)
    ben_item.locator(".room-select").click()
    expect(b.locator("#room-title")).to_have_text("ann")
    expect(b.locator("#messages .room-pane:visible .message .text")).to_have_text(
        ["just between us"], timeout=TIMEOUT
    )
    send(b, "agreed")
    expect(a.locator("#messages .room-pane:visible .message .text")).to_have_text(
        ["just between us", "agreed"], timeout=TIMEOUT
    )
    # Opening it again from Ben's side finds the same conversation.
    b.locator('#rooms .room[data-room="lobby"] .room-select').click()
    person_menu(b, "ann", "dm")
    expect(b.locator("#room-title")).to_have_text("ann", timeout=TIMEOUT)
    expect(b.locator("#dms .room")).to_have_count(1)

    # Cal sees nothing of it: no section, no notice, no messages.
    expect(c.locator("#dm-panel")).to_be_hidden()
    expect(c.locator(f'.room[data-room="{room}"]')).to_have_count(0)
    expect(c.locator("#notices")).not_to_contain_text("conversation")
    assert "just between us" not in c.content()
    listing = c.context.new_page()
    response = listing.goto(f"{chat_server.http_url}/rooms/{room}")
    assert response is not None and response.status == 404
    assert "just between us" not in listing.content()
    listing.close()
    # The room form refuses the name, and knowing it does not open it: a
    # page that has it in its list (as if it had been opened here) is
    # refused by the server and drops it.
    c.fill("#room-input", room)
    c.press("#room-input", "Enter")
    expect(c.locator("#room-error")).to_be_visible()
    c.evaluate(
        "rooms => localStorage.setItem('chat.rooms', rooms)",
        json.dumps(["lobby", room]),
    )
    c.reload()
    expect(c.locator("#status")).to_have_attribute(
        "data-state", "connected", timeout=TIMEOUT
    )
    expect(c.locator("#notices")).to_contain_text(
        "You are not a member of this room.", timeout=TIMEOUT
    )
    expect(c.locator(f'.room[data-room="{room}"]')).to_have_count(0)
    expect(c.locator("#dm-panel")).to_be_hidden()
    assert "just between us" not in c.content()
    for chat in (ann, ben, cal):
        assert not chat.errors, chat.errors


def test_a_message_authors_menu_opens_a_conversation(
    open_chat: Callable[..., ChatPage],
) -> None:
    """The "⋯" beside a message's author offers "Message privately" too, also
    for someone who has left; the conversation keeps their name."""
    ann, ben = open_chat(**DESKTOP), open_chat(**DESKTOP)
    enter_chat(ann.page, "ann")
    enter_chat(ben.page, "ben")
    a, b = ann.page, ben.page
    send(b, "ask me anything")
    by_ben = a.locator("#messages .message").filter(has_text="ask me anything")
    button = by_ben.locator(".author-actions")
    expect(button).to_have_attribute("aria-label", "Actions for ben", timeout=TIMEOUT)
    button.click()
    by_ben.locator(".author-menu [data-action=dm]").click()
    expect(a.locator("#room-title")).to_have_text("ben", timeout=TIMEOUT)
    # Nobody gets the item on themselves.
    mine = b.locator("#messages .message").filter(has_text="ask me anything")
    expect(mine.locator(".author-actions")).to_have_count(0)
    # After a reload the conversation is listed, with what was said in it.
    send(a, "a question")
    a.reload()
    expect(a.locator("#status")).to_have_attribute(
        "data-state", "connected", timeout=TIMEOUT
    )
    expect(a.locator("#dms .room.dm .room-name")).to_have_text(["ben"], timeout=TIMEOUT)
    a.locator("#dms .room.dm .room-select").click()
    expect(a.locator("#room-title")).to_have_text("ben")
    expect(a.locator("#messages .room-pane:visible .message .text")).to_have_text(
        ["a question"], timeout=TIMEOUT
    )
    assert not ann.errors and not ben.errors


def test_axe_finds_no_problems_with_a_conversation_open(
    open_chat: Callable[..., ChatPage],
) -> None:
    """The "Direct messages" section, a conversation and the person menu
    pass an axe-core scan that allows no violation at all."""
    from tests.browser.test_accessibility import AXE

    if not AXE.exists():
        pytest.skip("axe-core is not installed: npm ci --prefix tests/browser")
    ann = open_chat(**DESKTOP, bypass_csp=True)  # axe is a script of its own
    ben = open_chat(**DESKTOP)
    enter_chat(ann.page, "ann")
    enter_chat(ben.page, "ben")
    a = ann.page
    person_menu(a, "ben", "dm")
    expect(a.locator("#room-title")).to_have_text("ben", timeout=TIMEOUT)
    send(a, "hello ben")
    send(ben.page, "a lobby line")
    expect(a.locator('#rooms .room[data-room="lobby"] .unread')).to_contain_text(
        "1", timeout=TIMEOUT
    )
    member = a.locator("#presence .member").filter(has_text="ben")
    member.locator(".member-actions").click(timeout=TIMEOUT)  # a menu open too
    a.add_script_tag(path=str(AXE))
    result = a.evaluate("axe.run(document, { resultTypes: ['violations'] })")
    problems = [
        f"{v['impact']} {v['id']}: {[n['target'] for n in v['nodes']]}"
        for v in result["violations"]
    ]
    assert problems == []
