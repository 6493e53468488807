"""The real chat server, reporting whether Nagle is off on each accepted socket.

``python tests/e2e/nodelay_probe.py --port N [chat.py flags]`` runs
``chatcore.server.run`` unchanged, except that the handler of every accepted
connection first prints ``accepted nodelay=<TCP_NODELAY>`` on stdout, before
it reads the request: what the socket was given when it was accepted.
"""

from gevent import monkey

monkey.patch_all()

import os  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(__file__))))

from chatcore import server  # noqa: E402
from chatcore.config import from_sources  # noqa: E402
from views import build_wsgi_app  # noqa: E402


class ReportingHandler(server.ChatServer.handler_class):  # type: ignore[misc,name-defined]
    """The server's own handler, saying how its socket arrived."""

    def __init__(self, sock: Any, address: Any, srv: Any, rfile: Any = None):
        nodelay = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        print(f"accepted nodelay={int(bool(nodelay))}", flush=True)
        super().__init__(sock, address, srv, rfile)


if __name__ == "__main__":
    server.ChatServer.handler_class = ReportingHandler
    sys.exit(server.run(from_sources(sys.argv[1:], os.environ), build_wsgi_app))
