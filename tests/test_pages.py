"""The wheezy pages in-process, through wheezy's WSGI test client: no sockets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from wheezy.http.functional import WSGIClient

import views
from chatcore import __version__, identity, protocol
from chatcore.config import Settings
from chatcore.server import build_server
from tests.support import PAGE_PATHS

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = "<script>\"'&"
LAYOUT = (ROOT / "templates" / "layout.html").read_text(encoding="utf-8")


class Page:
    """One response: status, headers (first value of each) and body text."""

    def __init__(self, client: WSGIClient, status: int):
        self.status = status
        self.headers = {
            name: values[0] for name, values in client.headers.items() if values
        }
        self.body = client.content

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")


class Pages:
    """The chat's page app, built as the server builds it, with a helper per request."""

    def __init__(self, settings: Settings | None = None):
        server = build_server(
            settings or Settings(db=":memory:"), views.build_wsgi_app, ("127.0.0.1", 0)
        )
        self.chat = server.chat
        self.client = WSGIClient(server.pages)

    def get(self, path: str, **headers: str) -> Page:
        environ = {"HTTP_" + k.upper(): v for k, v in headers.items()} or None
        return Page(self.client, self.client.get(path, environ=environ))

    def request(self, method: str, path: str) -> Page:
        return Page(self.client, self.client.go(path, method=method))


@pytest.fixture
def pages() -> Pages:
    return Pages()


def test_chat_page(pages: Pages) -> None:
    """Ensure / is the chat page: jQuery as a classic script, then the client."""
    page = pages.get("/")
    assert page.status == 200
    assert page.content_type.startswith("text/html")
    assert '<script src="/vendor/jquery/jquery.min.js"></script>' in page.body
    assert '<script type="module" src="/static/js/main.js"></script>' in page.body
    assert page.body.index("jquery.min.js") < page.body.index("js/main.js")
    assert 'href="/static/chat.css"' in page.body
    assert 'data-ws-path="/ws"' in page.body
    assert f'data-version="{__version__}"' in page.body


def test_chat_page_shows_settings() -> None:
    """Ensure the page is given the configured max_text."""
    page = Pages(Settings(db=":memory:", max_text=1234)).get("/")
    assert 'data-max-text="1234"' in page.body


def test_chat_page_carries_the_server_limits(pages: Pages) -> None:
    """Ensure the client's limits are the server's own, not copies."""
    body = pages.get("/").body
    assert f'data-name-max="{identity.NAME_MAX}"' in body
    assert f'data-room-max="{identity.ROOM_MAX}"' in body
    assert f'data-history-initial="{protocol.HISTORY_PAGE_DEFAULT}"' in body
    assert f'data-history-max="{protocol.HISTORY_PAGE_MAX}"' in body
    assert f"1–{identity.NAME_MAX} letters or digits" in body


@pytest.mark.parametrize(
    "module", sorted(p.name for p in (ROOT / "static" / "js").glob("*.js"))
)
def test_client_modules_are_javascript(pages: Pages, module: str) -> None:
    """Ensure every client module is served as JavaScript (module scripts need it)."""
    page = pages.get(f"/static/js/{module}")
    assert page.status == 200
    mime, _, charset = page.content_type.partition("; ")
    assert mime in ("text/javascript", "application/javascript")
    assert charset == "charset=UTF-8"


def test_escape_filter_escapes_all_five() -> None:
    """Ensure the template filter escapes < > & " and '."""
    escaped = views.escape(HOSTILE)
    for raw in "<>\"'":
        assert raw not in escaped
    assert escaped == "&lt;script&gt;&quot;&#x27;&amp;"
    assert views.escape(None) == ""
    assert views.escape(42) == "42"


@pytest.mark.parametrize(
    "template", ["chat.html", "error.html", "access.html", "invite.html", "signin.html"]
)
def test_templates_escape_every_value(template: str) -> None:
    """Ensure the real templates print hostile values escaped, never raw."""
    render = Pages().client.application.options["render_template"]
    values = {
        "title": HOSTILE,
        "ws_path": HOSTILE,
        "max_text": HOSTILE,
        "name_max": HOSTILE,
        "room_max": HOSTILE,
        "history_initial": HOSTILE,
        "history_max": HOSTILE,
        "version": HOSTILE,
        "status": HOSTILE,
        "message": HOSTILE,
        "hint": HOSTILE,
        "action": HOSTILE,
        "name": HOSTILE,
        "error": HOSTILE,
        "account": True,
        "account_panel": True,
    }
    html = render(template, {"path_for": lambda name, **args: HOSTILE, **values})
    assert HOSTILE not in html
    assert "<script>" not in html
    assert views.escape(HOSTILE) in html


def test_healthz(pages: Pages) -> None:
    """Ensure /healthz is JSON with status ok, the version and the live figures."""
    pages.chat.hub.connect(object(), name="alice")
    pages.chat.hub.connect(object(), name="bob")
    page = pages.get("/healthz")
    assert page.status == 200
    assert page.content_type.startswith("application/json")
    body = json.loads(page.body)
    assert body["status"] == "ok"
    assert body["version"] == __version__
    assert body["connections"] == 2 and body["users"] == 2


def test_static_file_with_etag_revalidation(pages: Pages) -> None:
    """Ensure a static file has an ETag and a matching If-None-Match gets 304."""
    page = pages.get("/static/js/main.js")
    assert page.status == 200
    assert "javascript" in page.content_type
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.body == (ROOT / "static" / "js" / "main.js").read_text(encoding="utf-8")
    etag = page.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')

    again = pages.get("/static/js/main.js", if_none_match=etag)
    assert again.status == 304
    assert again.body == ""
    assert again.headers["ETag"] == etag

    stale = pages.get("/static/js/main.js", if_none_match='"something-else"')
    assert stale.status == 200


def test_static_css(pages: Pages) -> None:
    """Ensure CSS is served as text/css."""
    page = pages.get("/static/chat.css")
    assert page.status == 200
    assert page.content_type.startswith("text/css")


@pytest.mark.parametrize(
    "path",
    [
        "/static/../templates/layout.html",
        "/static/%2e%2e/templates/layout.html",
        "/static/..%2ftemplates/layout.html",
        "/static/../../etc/passwd",
        "/static//etc/passwd",
        "/vendor/jquery/../../../../../../etc/passwd",
        "/static/",
    ],
)
def test_static_never_escapes_its_directory(pages: Pages, path: str) -> None:
    """Ensure paths leaving the static directory get 403 or 404, never the file."""
    page = pages.get(path)
    assert page.status in {403, 404}
    assert "@require" not in page.body
    assert "root:" not in page.body
    assert page.body != LAYOUT


def test_missing_static_file_is_404_page(pages: Pages) -> None:
    """Ensure a missing static file gets a readable 404 page."""
    page = pages.get("/static/nope.css")
    assert page.status == 404
    assert page.content_type.startswith("text/html")
    assert "Page not found" in page.body
    assert "404" in page.body


def test_unknown_page_is_404_page(pages: Pages) -> None:
    """Ensure an unknown address gets the HTML 404 page with a way back."""
    page = pages.get("/no/such/page")
    assert page.status == 404
    assert page.content_type.startswith("text/html")
    assert "<title>Page not found</title>" in page.body
    assert 'href="/"' in page.body


def test_plain_get_of_ws_is_400_with_explanation(pages: Pages) -> None:
    """Ensure GET /ws without an upgrade is 400 and says what /ws is for."""
    page = pages.get("/ws")
    assert page.status == 400
    assert "WebSocket" in page.body


def test_jquery_served_as_javascript(pages: Pages) -> None:
    """Ensure the vendored jQuery is served with a JavaScript content type."""
    page = pages.get("/vendor/jquery/jquery.min.js")
    assert page.status == 200
    assert "javascript" in page.content_type
    assert "jQuery" in page.body[:500]
    assert "ETag" in page.headers


def test_error_pages_escape_nothing_from_the_request(pages: Pages) -> None:
    """Ensure the 404 page does not echo the requested path unescaped."""
    page = pages.get("/<script>alert(1)</script>")
    assert page.status == 404
    assert "<script>alert(1)</script>" not in page.body


def _with_a_message(pages: Pages) -> Pages:
    from chatcore.history import Draft

    pages.chat.history.append(
        Draft("lobby", "u1", "alice", "#c0392b", "hi", 1_700_000_000_000, None)
    )
    return pages


@pytest.mark.parametrize("path", PAGE_PATHS)
def test_head_answers_wherever_get_does(pages: Pages, path: str) -> None:
    """Ensure HEAD gets GET's status and Content-Length, and no body."""
    _with_a_message(pages)
    get = pages.request("GET", path)
    head = pages.request("HEAD", path)
    assert head.status == get.status != 405
    assert head.body == ""
    assert head.headers.get("Content-Length") == (
        get.headers.get("Content-Length") or str(len(get.body.encode()))
    )


def test_download_slots_are_capped_per_address_and_given_back_once() -> None:
    """Ensure an address gets at most the cap, and a release counts once."""
    from views.transcripts import DownloadSlots

    slots = DownloadSlots(per_client=2)
    first, second = slots.take("10.0.0.1"), slots.take("10.0.0.1")
    assert first and second
    assert slots.take("10.0.0.1") is None
    assert slots.take("10.0.0.2") is not None
    first()
    first()
    assert slots.take("10.0.0.1") is not None
    assert slots.take("10.0.0.1") is None


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("\x1b[2J", "\\x1b[2J"),
        ("a\rb", "a\nb"),
        ("a\r\nb", "a\nb"),
        ("a\u2028b\u2029c\x85d", "a\nb\nc\nd"),
        ("\x9b\x7f\x00", "\\x9b\\x7f\\x00"),
        ("\u202eevil\u202c", "\\u202eevil\\u202c"),
        ("tab\tand émoji 👋", "tab\tand émoji 👋"),
    ],
)
def test_terminal_safe(text: str, shown: str) -> None:
    """Ensure controls become visible escapes and every line break a newline."""
    from views.transcripts import terminal_safe

    assert terminal_safe(text) == shown
