"""What a reader sees in a real Chromium: two users, typing, presence, unread
badges, day separators, links, mentions, notifications, announcements, and the
messages kept on the device for an instant reopen."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import TIMEOUT, ChatPage, enter_chat
from tests.browser.wire import Link
from tests.support import Client, ServerProcess, connect, run_server

pytestmark = pytest.mark.browser

DESKTOP = {"viewport": {"width": 1280, "height": 800}}
FAST = ("--rate", "100000", "--burst", "100000")  # posting hundreds at once
DAY_MS = 24 * 3600 * 1000

# Hiding a tab is not something headless Chromium does on request: the test
# tells the page its tab went to the background, as the browser would.
SET_VISIBILITY = """state => {
  const values = { visibilityState: state, hidden: state === 'hidden' };
  for (const [name, value] of Object.entries(values)) {
    Object.defineProperty(document, name, { configurable: true, get: () => value });
  }
  document.dispatchEvent(new Event('visibilitychange'));
}"""

# A stand-in for the Notification API that records what the page does with it.
FAKE_NOTIFICATIONS = """
window.__notifications = [];
window.__permissionRequests = 0;
class RecordedNotification {
  constructor(title, options) {
    window.__notifications.push({ title, body: (options || {}).body });
  }
  addEventListener() {}
  close() {}
}
RecordedNotification.permission = 'default';
RecordedNotification.requestPermission = () => {
  window.__permissionRequests += 1;
  RecordedNotification.permission = 'granted';
  return Promise.resolve('granted');
};
window.Notification = RecordedNotification;
"""

# Each message starts a new local day exactly where a separator is, and only
# there (the order of the list children is what a reader sees).
DAYS_ARE_SEPARATED = """() => {
  const key = ts => {
    const d = new Date(ts);
    return `${d.getFullYear()}-${d.getMonth() + 1}-${d.getDate()}`;
  };
  const problems = [];
  let previous = null;
  for (const list of document.querySelectorAll('#messages .message-list')) {
    previous = null;
    for (const el of list.children) {
      if (!el.classList.contains('message')) continue;
      const day = key(Number(el.dataset.ts));
      const before = el.previousElementSibling;
      const separated = Boolean(before && before.classList.contains('day'));
      const id = el.dataset.id;
      if (day !== previous && !(separated && before.dataset.day === day)) {
        problems.push(`no separator before ${id}`);
      }
      if (day === previous && separated) problems.push(`extra separator before ${id}`);
      previous = day;
    }
  }
  return problems;
}"""


def send_text(page: Page, text: str) -> None:
    page.fill("#message-input", text)
    page.press("#message-input", "Enter")
    expect(page.locator("#message-input")).to_have_value("")


def post(client: Client, room: str, texts: list[str]) -> None:
    """Send every text at once, then read until the last one is acknowledged."""
    for text in texts:
        client.send(type="message", room=room, text=text)
    last = texts[-1]
    client.recv_until("message", lambda f: f["text"] == last, timeout=60)


def set_visibility(page: Page, state: str) -> None:
    page.evaluate(SET_VISIBILITY, state)


def no_trouble(*chats: ChatPage) -> None:
    for chat in chats:
        assert chat.dialogs == []
        assert chat.errors == []


@pytest.fixture
def fast_server(tmp_path: Path) -> Iterator[ServerProcess]:
    with run_server(*FAST, log_dir=tmp_path) as server:
        yield server


def test_a_newcomer_sees_who_is_already_typing(
    open_chat: Callable[..., ChatPage],
) -> None:
    alice = open_chat(**DESKTOP)
    enter_chat(alice.page, "alice")
    alice.page.locator("#message-input").press_sequentially("still wri", delay=30)
    bob = open_chat(**DESKTOP)
    enter_chat(bob.page, "bob")
    expect(bob.page.locator("#typing")).to_have_text(
        "alice is typing…", timeout=TIMEOUT
    )
    alice.page.press("#message-input", "Enter")
    expect(bob.page.locator("#typing")).to_have_text("", timeout=TIMEOUT)


def test_two_users_typing_presence_and_unread(
    open_chat: Callable[..., ChatPage], artifacts: Path
) -> None:
    alice = open_chat(**DESKTOP)
    bob = open_chat(**DESKTOP)
    enter_chat(alice.page, "alice")
    enter_chat(bob.page, "bob")
    for chat, other in ((alice, "bob"), (bob, "alice")):
        members = chat.page.locator("#presence .member")
        expect(members.filter(has_text=other)).to_have_count(1, timeout=TIMEOUT)
        expect(chat.page.locator("#presence-count")).to_have_text("2")

    # Typing shows on the other page only.
    bob.page.locator("#message-input").press_sequentially("hello ali", delay=30)
    expect(alice.page.locator("#typing")).to_have_text(
        "bob is typing…", timeout=TIMEOUT
    )
    expect(bob.page.locator("#typing")).to_have_text("")
    bob.page.press("#message-input", "Enter")
    expect(alice.page.locator("#typing")).to_have_text("", timeout=TIMEOUT)
    expect(alice.page.locator("#messages .message .text")).to_have_text(
        ["hello ali"], timeout=TIMEOUT
    )

    # A second room: alice reads the lobby while bob writes in #dev.
    for chat in (alice, bob):
        chat.page.fill("#room-input", "dev")
        chat.page.press("#room-input", "Enter")
        expect(chat.page.locator("#room-title")).to_have_text("#dev", timeout=TIMEOUT)
    alice.page.click("#rooms .room[data-room=lobby] .room-select")
    expect(alice.page.locator("#room-title")).to_have_text("#lobby")
    send_text(bob.page, "news in dev")
    send_text(bob.page, "more news in dev")
    badge = alice.page.locator("#rooms .room[data-room=dev] .unread")
    expect(badge).to_have_text("2 unread", timeout=TIMEOUT)
    expect(badge).to_be_visible()
    alice.page.screenshot(path=artifacts / "unread-badge.png")
    alice.page.click("#rooms .room[data-room=dev] .room-select")
    expect(badge).to_be_hidden()
    expect(
        alice.page.locator("#messages .room-pane[data-room=dev] .text")
    ).to_have_text(["news in dev", "more news in dev"])

    # Presence: bob leaves #dev, then goes away altogether.
    bob.page.click("#rooms .room[data-room=dev] .room-leave")
    expect(alice.page.locator("#presence-count")).to_have_text("1", timeout=TIMEOUT)
    expect(alice.page.locator("#presence .member")).to_have_count(1)
    alice.page.click("#rooms .room[data-room=lobby] .room-select")
    expect(alice.page.locator("#presence-count")).to_have_text("2")
    bob.page.close()
    expect(alice.page.locator("#presence-count")).to_have_text("1", timeout=TIMEOUT)
    expect(alice.page.locator("#presence .member-name")).to_have_text(["alice"])
    no_trouble(alice)


def test_day_separators_for_history_pages_and_filled_gaps(
    browser_pages: Callable[..., ChatPage], fast_server: ServerProcess
) -> None:
    """Messages of other days come from the server with real times; the page
    is told they are older by shifting ``ts`` on the way in."""
    shifts = {"[3 days]": 3, "[2 days]": 2, "[1 day]": 1}

    def shifted(message: dict[str, Any]) -> dict[str, Any]:
        for tag, days in shifts.items():
            if str(message.get("text", "")).startswith(tag):
                return {**message, "ts": message["ts"] - days * DAY_MS}
        return message

    def rewrite(frame: dict[str, Any]) -> dict[str, Any]:
        if frame.get("type") == "message":
            return shifted(frame)
        if frame.get("type") == "history":
            return {**frame, "messages": [shifted(m) for m in frame["messages"]]}
        return frame

    poster = connect(fast_server, name="poster")
    try:
        post(poster, "lobby", [f"[3 days] old {i}" for i in range(10)])
        post(poster, "lobby", [f"[2 days] older {i}" for i in range(50)])
        link = Link(rewrite=rewrite)
        chat = browser_pages(fast_server.http_url, setup=link.install, **DESKTOP)
        page = chat.page
        enter_chat(page, "reader")
        labels = page.locator("#messages .day .day-label")
        messages = page.locator("#messages .message[data-id]")
        # The newest 50: all two days old.
        expect(messages).to_have_count(50, timeout=TIMEOUT)
        expect(labels).to_have_count(1)
        two_days = labels.first.text_content()
        assert two_days not in ("Today", "Yesterday")

        # Older history goes above, under its own day.
        page.click("#messages .load-older")
        expect(messages).to_have_count(60, timeout=TIMEOUT)
        expect(labels).to_have_count(2)
        three_days = labels.first.text_content()
        assert three_days not in ("Today", "Yesterday", two_days)
        assert page.evaluate(DAYS_ARE_SEPARATED) == []

        # Offline while 520 more come: the replay leaves a gap to fill.
        link.cut()
        expect(page.locator("#reconnect-banner")).to_be_visible(timeout=TIMEOUT)
        post(poster, "lobby", [f"[1 day] yesterday {i}" for i in range(20)])
        post(poster, "lobby", [f"today {i}" for i in range(500)])
        link.online = True
        page.click("#reconnect-button")
        expect(messages).to_have_count(560, timeout=30_000)
        expect(labels).to_have_text([three_days, two_days, "Today"])
        page.click("#messages .gap-button")
        expect(page.locator("#messages .gap")).to_have_count(0, timeout=TIMEOUT)
        expect(messages).to_have_count(580)
        expect(labels).to_have_text([three_days, two_days, "Yesterday", "Today"])
        assert page.evaluate(DAYS_ARE_SEPARATED) == []

        # A live message today adds no separator; each day is a heading.
        post(poster, "lobby", ["today, live"])
        expect(messages).to_have_count(581, timeout=TIMEOUT)
        expect(labels).to_have_count(4)
        expect(page.get_by_role("heading", name="Yesterday")).to_have_count(1)
        assert page.evaluate(DAYS_ARE_SEPARATED) == []
        no_trouble(chat)
    finally:
        poster.close()


LINKS_TEXT = (
    "see https://example.com/wiki/Chat_(software), and "
    "(https://example.org/path?q=1). Not javascript:alert(1) nor "
    "JAVASCRIPT://x%0Aalert(1) nor data:text/html,<script>alert(1)</script> — "
    "but http://example.net/a?b=1&c=<b>bold</b>!"
)
LINKS = [
    (
        "https://example.com/wiki/Chat_(software)",
        "https://example.com/wiki/Chat_(software)",
    ),
    ("https://example.org/path?q=1", "https://example.org/path?q=1"),
    ("http://example.net/a?b=1&c=", "http://example.net/a?b=1&c="),
]
PAYLOADS = [
    "<img src=x onerror=alert('text')>",
    '"><script>alert("text")</script>',
    "<svg/onload=alert(1)>",
    "<a href=javascript:alert(1)>click</a>",
    "{{constructor.constructor('alert(1)')()}}",
]


def test_links_are_safe_and_payloads_stay_text(
    open_chat: Callable[..., ChatPage], chat_server: ServerProcess, artifacts: Path
) -> None:
    alice = open_chat(**DESKTOP)
    bob = open_chat(**DESKTOP)
    enter_chat(alice.page, "alice")

    # Names and rooms that would be markup are refused, and said as text.
    page = bob.page
    page.fill("#name-input", "<img src=x onerror=alert('name')>")
    page.press("#name-input", "Enter")
    expect(page.locator("#name-error")).to_be_visible(timeout=TIMEOUT)
    expect(page.locator("#name-screen")).to_be_visible()
    enter_chat(page, "bob")
    page.fill("#room-input", "<svg onload=alert('room')>")
    page.press("#room-input", "Enter")
    expect(page.locator("#room-error")).to_be_visible()
    # Straight to the server, past the page's checks: refused there too.
    sneaky = connect(
        chat_server, name="<b onmouseover=alert(1)>x</b>", room="<script>x"
    )
    try:
        assert sneaky.welcome["user"]["name"].startswith("guest-")
        assert sneaky.welcome["rooms"] == []
    finally:
        sneaky.close()

    send_text(alice.page, LINKS_TEXT)
    for payload in PAYLOADS:
        send_text(alice.page, payload)
    texts = page.locator("#messages .message .text")
    expect(texts).to_have_text([LINKS_TEXT, *PAYLOADS], timeout=TIMEOUT)
    anchors = page.locator("#messages .message .text a")
    expect(anchors).to_have_count(len(LINKS))
    for i, (text, href) in enumerate(LINKS):
        anchor = anchors.nth(i)
        expect(anchor).to_have_text(text)
        expect(anchor).to_have_attribute("href", href)
        expect(anchor).to_have_attribute("target", "_blank")
        rel = (anchor.get_attribute("rel") or "").split()
        assert "noopener" in rel and "noreferrer" in rel
    markup = page.locator(
        "#messages img, #messages script, #messages svg, #messages b, "
        "#messages a[href^='javascript' i], #messages a[href^='data' i]"
    )
    expect(markup).to_have_count(0)
    # Hovering and clicking around runs nothing either.
    texts.nth(1).hover()
    page.screenshot(path=artifacts / "payloads.png")
    assert page.evaluate("document.querySelectorAll('[onerror],[onload]').length") == 0
    no_trouble(alice, bob)


def test_mentions_of_my_name_are_marked(open_chat: Callable[..., ChatPage]) -> None:
    alice = open_chat(**DESKTOP)
    bob = open_chat(**DESKTOP)
    enter_chat(alice.page, "alice")
    enter_chat(bob.page, "bob")
    lines = [
        "hey @Alice, lunch?",
        "mail bob@alice.example or ask @alice-bob",
        "@ALICE!",
        "alice without the at sign",
    ]
    for line in lines:
        send_text(bob.page, line)
    send_text(alice.page, "I am @alice")  # my own words: not a mention
    page = alice.page
    items = page.locator("#messages .message[data-id]")
    expect(items).to_have_count(5, timeout=TIMEOUT)
    expect(items.nth(0)).to_have_class(re.compile(r"\bmention\b"))
    expect(items.nth(0).locator("mark.mention-me")).to_have_text("@Alice")
    expect(items.nth(0).locator(".mention-badge")).to_have_text("mentions you")
    expect(items.nth(0).locator(".text")).to_have_text(lines[0])
    expect(items.nth(1)).not_to_have_class(re.compile(r"\bmention\b"))
    expect(items.nth(2).locator("mark.mention-me")).to_have_text("@ALICE")
    expect(items.nth(3)).not_to_have_class(re.compile(r"\bmention\b"))
    expect(items.nth(4)).not_to_have_class(re.compile(r"\bmention\b"))
    expect(page.locator("#messages mark")).to_have_count(2)
    # Bob's page marks nothing: nobody mentioned bob.
    expect(bob.page.locator("#messages .message.mention")).to_have_count(0)

    # A new name: mentions of the new one are marked, the old ones no more.
    page.click("#rename-button")
    page.fill("#nick-input", "alicia")
    page.press("#nick-input", "Enter")
    expect(page.locator("#me-name")).to_have_text("alicia", timeout=TIMEOUT)
    send_text(bob.page, "welcome, @alicia")
    expect(items).to_have_count(6, timeout=TIMEOUT)
    expect(page.locator("#messages .message.mention")).to_have_count(1)
    expect(items.nth(5).locator("mark")).to_have_text("@alicia")
    no_trouble(alice, bob)


def test_hidden_tab_title_count_notifications_and_announcements(
    browser_pages: Callable[..., ChatPage], chat_server: ServerProcess
) -> None:
    alice = browser_pages(
        chat_server.http_url,
        setup=lambda page: page.add_init_script(FAKE_NOTIFICATIONS),
        **DESKTOP,
    )
    bob = browser_pages(chat_server.http_url, **DESKTOP)
    enter_chat(alice.page, "alice")
    enter_chat(bob.page, "bob")
    page = alice.page

    # Off by default; permission is asked only when the user turns it on.
    toggle = page.get_by_label("Desktop notifications for mentions")
    expect(toggle).not_to_be_checked()
    assert page.evaluate("window.__permissionRequests") == 0
    toggle.check()
    expect(toggle).to_be_checked()
    assert page.evaluate("window.__permissionRequests") == 1
    assert page.evaluate("localStorage.getItem('chat.notify')") == "1"

    # New messages are announced politely; focus stays where it was.
    page.focus("#message-input")
    send_text(bob.page, "hello there")
    announcer = page.locator("#message-announcer")
    expect(announcer).to_have_attribute("aria-live", "polite")
    expect(announcer.locator("p")).to_have_text(["bob: hello there"], timeout=TIMEOUT)
    expect(page.locator("#messages")).to_have_attribute("aria-live", "off")
    expect(page.locator("#message-input")).to_be_focused()
    assert re.fullmatch(r"#lobby · Chat", page.title())

    set_visibility(page, "hidden")
    send_text(bob.page, "anyone around?")
    send_text(bob.page, "@alice are you there?")
    send_text(bob.page, "ok, later")
    expect(page).to_have_title("(3) #lobby · Chat", timeout=TIMEOUT)
    notes = page.evaluate("window.__notifications")
    assert notes == [{"title": "bob in #lobby", "body": "@alice are you there?"}]
    expect(announcer.locator("p").last).to_have_text("bob: ok, later")

    set_visibility(page, "visible")
    expect(page).to_have_title("#lobby · Chat")

    # Turned off: no more notifications, even for mentions.
    toggle.uncheck()
    assert page.evaluate("localStorage.getItem('chat.notify')") is None
    set_visibility(page, "hidden")
    send_text(bob.page, "@alice one more")
    expect(page).to_have_title("(1) #lobby · Chat", timeout=TIMEOUT)
    assert len(page.evaluate("window.__notifications")) == 1
    no_trouble(alice, bob)


def cached_texts(page: Page) -> list[str]:
    data = json.loads(page.evaluate("localStorage.getItem('chat.messages')") or "{}")
    return [m["text"] for m in data.get("rooms", {}).get("lobby", [])]


def wait_cached(page: Page, text: str) -> None:
    """Until the page has kept ``text`` (it saves a second after a change)."""
    deadline = time.monotonic() + TIMEOUT / 1000
    while text not in cached_texts(page):
        assert time.monotonic() < deadline, f"{text!r} never kept"
        page.wait_for_timeout(100)


def test_instant_reopen_and_opting_out(
    browser_pages: Callable[..., ChatPage], chat_server: ServerProcess
) -> None:
    link = Link()
    alice = browser_pages(chat_server.http_url, setup=link.install, **DESKTOP)
    bob = browser_pages(chat_server.http_url, **DESKTOP)
    enter_chat(alice.page, "alice")
    enter_chat(bob.page, "bob")
    page = alice.page
    before = ["one from alice", "two from bob", "three from alice"]
    send_text(page, before[0])
    expect(bob.page.locator("#messages .message[data-id]")).to_have_count(
        1, timeout=TIMEOUT
    )
    send_text(bob.page, before[1])
    expect(page.locator("#messages .message[data-id]")).to_have_count(
        2, timeout=TIMEOUT
    )
    send_text(page, before[2])
    wait_cached(page, before[2])

    # Reloaded with no connection at all: the kept messages are there at once.
    link.cut()
    page.reload()
    shown = page.locator("#messages .message[data-id] .text")
    expect(shown).to_have_text(before, timeout=TIMEOUT)
    expect(page.locator("#status")).not_to_have_attribute("data-state", "connected")
    expect(page.locator("#messages .message.own")).to_have_count(2)
    during = ["four from bob, while alice was away", "five from bob"]
    for text in during:
        send_text(bob.page, text)

    # Back on line: caught up with `since`, nothing twice.
    link.online = True
    page.click("#reconnect-button")
    expect(page.locator("#status")).to_have_attribute(
        "data-state", "connected", timeout=TIMEOUT
    )
    expect(shown).to_have_text(before + during, timeout=TIMEOUT)
    joins = [f for f in link.sent if f["type"] == "join" and f.get("room") == "lobby"]
    assert joins and joins[-1].get("since", 0) >= 3, joins
    ids = page.eval_on_selector_all(
        "#messages .message[data-id]", "els => els.map(e => Number(e.dataset.id))"
    )
    assert ids == sorted(set(ids)) and len(ids) == 5
    wait_cached(page, during[-1])

    # Opting out clears what was kept at once, and keeps nothing more.
    opt_out = page.get_by_label("Don't keep messages on this device")
    expect(opt_out).not_to_be_checked()
    opt_out.check()
    assert page.evaluate("localStorage.getItem('chat.messages')") is None
    send_text(bob.page, "six, not kept")
    expect(shown).to_have_count(6, timeout=TIMEOUT)
    page.wait_for_timeout(1500)  # longer than the page waits before saving
    assert page.evaluate("localStorage.getItem('chat.messages')") is None
    link.cut()
    page.reload()
    expect(page.locator("#chat")).to_be_visible(timeout=TIMEOUT)
    expect(page.get_by_label("Don't keep messages on this device")).to_be_checked()
    expect(page.locator("#messages .message")).to_have_count(0)
    assert alice.dialogs == [] and bob.dialogs == []
    assert [e for e in alice.errors if "WebSocket" not in e] == []


# Fill localStorage until it refuses more, leaving ``room`` characters free.
FILL_STORAGE = """room => {
  let size = 1 << 22;
  let i = 0;
  while (size >= 1024) {
    try {
      localStorage.setItem(`filler-${i}`, 'x'.repeat(size));
      i += 1;
    } catch (e) {
      size >>= 1;
    }
  }
  localStorage.removeItem('filler-0');
  localStorage.setItem('filler-0', 'x'.repeat(Math.max(0, (1 << 22) - room)));
  return i;
}"""


def test_a_full_storage_keeps_fewer_messages_and_breaks_nothing(
    open_chat: Callable[..., ChatPage],
) -> None:
    chat = open_chat(**DESKTOP)
    page = chat.page
    enter_chat(page, "alice")
    page.evaluate(FILL_STORAGE, 6000)
    long = ["a" * 1500 + f" {i}" for i in range(8)]
    for text in long:
        send_text(page, text)
    expect(page.locator("#messages .message[data-id]")).to_have_count(
        8, timeout=TIMEOUT
    )
    page.wait_for_timeout(1500)  # the page saves a second after a change
    kept = cached_texts(page)
    # Only what fits, newest first to stay; never more than was shown.
    assert 0 < len(kept) < len(long), len(kept)
    assert kept == long[len(long) - len(kept) :]
    send_text(page, "still fine")
    expect(page.locator("#messages .message[data-id]")).to_have_count(
        9, timeout=TIMEOUT
    )
    assert chat.dialogs == []
    assert chat.errors == []
