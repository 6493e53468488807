"""Moderation in a real Chromium: an admin mutes, kicks and bans a second
browser from the member list, with the keyboard, and that browser is told
what happened; the admin reads the moderation log. axe stays clean."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import TIMEOUT, ChatPage, enter_chat
from tests.browser.test_accessibility import AXE, SCREENSHOTS
from tests.support import MS, ROOT, ServerProcess, connect, http_get, run_server

pytestmark = pytest.mark.browser

DESKTOP = {"viewport": {"width": 1280, "height": 800}, "bypass_csp": True}
LIGHT_DESKTOP = {"viewport": {"width": 1280, "height": 800}, "color_scheme": "light"}
BOSS_KEY = "boss-key-0123456789abcdef"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with run_server("--db", str(tmp_path / "chat.db"), log_dir=tmp_path) as running:
        yield running


def admin_key(server: ServerProcess) -> str:
    """Reserve the name "boss" for BOSS_KEY, make boss an admin with the
    command, and wait until the running server counts them as one."""
    connect(server, name="boss", key=BOSS_KEY).close()
    db = server.proc.args[server.proc.args.index("--db") + 1]  # type: ignore[index]
    done = subprocess.run(
        [sys.executable, str(ROOT / "chat.py"), "admin", "add", "boss", "--db", db],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + 5000 * MS
    while True:
        client = connect(server, key=BOSS_KEY)
        client.close()
        if client.welcome.get("admin"):
            return BOSS_KEY
        assert time.monotonic() < deadline
        time.sleep(200 * MS)


def with_key(key: str) -> Callable[[Page], None]:
    script = f"window.localStorage.setItem('chat.key', {json.dumps(key)});"
    return lambda page: page.add_init_script(script)


def act(boss: Page, target: str, action: str) -> None:
    """Open the target's menu in the member list and choose an action, by
    keyboard: focus the menu button, Enter, then Enter on the item."""
    member = boss.locator("#presence .member").filter(has_text=target)
    button = member.locator(".member-actions")
    expect(button).to_be_visible(timeout=TIMEOUT)
    button.focus()
    boss.keyboard.press("Enter")
    expect(button).to_have_attribute("aria-expanded", "true")
    item = member.locator(f".member-action[data-action={action}]")
    item.focus()
    boss.keyboard.press("Enter")
    # Closed after the choice (or gone with the member, after a kick).
    expect(member.locator(".member-menu:visible")).to_have_count(0, timeout=TIMEOUT)


def notice(page: Page, text: str) -> None:
    expect(page.locator("#notices .notice-text").filter(has_text=text)).to_have_count(
        1, timeout=TIMEOUT
    )


def refused_connects(server: ServerProcess) -> float:
    """How many ``forbidden`` errors the server has sent (a banned user's
    connect is one)."""
    text = http_get(server.http_url + "/metrics")[2].decode()
    found = re.search(r'^chat_errors_total\{code="forbidden"\} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


def test_an_admin_mutes_kicks_and_bans_another_browser(
    server: ServerProcess,
    browser_pages: Callable[..., ChatPage],
    artifacts: Path,
) -> None:
    key = admin_key(server)
    boss = browser_pages(server.http_url, setup=with_key(key), **DESKTOP)
    enter_chat(boss.page, "boss")
    bob = browser_pages(server.http_url, **DESKTOP)
    enter_chat(bob.page, "bob")
    expect(boss.page.locator("#moderation-tools")).to_be_visible(timeout=TIMEOUT)
    expect(bob.page.locator("#moderation-tools")).to_be_hidden()
    # A member's menus offer only "Message privately".
    expect(
        bob.page.locator("#presence .member-action:not([data-action=dm])")
    ).to_have_count(0)

    act(boss.page, "bob", "mute-600")
    notice(bob.page, "You were muted in #lobby by boss for 10 minutes.")
    bob.page.fill("#message-input", "can I talk?")
    bob.page.press("#message-input", "Enter")
    notice(bob.page, "muted in #lobby for 10 minutes more")
    boss.page.screenshot(path=artifacts / "moderation-menu.png")

    # Escape closes an open menu and gives the focus back to its button.
    button = boss.page.locator("#presence .member").filter(has_text="bob")
    button = button.locator(".member-actions")
    button.focus()
    boss.page.keyboard.press("Enter")
    boss.page.keyboard.press("Escape")
    expect(button).to_have_attribute("aria-expanded", "false")
    assert boss.page.evaluate(
        "() => document.activeElement.classList.contains('member-actions')"
    )

    if AXE.exists():
        boss.page.keyboard.press("Enter")  # the menu open, for the scan
        boss.page.add_script_tag(path=str(AXE))
        result = boss.page.evaluate(
            "axe.run(document, { resultTypes: ['violations'] })"
        )
        serious = [
            (v["id"], [n["target"] for n in v["nodes"]])
            for v in result["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        assert serious == []
        boss.page.keyboard.press("Escape")

    act(boss.page, "bob", "kick")
    notice(bob.page, "You were kicked from #lobby by boss for 5 minutes.")
    expect(bob.page.locator("#rooms .room[data-room=lobby]")).to_have_count(
        0, timeout=TIMEOUT
    )
    bob.page.fill("#room-input", "lobby")
    bob.page.press("#room-input", "Enter")
    expect(bob.page.locator("#room-error")).to_contain_text(
        "kicked from #lobby", timeout=TIMEOUT
    )

    # Bob is in no room with boss now: boss bans from another shared room.
    for page in (boss.page, bob.page):
        page.fill("#room-input", "dev")
        page.press("#room-input", "Enter")
        expect(page.locator("#room-title")).to_have_text("#dev", timeout=TIMEOUT)
    act(boss.page, "bob", "ban")
    notice(bob.page, "You were banned from this server by boss.")
    # Closed with 4003: the page says so and does not knock again.
    expect(bob.page.locator("#reconnect-title")).to_have_text(
        "You are banned from this chat.", timeout=TIMEOUT
    )
    refused = refused_connects(server)
    bob.page.wait_for_timeout(3000)  # backoff would have retried by now
    expect(bob.page.locator("#reconnect-countdown")).not_to_contain_text("Reconnecting")
    assert refused_connects(server) == refused
    bob.page.screenshot(path=artifacts / "moderation-banned.png")

    boss.page.click("#modlog-button")
    entries = boss.page.locator("#modlog-list .modlog-text")
    expect(entries).to_have_text(
        [
            "boss banned bob on this server",
            "boss kicked bob in #lobby for 5 minutes",
            "boss muted bob in #lobby for 10 minutes",
            "console made an admin: boss",
        ],
        timeout=TIMEOUT,
    )
    assert boss.errors == [] and boss.dialogs == []


def scan_serious(page: Page) -> list[tuple[str, list[object]]]:
    """axe-core's serious and critical findings on the page as it is now."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, { resultTypes: ['violations'] })")
    return [
        (v["id"], [n["target"] for n in v["nodes"]])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_an_admin_mutes_someone_from_their_message_after_they_left(
    server: ServerProcess, browser_pages: Callable[..., ChatPage], artifacts: Path
) -> None:
    """The person menu on a message's author reaches someone no longer in
    "Here now"; it opens and closes by keyboard, one menu at a time."""
    boss = browser_pages(server.http_url, setup=with_key(admin_key(server)), **DESKTOP)
    bob = browser_pages(server.http_url, **DESKTOP)
    carol = browser_pages(server.http_url, **DESKTOP)
    for chat, name in ((boss, "boss"), (bob, "bob"), (carol, "carol")):
        enter_chat(chat.page, name)
    for chat, text in ((bob, "bob was here"), (carol, "carol too"), (boss, "hi all")):
        chat.page.fill("#message-input", text)
        chat.page.press("#message-input", "Enter")
        expect(chat.page.locator("#message-input")).to_have_value("")
    page = boss.page
    messages = page.locator("#messages .message[data-id]")
    expect(messages).to_have_count(3, timeout=TIMEOUT)
    # Nobody gets a menu on their own message; members get no moderation
    # in theirs (only "Message privately").
    mine = messages.filter(has_text="hi all")
    expect(mine.locator(".author-actions")).to_have_count(0)
    expect(
        carol.page.locator("#messages .member-action:not([data-action=dm])")
    ).to_have_count(0)

    # Bob goes to another room and leaves the lobby: gone from "Here now".
    bob.page.fill("#room-input", "dev")
    bob.page.press("#room-input", "Enter")
    expect(bob.page.locator("#room-title")).to_have_text("#dev", timeout=TIMEOUT)
    bob.page.locator('#rooms .room[data-room="lobby"] .room-leave').click()
    expect(page.locator("#presence .member").filter(has_text="bob")).to_have_count(
        0, timeout=TIMEOUT
    )

    by_bob = messages.filter(has_text="bob was here")
    button = by_bob.locator(".author-actions")
    expect(button).to_have_attribute("aria-label", "Moderate bob")
    button.focus()
    page.keyboard.press("Enter")
    expect(button).to_have_attribute("aria-expanded", "true")
    menu = by_bob.locator(".author-menu")
    expect(menu).to_be_visible()
    assert page.evaluate("() => document.activeElement.dataset.action") == "mute-600"
    page.screenshot(path=artifacts / "message-menu.png")
    if AXE.exists():
        assert scan_serious(page) == []
    page.keyboard.press("Escape")
    expect(menu).to_be_hidden()
    assert page.evaluate(
        "() => document.activeElement.classList.contains('author-actions')"
    )

    # One menu at a time: opening carol's (in "Here now") closes bob's.
    page.keyboard.press("Enter")
    expect(menu).to_be_visible()
    carol_member = page.locator("#presence .member").filter(has_text="carol")
    carol_member.locator(".member-actions").click()
    expect(carol_member.locator(".member-menu")).to_be_visible()
    expect(menu).to_be_hidden()
    expect(button).to_have_attribute("aria-expanded", "false")
    expect(page.locator(".member-menu:visible")).to_have_count(1)
    page.keyboard.press("Escape")

    button.focus()
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")  # on the first item: mute for 10 minutes
    expect(menu).to_be_hidden()
    notice(bob.page, "You were muted in #lobby by boss for 10 minutes.")
    page.click("#modlog-button")
    expect(page.locator("#modlog-list .modlog-text").first).to_have_text(
        "boss muted bob in #lobby for 10 minutes", timeout=TIMEOUT
    )
    assert boss.errors == [] and bob.errors == [] and carol.errors == []


def test_screenshot_of_a_team_room_for_the_readme(
    server: ServerProcess, browser_pages: Callable[..., ChatPage]
) -> None:
    """The README's third picture: an admin in a private room with a member,
    an edited message, a deleted one, a moderator badge and the menu on a
    person open."""
    boss = browser_pages(
        server.http_url, setup=with_key(admin_key(server)), **LIGHT_DESKTOP
    )
    ann = browser_pages(server.http_url, **LIGHT_DESKTOP)
    enter_chat(boss.page, "boss")
    enter_chat(ann.page, "ann")
    page = boss.page
    page.fill("#room-input", "planning")
    page.check("#room-private")
    page.press("#room-input", "Enter")
    expect(page.locator("#room-title")).to_have_text("🔒 #planning", timeout=TIMEOUT)
    page.fill("#add-people-input", "ann")
    page.press("#add-people-input", "Enter")
    ann_room = ann.page.locator('#rooms .room[data-room="planning"] .room-select')
    ann_room.click(timeout=TIMEOUT)
    expect(ann.page.locator("#room-title")).to_have_text("🔒 #planning")
    act(page, "ann", "make-moderator")

    for author, text in (
        (page, "Agenda for Thursday: the release, then the roadmap."),
        (ann.page, "I'll bring the numbers from last quarter."),
        (ann.page, "Lunch is on me"),
        (page, "Perfect, thanks @ann"),
    ):
        author.fill("#message-input", text)
        author.press("#message-input", "Enter")
        expect(author.locator("#message-input")).to_have_value("")
    lunch = ann.page.locator("#messages .message[data-id]").filter(has_text="Lunch is")
    lunch.hover()
    lunch.locator(".delete-button").click()
    lunch.locator(".confirm-delete").click()
    numbers = page.locator("#messages .message[data-id]").filter(has_text="the numbers")
    expect(numbers).to_have_count(1, timeout=TIMEOUT)
    mine = ann.page.locator("#messages .message[data-id]").filter(has_text="numbers")
    mine.hover()
    mine.locator(".edit-button").click()
    mine.locator(".edit-input").fill("I'll bring the numbers from Q3.")
    mine.locator(".edit-input").press("Enter")
    expect(page.locator(".message .edited-mark")).to_have_count(1, timeout=TIMEOUT)
    expect(page.locator(".message.deleted")).to_have_count(1, timeout=TIMEOUT)

    member = page.locator("#presence .member").filter(has_text="ann")
    member.locator(".member-actions").click()
    expect(member.locator(".member-menu")).to_be_visible()
    page.locator("#message-input").focus()
    member.locator(".member-actions").click()
    page.screenshot(path=SCREENSHOTS / "team.png")
    assert boss.errors == [] and ann.errors == []
