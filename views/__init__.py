"""The HTML side of the chat: wheezy.web pages, static files and error pages."""

from __future__ import annotations

import html
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wheezy.http import WSGIApplication
from wheezy.http.response import HTTP_STATUS
from wheezy.template.engine import Engine
from wheezy.template.ext.core import CoreExtension
from wheezy.template.loader import FileLoader
from wheezy.web.middleware import bootstrap_defaults, path_routing_middleware_factory
from wheezy.web.templates import WheezyTemplate

from chatcore.config import Settings
from views.accounts import access_middleware_factory
from views.api import new_api_bucket
from views.pages import error_page_middleware_factory, head_middleware_factory
from views.transcripts import DownloadSlots
from views.urls import all_urls

if TYPE_CHECKING:
    from chatcore.server import ChatContext

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


# wheezy knows the status lines of RFC 2616 only: a response with another
# status (429 from the bot API and the downloads) would fail with KeyError.
for _status in (
    HTTPStatus.TOO_MANY_REQUESTS,
    HTTPStatus.GONE,
    HTTPStatus.UNPROCESSABLE_ENTITY,
    HTTPStatus.INSUFFICIENT_STORAGE,
):
    HTTP_STATUS.setdefault(_status.value, f"{_status.value} {_status.phrase}")


def escape(value: Any) -> str:
    """The ``h`` filter: every value printed in a template goes through it."""
    return html.escape("" if value is None else str(value), quote=True)


def build_wsgi_app(settings: Settings, chat: ChatContext) -> WSGIApplication:
    """The WSGI application serving every plain HTTP request.

    Args:
        settings: limits shown to the page, the API token.
        chat: the running chat: live status, history, metrics, the hub (for
            the bot API) and its dispatcher.
    """
    engine = Engine(loader=FileLoader([str(TEMPLATES)]), extensions=[CoreExtension()])
    engine.global_vars.update({"h": escape})
    options = {
        "render_template": WheezyTemplate(engine),
        "chat_settings": settings,
        "chat_context": chat,
        "chat_api_bucket": new_api_bucket(),
        "chat_downloads": DownloadSlots(),
        # Sign-in is the chat's own sessions: wheezy's auth ticket is never used.
        "ticket": None,
    }
    return WSGIApplication(
        [
            bootstrap_defaults(url_mapping=all_urls),
            head_middleware_factory,
            error_page_middleware_factory,
            access_middleware_factory,
            path_routing_middleware_factory,
        ],
        options,
    )
