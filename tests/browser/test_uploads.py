"""Files and images in a real Chromium: an image attached with the button
shows as a thumbnail in another browser; an HTML file disguised as a PNG is
a download there, and navigating to it never runs its script."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Download, Error, expect

from tests.browser.conftest import TIMEOUT, ChatPage, enter_chat, wait_until
from tests.support import ServerProcess, run_server

pytestmark = pytest.mark.browser

DESKTOP = {"viewport": {"width": 1280, "height": 800}}
# If this ever ran, the browser would ask for /healthz?script-ran.
EVIL = (
    b"<!doctype html><html><body><p>evil</p>"
    b"<script>fetch('/healthz?script-ran');new Image().src='/healthz?script-ran'"
    b"</script></body></html>"
)


def test_image_and_disguised_html(
    open_chat: Callable[..., ChatPage], chat_server: ServerProcess, tmp_path: Path
) -> None:
    alice, bob = open_chat(**DESKTOP), open_chat(**DESKTOP)
    enter_chat(alice.page, "alice")
    enter_chat(bob.page, "bob")
    a, b = alice.page, bob.page
    expect(a.locator("#attach-button")).to_be_visible(timeout=TIMEOUT)

    photo = tmp_path / "sunset.jpg"
    Image.new("RGB", (1600, 900), (250, 120, 30)).save(photo, "JPEG")
    a.set_input_files("#file-input", str(photo))
    thumb = b.locator("#messages .message .attachment-thumb").last
    expect(thumb).to_have_attribute("alt", "sunset.jpg", timeout=TIMEOUT)
    expect(thumb).to_have_attribute("width", "400")
    wait_until(
        b,
        "() => { const img = [...document.querySelectorAll('.attachment-thumb')].pop();"
        " return img && img.complete && img.naturalWidth === 400; }",
    )
    link = b.locator("#messages .message .attachment-image").last
    href = link.get_attribute("href")
    assert href is not None and href.endswith("/sunset.jpg")
    expect(
        a.locator("#messages .message:not(.pending) .attachment-thumb")
    ).to_have_count(1, timeout=TIMEOUT)

    # A page in disguise: named .png, sent by dropping nothing but bytes.
    evil = tmp_path / "cute-cat.png"
    evil.write_bytes(EVIL)
    a.set_input_files("#file-input", str(evil))
    chip = b.locator("#messages .message .file-chip").last
    expect(chip.locator(".file-name")).to_have_text("cute-cat.png", timeout=TIMEOUT)
    expect(chip).to_have_attribute("download", "cute-cat.png")
    assert b.locator("#messages .message .attachment-thumb").count() == 1
    url = chip.get_attribute("href")
    assert url is not None

    requests: list[str] = []
    b.context.on("request", lambda request: requests.append(request.url))
    tab = b.context.new_page()
    downloads: list[Download] = []
    tab.on("download", lambda download: downloads.append(download))
    try:
        tab.goto(chat_server.http_url + url)
    except Error as exc:  # Chromium reports a download as an aborted navigation
        assert "Download is starting" in str(exc) or "ERR_ABORTED" in str(exc)
    wait_until(b, "() => true")  # a turn for the page's events
    tab.wait_for_timeout(500)  # whatever was rendered had time to run
    assert not any("script-ran" in seen for seen in requests), requests
    assert len(downloads) == 1, "served as a page, not as a download"
    assert downloads[0].suggested_filename == "cute-cat.png"
    downloads[0].save_as(tmp_path / "saved")
    assert (tmp_path / "saved").read_bytes() == EVIL
    tab.close()
    assert not alice.errors and not bob.errors, (alice.errors, bob.errors)


def test_too_big_says_so_before_sending(
    browser_pages: Callable[..., ChatPage],
    server_with_small_limit: ServerProcess,
    tmp_path: Path,
) -> None:
    chat = browser_pages(server_with_small_limit.http_url, **DESKTOP)
    enter_chat(chat.page, "alice")
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 5000)
    chat.page.set_input_files("#file-input", str(big))
    expect(chat.page.locator("#notices")).to_contain_text(
        "“big.bin” is 5 KB; the limit is 4 KB.", timeout=TIMEOUT
    )
    assert chat.page.locator("#messages .attachment").count() == 0


@pytest.fixture
def server_with_small_limit(tmp_path: Path) -> Iterator[ServerProcess]:
    with run_server("--max-upload", "4K", log_dir=tmp_path) as server:
        yield server


# A file made in the page: a 2×2 PNG, then given to a paste or a drop.
MAKE_FILE = """async ([name]) => {
  const canvas = document.createElement('canvas');
  canvas.width = 2; canvas.height = 2;
  const blob = await new Promise((done) => canvas.toBlob(done, 'image/png'));
  const transfer = new DataTransfer();
  transfer.items.add(new File([blob], name, { type: 'image/png' }));
  return transfer;
}"""


def test_paste_and_drop_upload(
    open_chat: Callable[..., ChatPage], chat_server: ServerProcess
) -> None:
    chat = open_chat(**DESKTOP)
    enter_chat(chat.page, "alice")
    page = chat.page
    expect(page.locator("#attach-button")).to_be_visible(timeout=TIMEOUT)
    pasted = page.evaluate_handle(MAKE_FILE, ["pasted.png"])
    page.evaluate(
        "(transfer) => document.querySelector('#message-input').dispatchEvent("
        "new ClipboardEvent('paste', {clipboardData: transfer, bubbles: true}))",
        pasted,
    )
    thumbs = page.locator("#messages .message:not(.pending) .attachment-thumb")
    expect(thumbs).to_have_count(1, timeout=TIMEOUT)
    expect(thumbs.first).to_have_attribute("alt", "pasted.png")
    dropped = page.evaluate_handle(MAKE_FILE, ["dropped.png"])
    page.evaluate(
        "(transfer) => { const target = document.querySelector('.conversation');"
        " for (const type of ['dragover', 'drop']) target.dispatchEvent("
        "new DragEvent(type,"
        " {dataTransfer: transfer, bubbles: true, cancelable: true})); }",
        dropped,
    )
    expect(thumbs).to_have_count(2, timeout=TIMEOUT)
    expect(thumbs.last).to_have_attribute("alt", "dropped.png")
    expect(page.locator(".conversation")).not_to_have_class("conversation drop-target")
    assert not chat.errors, chat.errors
