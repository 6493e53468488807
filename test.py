"""A tiny WebSocket echo demo: ``python test.py``, then open http://localhost:5000/.

``python test.py --help`` lists the flags. Stop it with Ctrl+C (or SIGTERM).
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable, Iterable  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
from gevent.event import Event  # noqa: E402
from geventwebsocket import WebSocketServer  # noqa: E402
from geventwebsocket.exceptions import WebSocketError  # noqa: E402

StartResponse = Callable[[str, list[tuple[str, str]]], Any]

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Echo demo</title>
  <script src="/echo.js" defer></script>
</head>
<body>
  <h1>Echo demo</h1>
  <form id="form">
    <input id="text" autocomplete="off" placeholder="Say something" autofocus>
    <button type="submit">Send</button>
  </form>
  <ul id="log"></ul>
</body>
</html>
"""

SCRIPT = """"use strict";
const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
const ws = new WebSocket(scheme + '//' + location.host + '/echo');
const form = document.getElementById('form');
const input = document.getElementById('text');
const list = document.getElementById('log');

function show(text) {
  const item = document.createElement('li');
  item.textContent = text;  // shown as plain text, never parsed as HTML
  list.appendChild(item);
}

ws.onopen = () => show('(connected)');
ws.onclose = () => show('(disconnected)');
ws.onmessage = (event) => show(event.data);
form.addEventListener('submit', (event) => {
  event.preventDefault();
  if (ws.readyState === WebSocket.OPEN) ws.send(input.value);
  input.value = '';
});
"""

TEXT = "text/plain; charset=utf-8"
FILES = {  # path -> (content type, body)
    "/": ("text/html; charset=utf-8", PAGE),
    "/echo.js": ("application/javascript; charset=utf-8", SCRIPT),
}


def respond(start: StartResponse, status: str, ctype: str, body: str) -> list[bytes]:
    data = body.encode("utf-8")
    start(status, [("Content-Type", ctype), ("Content-Length", str(len(data)))])
    return [data]


def echo(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    ws = environ.get("wsgi.websocket")
    if ws is None:  # a plain HTTP request, not a WebSocket upgrade
        text = "400 Bad Request: /echo speaks WebSocket, not plain HTTP.\n"
        return respond(start_response, "400 Bad Request", TEXT, text)
    try:
        while True:
            message = ws.receive()  # str for text, bytearray for binary
            if message is None:  # the peer closed (or the connection broke)
                break
            ws.send(message)  # text goes back as text, binary as binary
    except WebSocketError:  # the socket died while we were sending
        pass
    return []


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    if path == "/echo":
        return echo(environ, start_response)
    if path in FILES:
        content_type, body = FILES[path]
        return respond(start_response, "200 OK", content_type, body)
    return respond(start_response, "404 Not Found", TEXT, "404 Not Found\n")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="A tiny WebSocket echo demo.")
    parser.add_argument("--host", default="0.0.0.0", help="default: %(default)s")
    parser.add_argument("--port", type=int, default=5000, help="default: %(default)s")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    server = WebSocketServer((args.host, args.port), app)
    # The signal only sets an event: calling server.stop() straight from the
    # handler could run in the middle of server.start(), which yields.
    stopping = Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, stopping.set)
    try:
        server.start()
    except OSError as exc:
        logging.error("cannot listen on %s:%s: %s", args.host, args.port, exc)
        return 1
    logging.info("echo demo on http://%s:%d/", args.host, args.port)
    stopping.wait()  # until SIGTERM or SIGINT (Ctrl+C)
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
