"""Run the chat server: ``python chat.py`` serves the page and the WebSocket on :8000.

``python chat.py --help`` lists every setting; each is also a CHAT_* variable.
``chat:app()`` is the same chat for gunicorn's workers (chatcore/gunicorn_worker.py).
"""

from gevent import monkey

monkey.patch_all()

import os  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

from chatcore import commands, invite_command  # noqa: E402, F401
from chatcore.config import ConfigError, from_sources  # noqa: E402
from chatcore.server import run  # noqa: E402
from views import build_wsgi_app  # noqa: E402


def main(argv: list[str]) -> int:
    status = commands.run(argv, os.environ)
    if status is not None:
        return status
    try:
        settings = from_sources(argv, os.environ)
    except ConfigError as exc:
        print(f"chat.py: error: {exc}", file=sys.stderr)
        return 2
    return run(settings, build_wsgi_app)


def app() -> Any:
    """The chat of one gunicorn worker, configured from CHAT_* variables."""
    from chatcore.gunicorn_worker import build_app

    return build_app(dict(os.environ), build_wsgi_app)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
