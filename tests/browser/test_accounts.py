"""Invite-only chat in a real Chromium: an invite to a name to the chat, a
second device signed in by link, sessions revoked from the account panel."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.accounts_support import first_invite, path_of
from tests.browser.conftest import TIMEOUT, ChatPage
from tests.browser.test_accessibility import AXE
from tests.support import ServerProcess, run_server

pytestmark = pytest.mark.browser

DESKTOP = {"viewport": {"width": 1280, "height": 800}}


@pytest.fixture
def invite_server(tmp_path: Path) -> Iterator[ServerProcess]:
    with run_server("--access", "invite", log_dir=tmp_path) as server:
        yield server


def connected_as(page: Page, name: str) -> None:
    expect(page.locator("#status")).to_have_attribute(
        "data-state", "connected", timeout=TIMEOUT
    )
    expect(page.locator("#me-name")).to_have_text(name, timeout=TIMEOUT)


def accept_invite(page: Page, server: ServerProcess, url: str, name: str) -> None:
    page.goto(server.http_url + path_of(url))
    page.get_by_label("Your name").fill(name)
    page.get_by_role("button", name="Enter the chat").click()
    connected_as(page, name)


def serious_axe_problems(page: Page, what: str) -> list[str]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, { resultTypes: ['violations'] })")
    return [
        f"{what}: {v['impact']} {v['id']}: {[n['target'] for n in v['nodes']]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_an_invite_leads_to_the_chat_and_a_second_device_follows(
    browser_pages: Callable[..., ChatPage], invite_server: ServerProcess
) -> None:
    """Ensure the page without a session says an invite is needed; the invite
    form leads straight into the chat under the picked name (no name screen);
    a sign-in link from the account panel signs a second browser in as the
    same person; revoking that session sends it back to the invite page."""
    laptop = browser_pages(invite_server.http_url, **DESKTOP)
    page = laptop.page
    expect(page.get_by_role("heading", name="Invite needed")).to_be_visible()
    expect(page.locator("#message-input")).to_have_count(0)
    accept_invite(page, invite_server, first_invite(invite_server), "Alice")
    page.fill("#message-input", "hello from the laptop")
    page.press("#message-input", "Enter")
    expect(page.locator(".message .text").last).to_have_text("hello from the laptop")

    page.get_by_role("button", name="Account").click()
    page.get_by_role("button", name="Sign in another device").click()
    link = page.locator("#account-link-input")
    expect(link).to_have_value(re.compile(r"/signin/"), timeout=TIMEOUT)
    signin_url = link.input_value()
    expect(page.get_by_role("button", name="Create invite")).to_be_visible()

    phone = browser_pages(invite_server.http_url, **DESKTOP)
    other = phone.page
    other.goto(invite_server.http_url + path_of(signin_url))
    other.get_by_role("button", name="Sign in").click()
    connected_as(other, "Alice")
    expect(other.locator(".message .text").last).to_have_text("hello from the laptop")

    page.get_by_role("button", name="Your sessions").click()
    sessions = page.locator("#session-list .session")
    expect(sessions).to_have_count(2, timeout=TIMEOUT)
    expect(page.locator("#session-list .session.current")).to_have_count(1)
    page.locator("#session-list .session:not(.current) .session-revoke").click()
    expect(other.get_by_role("heading", name="Invite needed")).to_be_visible(
        timeout=TIMEOUT
    )
    expect(sessions).to_have_count(1, timeout=TIMEOUT)
    # The 401 invite-needed page is logged as a failed load: nothing else.
    errors = [e for e in laptop.errors + phone.errors if "status of 401" not in e]
    assert errors == []


def test_the_account_pages_pass_axe(
    browser_pages: Callable[..., ChatPage], invite_server: ServerProcess
) -> None:
    """Ensure the invite-needed page, the invite form and the chat with its
    account panel open have no serious or critical axe findings."""
    if not AXE.exists():
        pytest.skip("axe-core is not installed: npm ci --prefix tests/browser")
    options = {**DESKTOP, "bypass_csp": True}
    chat = browser_pages(invite_server.http_url, **options)
    page = chat.page
    problems = serious_axe_problems(page, "invite needed")
    page.goto(invite_server.http_url + path_of(first_invite(invite_server)))
    problems += serious_axe_problems(page, "invite form")
    page.get_by_label("Your name").fill("guest-1")  # the server's: refused
    page.get_by_role("button", name="Enter the chat").click()
    expect(page.locator("#invite-error")).to_be_visible()
    problems += serious_axe_problems(page, "invite form with an error")
    page.get_by_label("Your name").fill("Alice")
    page.get_by_role("button", name="Enter the chat").click()
    connected_as(page, "Alice")
    page.get_by_role("button", name="Account").click()
    page.get_by_role("button", name="Your sessions").click()
    expect(page.locator("#session-list .session")).to_have_count(1, timeout=TIMEOUT)
    problems += serious_axe_problems(page, "account panel")
    assert problems == [], json.dumps(problems, indent=2)


def test_a_page_whose_session_is_gone_says_so_after_a_drop(
    browser_pages: Callable[..., ChatPage], tmp_path: Path
) -> None:
    """Ensure a signed-in page whose session no longer exists when it
    reconnects (a memory store restarted) shows the invite page instead of
    retrying for ever."""
    with run_server("--access", "invite", "--db", ":memory:", log_dir=tmp_path) as one:
        port = one.port
        chat = browser_pages(one.http_url, **DESKTOP)
        accept_invite(chat.page, one, first_invite(one), "Alice")
    again = tmp_path / "again"
    again.mkdir()
    with run_server("--access", "invite", "--db", ":memory:", log_dir=again, port=port):
        expect(chat.page.get_by_role("heading", name="Invite needed")).to_be_visible(
            timeout=3 * TIMEOUT
        )
