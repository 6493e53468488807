"""A stand-in authentication service for the proxy-mode deployment test.

Answers nginx's ``auth_request`` the way Authelia's check endpoint does: 200
with ``Remote-User: <login>`` for a known ``Authorization: Basic`` pair, 401
for anything else. ``python auth_backend.py PORT``.
"""

from __future__ import annotations

import base64
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PEOPLE = {"ann": "ann-password", "ben": "ben-password"}


class Check(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        login = signed_in(self.headers.get("Authorization", ""))
        self.send_response(200 if login else 401)
        if login:
            self.send_header("Remote-User", login)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def signed_in(authorization: str) -> str | None:
    scheme, _, encoded = authorization.partition(" ")
    if scheme != "Basic":
        return None
    try:
        login, _, password = base64.b64decode(encoded).decode().partition(":")
    except ValueError:
        return None
    return login if PEOPLE.get(login) == password else None


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Check).serve_forever()
