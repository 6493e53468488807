"""Private rooms in a real Chromium: one browser creates a private room and
chats; another does not see it anywhere and is refused, until it is added."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import TIMEOUT, ChatPage, enter_chat
from tests.support import ServerProcess

pytestmark = pytest.mark.browser

DESKTOP = {"viewport": {"width": 1280, "height": 800}}


def test_a_private_room_is_seen_by_members_only(
    open_chat: Callable[..., ChatPage], chat_server: ServerProcess
) -> None:
    alice, bob = open_chat(**DESKTOP), open_chat(**DESKTOP)
    enter_chat(alice.page, "alice")
    enter_chat(bob.page, "bob")
    a, b = alice.page, bob.page

    # Alice makes a private room with the keyboard only.
    a.fill("#room-input", "plans")
    a.focus("#room-private")
    a.keyboard.press("Space")
    expect(a.locator("#room-submit")).to_have_text("Create")
    a.focus("#room-input")
    a.keyboard.press("Enter")
    item = a.locator('#rooms .room[data-room="plans"]')
    expect(item).to_have_class("room private active", timeout=TIMEOUT)
    expect(item.locator(".room-lock")).to_be_visible()
    expect(a.locator("#room-title")).to_have_text("🔒 #plans")
    expect(a.locator("#add-people-form")).to_be_visible()
    expect(a.locator("#room-private")).not_to_be_checked()
    a.fill("#message-input", "the secret plan")
    a.press("#message-input", "Enter")
    expect(a.locator("#messages .message .text").last).to_have_text(
        "the secret plan", timeout=TIMEOUT
    )

    # Bob sees it nowhere, and is refused when he tries the name.
    expect(b.locator('#rooms .room[data-room="plans"]')).to_have_count(0)
    expect(b.locator("#add-people-form")).to_be_hidden()
    listing = b.context.new_page()
    listing.goto(chat_server.http_url + "/rooms")
    expect(listing.locator("main")).to_contain_text("Rooms")
    assert "plans" not in listing.content()
    answers = []
    for room in ("nosuch", "plans"):
        response = listing.goto(f"{chat_server.http_url}/rooms/{room}")
        assert response is not None
        answers.append((response.status, response.body()))
    assert answers[0][0] == 404 and answers[1] == answers[0]
    listing.close()
    b.fill("#room-input", "plans")
    b.press("#room-input", "Enter")
    expect(b.locator("#room-error")).to_have_text(
        "You are not a member of this room.", timeout=TIMEOUT
    )
    expect(b.locator('#rooms .room[data-room="plans"]')).to_have_count(0)

    # Alice adds Bob by name; the room comes to his list, with a notice.
    a.fill("#add-people-input", "bob")
    a.press("#add-people-input", "Enter")
    expect(a.locator("#notices")).to_contain_text(
        "bob can now join #plans.", timeout=TIMEOUT
    )
    expect(a.locator("#add-people-input")).to_have_value("")
    expect(b.locator("#notices")).to_contain_text(
        "alice added you to the private room #plans.", timeout=TIMEOUT
    )
    bob_item = b.locator('#rooms .room[data-room="plans"]')
    expect(bob_item.locator(".room-lock")).to_be_visible(timeout=TIMEOUT)
    bob_item.locator(".room-select").click()
    expect(b.locator("#room-title")).to_have_text("🔒 #plans")
    expect(b.locator("#messages .room-pane:visible .message .text")).to_have_text(
        ["the secret plan"], timeout=TIMEOUT
    )
    assert not alice.errors and not bob.errors, (alice.errors, bob.errors)


def test_axe_finds_no_serious_problems_in_a_private_room(
    open_chat: Callable[..., ChatPage],
) -> None:
    """The lock, the checkbox and the "Add people" form pass an axe-core scan."""
    from tests.browser.test_accessibility import AXE

    if not AXE.exists():
        pytest.skip("axe-core is not installed: npm ci --prefix tests/browser")
    alice = open_chat(**DESKTOP, bypass_csp=True)  # axe is a script of its own
    page = alice.page
    enter_chat(page, "alice")
    page.fill("#room-input", "plans")
    page.check("#room-private")
    page.press("#room-input", "Enter")
    expect(page.locator("#add-people-form")).to_be_visible(timeout=TIMEOUT)
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, { resultTypes: ['violations'] })")
    serious = [
        f"{v['impact']} {v['id']}: {[n['target'] for n in v['nodes']]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert serious == []


def test_the_creator_removes_a_member_who_then_loses_the_room(
    open_chat: Callable[..., ChatPage],
) -> None:
    """Only the creator's person menu offers "Remove from this room" (not a
    moderator's, not a member's, not in a public room); the removed person's
    page drops the room, from "Here now" or from a message alike."""
    from tests.browser.test_accessibility import AXE

    alice, bob, carol = (open_chat(**DESKTOP, bypass_csp=True) for _ in range(3))
    for chat, name in ((alice, "alice"), (bob, "bob"), (carol, "carol")):
        enter_chat(chat.page, name)
    a = alice.page
    a.fill("#room-input", "plans")
    a.check("#room-private")
    a.press("#room-input", "Enter")
    expect(a.locator("#room-title")).to_have_text("🔒 #plans", timeout=TIMEOUT)
    # In the public lobby nobody here may remove anyone: their menus offer
    # only "Message privately".
    for chat in (bob, carol):
        lobby = chat.page.locator("#presence .member-action:not([data-action=dm])")
        expect(lobby).to_have_count(0)
    for name in ("bob", "carol"):
        a.fill("#add-people-input", name)
        a.press("#add-people-input", "Enter")
        expect(a.locator("#presence .member").filter(has_text=name)).to_have_count(
            1, timeout=TIMEOUT
        )
    for chat in (bob, carol):
        item = chat.page.locator('#rooms .room[data-room="plans"] .room-select')
        item.click(timeout=TIMEOUT)
        expect(chat.page.locator("#room-title")).to_have_text("🔒 #plans")
    carol.page.fill("#message-input", "carol's idea")
    carol.page.press("#message-input", "Enter")

    def menu_of(page: Page, name: str) -> Locator:
        member = page.locator("#presence .member").filter(has_text=name)
        member.locator(".member-actions").click(timeout=TIMEOUT)
        return member.locator(".member-menu")

    # The creator makes bob a moderator: his menu on carol mutes, never removes.
    menu_of(a, "bob").locator("[data-action=make-moderator]").click()
    b = bob.page
    expect(b.locator("#presence .member").filter(has_text="bob")).to_contain_text(
        "mod", timeout=TIMEOUT
    )
    bobs = menu_of(b, "carol")
    expect(bobs.locator("[data-action=mute-600]")).to_be_visible()
    expect(bobs.locator("[data-action=remove]")).to_have_count(0)
    b.keyboard.press("Escape")
    expect(
        carol.page.locator("#presence .member-action:not([data-action=dm])")
    ).to_have_count(0)
    # Nor on the creator's own entry, in her menus.
    expect(a.locator("#presence .member.self .member-actions")).to_have_count(0)

    menu = menu_of(a, "bob")
    remove = menu.locator("[data-action=remove]")
    expect(remove).to_have_text("Remove from this room")
    if AXE.exists():
        a.add_script_tag(path=str(AXE))
        result = a.evaluate("axe.run(document, { resultTypes: ['violations'] })")
        serious = [
            f"{v['impact']} {v['id']}: {[n['target'] for n in v['nodes']]}"
            for v in result["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        assert serious == []
    remove.focus()
    a.keyboard.press("Enter")
    expect(a.locator("#notices")).to_contain_text(
        "bob was removed from #plans and can no longer join it.", timeout=TIMEOUT
    )
    expect(b.locator("#notices")).to_contain_text(
        "You were removed from the private room #plans.", timeout=TIMEOUT
    )
    expect(b.locator('#rooms .room[data-room="plans"]')).to_have_count(0)
    expect(a.locator("#presence .member").filter(has_text="bob")).to_have_count(0)

    # From carol's message this time.
    by_carol = a.locator("#messages .message[data-id]").filter(has_text="carol's idea")
    by_carol.locator(".author-actions").click(timeout=TIMEOUT)
    by_carol.locator(".author-menu [data-action=remove]").click()
    expect(carol.page.locator('#rooms .room[data-room="plans"]')).to_have_count(
        0, timeout=TIMEOUT
    )
    b.fill("#room-input", "plans")
    b.press("#room-input", "Enter")
    expect(b.locator("#room-error")).to_have_text(
        "You are not a member of this room.", timeout=TIMEOUT
    )
    assert not alice.errors and not bob.errors and not carol.errors
