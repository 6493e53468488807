"""A big room in a real Chromium: past ``--presence-max`` the page shows the
count and a first page of people, finds someone by name, loads the rest on
"Show more people", and follows the count as people leave."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import TIMEOUT, ChatPage, enter_chat
from tests.support import Client, ServerProcess, connect, run_server

pytestmark = pytest.mark.browser

DESKTOP = {"viewport": {"width": 1280, "height": 800}}
NAMES = ["zelda"] + [f"bot{n:02d}" for n in range(10)]


@pytest.fixture
def big_room_server(tmp_path: Path) -> Iterator[ServerProcess]:
    with run_server(
        "--presence-max",
        "5",
        "--presence-tick",
        "0.1",
        "--max-conn-per-ip",
        "0",
        log_dir=tmp_path,
    ) as server:
        yield server


@pytest.fixture
def crowd(big_room_server: ServerProcess) -> Iterator[list[Client]]:
    clients = [connect(big_room_server, name=name) for name in NAMES]
    yield clients
    for client in clients:
        client.close()


def test_a_big_room_is_listed_in_pages_and_searchable(
    browser_pages: Callable[..., ChatPage],
    big_room_server: ServerProcess,
    crowd: list[Client],
) -> None:
    chat = browser_pages(big_room_server.http_url, **DESKTOP)
    page = chat.page
    enter_chat(page, "alice")
    expect(page.locator("#presence-count")).to_have_text("12", timeout=TIMEOUT)
    people = page.locator("#presence .member")
    expect(people).to_have_count(5)  # a first page: --presence-max at most
    expect(page.locator("#presence .member.self")).to_have_count(1)
    search, more = page.locator("#member-search"), page.locator("#members-more")
    expect(search).to_be_visible()
    expect(more).to_be_visible()

    search.fill("ZEL")
    expect(people).to_have_count(1, timeout=TIMEOUT)
    expect(people.locator(".member-name")).to_have_text("zelda")
    search.fill("")
    expect(people).to_have_count(5, timeout=TIMEOUT)

    more.click()
    expect(people).to_have_count(12, timeout=TIMEOUT)
    expect(more).to_be_hidden()
    names = people.locator(".member-name").all_inner_texts()
    assert names == sorted([*NAMES, "alice"])

    for client in crowd[:3]:
        client.close()
    expect(page.locator("#presence-count")).to_have_text("9", timeout=TIMEOUT)
    assert chat.errors == [] and chat.dialogs == []
