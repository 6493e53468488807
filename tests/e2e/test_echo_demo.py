"""End-to-end tests of the echo demo: a real ``python test.py`` and real clients."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import websocket
from websocket import ABNF

from tests.support import MS, ROOT, ServerProcess, http_get, run_server


@pytest.fixture
def echo_server(tmp_path: Path) -> Iterator[ServerProcess]:
    with run_server(
        "--host", "127.0.0.1", script="test.py", log_dir=tmp_path
    ) as server:
        yield server


def open_ws(server: ServerProcess) -> websocket.WebSocket:
    return websocket.create_connection(
        f"ws://127.0.0.1:{server.port}/echo", timeout=5000 * MS
    )


def assert_quiet(ws: websocket.WebSocket) -> None:
    """Nothing more arrives on ``ws`` for a short while."""
    ws.settimeout(300 * MS)
    with pytest.raises(websocket.WebSocketTimeoutException):
        ws.recv()
    ws.settimeout(5000 * MS)


def test_help_lists_the_flags() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "test.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=15000 * MS,
    )
    assert result.returncode == 0, result.stderr
    assert "--host" in result.stdout and "--port" in result.stdout


def test_logs_one_start_line(echo_server: ServerProcess) -> None:
    # The port accepts connections just before the line is written: poll.
    line = f"echo demo on http://127.0.0.1:{echo_server.port}/"
    deadline = time.monotonic() + 5000 * MS
    while line not in echo_server.log() and time.monotonic() < deadline:
        time.sleep(50 * MS)
    assert echo_server.log().count(line) == 1, echo_server.log()


def test_page_is_served_with_an_external_script(echo_server: ServerProcess) -> None:
    status, headers, body = http_get(echo_server.http_url + "/")
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    page = body.decode("utf-8")
    assert "<input" in page and "<button" in page and "<ul" in page
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", page, re.S | re.I)
    assert scripts, page
    for attributes, inline_body in scripts:
        assert 'src="/echo.js"' in attributes
        assert inline_body.strip() == ""
    assert not re.search(r"\son\w+\s*=", page, re.I), "no inline event handlers"


def test_script_is_served(echo_server: ServerProcess) -> None:
    status, headers, body = http_get(echo_server.http_url + "/echo.js")
    assert status == 200
    assert headers["Content-Type"].startswith("application/javascript")
    js = body.decode("utf-8")
    assert "location.protocol === 'https:' ? 'wss:' : 'ws:'" in js
    assert "'//' + location.host + '/echo'" in js
    assert "textContent" in js
    assert "innerHTML" not in js


@pytest.mark.parametrize(
    "text",
    ["hello", "", "héllo wörld ✓ 🙂 日本語", ("x🙂é " * 20_000)[:70_000]],
    ids=["ascii", "empty", "non-ascii", "70k"],
)
def test_text_is_echoed_as_text(echo_server: ServerProcess, text: str) -> None:
    ws = open_ws(echo_server)
    try:
        ws.send(text)
        opcode, data = ws.recv_data()
        assert opcode == ABNF.OPCODE_TEXT
        assert data.decode("utf-8") == text
    finally:
        ws.close()


def test_binary_is_echoed_as_binary(echo_server: ServerProcess) -> None:
    payload = bytes(range(256)) * 300 + b"\xff\xfe\x00 not utf-8 \xc3"
    ws = open_ws(echo_server)
    try:
        ws.send_binary(payload)
        opcode, data = ws.recv_data()
        assert opcode == ABNF.OPCODE_BINARY
        assert data == payload
    finally:
        ws.close()


def test_messages_come_back_in_order(echo_server: ServerProcess) -> None:
    ws = open_ws(echo_server)
    try:
        sent = [f"message {i}" for i in range(50)]
        for message in sent:
            ws.send(message)
        assert [ws.recv() for _ in sent] == sent
        assert_quiet(ws)
    finally:
        ws.close()


def test_clients_are_independent(echo_server: ServerProcess) -> None:
    alice, bob = open_ws(echo_server), open_ws(echo_server)
    try:
        alice.send("from alice")
        bob.send("from bob")
        bob.send("bob again")
        assert alice.recv() == "from alice"
        assert bob.recv() == "from bob"
        assert bob.recv() == "bob again"
        assert_quiet(alice)
        assert_quiet(bob)
    finally:
        alice.close()
        bob.close()


def test_close_frame_is_answered_with_a_close_frame(
    echo_server: ServerProcess,
) -> None:
    ws = open_ws(echo_server)
    ws.send("before closing")
    assert ws.recv() == "before closing"
    ws.send_close(websocket.STATUS_NORMAL)
    frame = ws.recv_frame()
    assert frame.opcode == ABNF.OPCODE_CLOSE
    # Then the server ends the TCP connection too.
    with pytest.raises(websocket.WebSocketConnectionClosedException):
        ws.recv_frame()
    ws.shutdown()


def test_client_close_is_clean_and_server_keeps_serving(
    echo_server: ServerProcess,
) -> None:
    first = open_ws(echo_server)
    first.send("one")
    assert first.recv() == "one"
    first.close(timeout=5000 * MS)
    assert first.close_frame is not None  # the server answered the close frame
    assert first.close_frame.opcode == ABNF.OPCODE_CLOSE
    assert not first.connected

    second = open_ws(echo_server)
    try:
        second.send("two")
        assert second.recv() == "two"
    finally:
        second.close()


def test_unknown_path_is_404(echo_server: ServerProcess) -> None:
    status, _, body = http_get(echo_server.http_url + "/nope")
    assert status == 404
    assert b"Not Found" in body


def test_plain_http_get_of_echo_is_400(echo_server: ServerProcess) -> None:
    status, headers, body = http_get(echo_server.http_url + "/echo")
    assert status == 400
    assert headers["Content-Type"].startswith("text/plain")
    assert b"WebSocket" in body


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=str)
@pytest.mark.parametrize("with_client", [False, True], ids=["idle", "client"])
def test_signal_stops_the_server_with_exit_code_0(
    tmp_path: Path, signum: signal.Signals, with_client: bool
) -> None:
    with run_server(
        "--host", "127.0.0.1", script="test.py", log_dir=tmp_path
    ) as server:
        ws = open_ws(server) if with_client else None
        if ws is not None:
            ws.send("still here")
            assert ws.recv() == "still here"
        server.proc.send_signal(signum)
        assert server.proc.wait(timeout=5000 * MS) == 0, server.log()
        if ws is not None:
            ws.close()
    assert "Traceback" not in server.log()
