"""The HTTP side against the real server: bounded downloads, HEAD, strict
numbers, terminal-safe exports, one process per database, readiness, start-up."""

from __future__ import annotations

import contextlib
import json
import re
import resource
import shutil
import socket
import subprocess
import sys
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatcore.history import Draft
from chatcore.history.sqlite import SqliteHistory
from chatcore.protocol import INT_MAX
from tests.support import (
    MS,
    PAGE_PATHS,
    ROOT,
    ServerProcess,
    connect,
    free_port,
    healthz,
    http_get,
    poll_until,
    run_server,
)

TOKEN = "strict-token"
TS = 1_700_000_000_000


def seed(db: Path, room: str, texts: list[str], names: list[str] | None = None) -> None:
    """Store ``texts`` in ``room`` of the SQLite file ``db``, before a server runs."""
    store = SqliteHistory(str(db), max(len(texts), 1))
    for n, text in enumerate(texts):
        name = names[n] if names else "alice"
        store.append(Draft(room, "u1", name, "#c0392b", text, TS + n, None))
    store.close()


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1))


def read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    """Read up to the end of a response's headers; return them and what followed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed after {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers


def read_body(sock: socket.socket, headers: dict[str, str], rest: bytes) -> bytes:
    """The body after ``rest``, by Content-Length or chunked encoding."""
    if "content-length" in headers:
        length = int(headers["content-length"])
        while len(rest) < length:
            rest += sock.recv(65536)
        assert len(rest) == length, "more bytes than Content-Length"
        return rest
    assert headers.get("transfer-encoding") == "chunked"
    body = b""
    while True:
        while b"\r\n" not in rest:
            rest += sock.recv(65536)
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        while len(rest) < size + 2:
            rest += sock.recv(65536)
        body, rest = body + rest[:size], rest[size + 2 :]
        if size == 0:
            assert rest == b"", "bytes after the last chunk"
            return body


def request(method: str, path: str, *headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *headers, "", ""]
    return "\r\n".join(lines).encode()


@contextlib.contextmanager
def raw_connection(server: ServerProcess, rcvbuf: int = 0) -> Iterator[socket.socket]:
    sock = socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(10000 * MS)
    sock.connect(("127.0.0.1", server.port))
    try:
        yield sock
    finally:
        sock.close()


def test_head_answers_as_get_without_a_body_on_a_keep_alive_connection(
    tmp_path: Path,
) -> None:
    """Ensure HEAD gets GET's status and headers (Content-Length included) and
    no body, and the connection goes on with the next request cleanly."""
    db = tmp_path / "chat.db"
    seed(db, "lobby", [f"message {n}" for n in range(5)])
    with (
        run_server("--db", str(db), "--api-token", TOKEN, log_dir=tmp_path) as server,
        raw_connection(server) as sock,
    ):
        auth = f"Authorization: Bearer {TOKEN}"
        for path in PAGE_PATHS:
            sock.sendall(request("GET", path, auth))
            head, rest = read_head(sock)
            get_status, get_headers = parse_head(head)
            get_body = read_body(sock, get_headers, rest)
            # HEAD, then a GET on the same connection: whatever follows the
            # HEAD's headers must be the next response, not body bytes.
            sock.sendall(request("HEAD", path, auth) + request("GET", "/healthz"))
            head, rest = read_head(sock)
            status, headers = parse_head(head)
            assert status == get_status, path
            assert status != 405, path
            assert rest == b"" or rest.startswith(b"HTTP/1.1 200 "), (path, rest[:80])
            expected = {k: v for k, v in get_headers.items() if k != "date"}
            if "transfer-encoding" in expected:  # a streamed body is counted
                del expected["transfer-encoding"]
                expected["content-length"] = str(len(get_body))
            if path == "/metrics":  # its figures move between two requests
                del expected["content-length"], headers["content-length"]
            del headers["date"]
            assert headers == expected, path
            while b"\r\n\r\n" not in rest:
                rest += sock.recv(65536)
            head, _, rest = rest.partition(b"\r\n\r\n")
            status, headers = parse_head(head)
            assert status == 200
            assert json.loads(read_body(sock, headers, rest))["status"] == "ok"


BIG_ROOM = 10000


def test_downloads_are_streamed_and_capped_per_address(tmp_path: Path) -> None:
    """Ensure many downloads that never read cost little memory: all but a few
    per address get 429 with a reason, /healthz answers meanwhile, and a slot
    comes back when its client goes away mid-download."""
    from views.transcripts import DOWNLOADS_PER_CLIENT

    db = tmp_path / "chat.db"
    seed(db, "big", [f"{n:05d} " + "x" * 1500 for n in range(BIG_ROOM)])
    with run_server("--db", str(db), log_dir=tmp_path) as server:
        healthz(server)
        before = rss_kib(server.proc.pid)
        with contextlib.ExitStack() as stack:
            statuses = []
            for _ in range(12):
                sock = stack.enter_context(raw_connection(server, rcvbuf=4096))
                sock.sendall(request("GET", "/rooms/big/transcript.txt"))
                head, rest = read_head(sock)
                status, headers = parse_head(head)
                if status == 429:
                    reason = read_body(sock, headers, rest)
                    assert b"transcript downloads at once" in reason
                statuses.append(status)
            assert statuses.count(200) == DOWNLOADS_PER_CLIENT, statuses
            assert statuses.count(429) == 12 - DOWNLOADS_PER_CLIENT
            assert healthz(server)["status"] == "ok"
            grown_mib = (rss_kib(server.proc.pid) - before) / 1024
            # Built whole, each download is 15 MB of text (and again as bytes).
            assert grown_mib < 40, f"RSS grew {grown_mib:.0f} MiB"
        # Every stalled client is gone mid-download: the slots come back.
        status, headers, body = http_get(server.http_url + "/rooms/big/transcript.txt")
        assert status == 200
        lines = body.decode().splitlines()
        assert len(lines) == BIG_ROOM
        assert lines[-1].split("> ")[1].startswith(f"{BIG_ROOM - 1:05d} ")
        assert "Content-Length" not in headers


CONTROLS = {
    "escape": "red \x1b[31malert\x1b[0m \x1b]0;title\x07 \x1bc",
    "bare cr": "hello\r[2023-11-14 22:13:20 UTC] #99 <admin> forged by CR",
    "crlf": "line one\r\nline two",
    "line separator": "a\u2028[2023-11-14 22:13:20 UTC] #98 <admin> forged by LS",
    "paragraph separator": "a\u2029[2023-11-14 22:13:20 UTC] #97 <admin> by PS",
    "next line": "a\x85[2023-11-14 22:13:20 UTC] #96 <admin> forged by NEL",
    "c1 csi": "a\x9b2J b",
    "vt ff": "a\x0b[x] b\x0c[y] c",
    "nul del": "a\x00b\x7fc",
    "bidi": "user \u202egnp.exe\u202c \u2066x\u2069",
    "newline": "first\n[2023-11-14 22:13:20 UTC] #95 <admin> indented, not forged",
}


def test_plain_text_transcript_is_safe_for_terminals(tmp_path: Path) -> None:
    """Ensure no control, odd line break or bidi control reaches transcript.txt
    raw (no forged entry lines, no ESC), and .jsonl keeps every text exactly."""
    db = tmp_path / "chat.db"
    texts = list(CONTROLS.values())
    names = ["alice"] * len(texts)
    names[0] = "mal\x1b[2Jlory\u202e"
    seed(db, "lobby", texts, names)
    with run_server("--db", str(db), log_dir=tmp_path) as server:
        status, _, body = http_get(server.http_url + "/rooms/lobby/transcript.txt")
        assert status == 200
        text = body.decode("utf-8")
        lines = text.split("\n")
        assert lines[-1] == ""
        entries = [line for line in lines if line.startswith("[")]
        assert len(entries) == len(texts), entries
        assert all(re.match(r"\[[-0-9: ]+ UTC\] #\d+ <", line) for line in entries)
        for line in lines:
            assert line == "" or line.startswith(("[", "    ")), line
            for char in line:
                assert char == "\t" or unicodedata.category(char) not in ("Cc",), line
                assert char not in "\u2028\u2029\u202e\u202c\u2066\u2069", line
        assert b"\x1b" not in body
        assert "\\x1b[31malert" in text
        status, _, body = http_get(server.http_url + "/rooms/lobby/transcript.jsonl")
        stored = [json.loads(line) for line in body.decode().split("\n")[:-1]]
        assert [m["text"] for m in stored] == texts
        assert stored[0]["user"]["name"] == names[0]


def test_out_of_range_numbers_are_refused_with_a_reason(tmp_path: Path) -> None:
    """Ensure a page number beyond 2**53-1 is a 400 with a message and
    since/before/limit/ping payloads beyond it are bad_request, no traceback."""
    db = tmp_path / "chat.db"
    seed(db, "lobby", ["hello"])
    with run_server("--db", str(db), log_dir=tmp_path) as server:
        for query in ("before=" + "9" * 23, f"after={INT_MAX + 1}", "before=abc"):
            status, _, body = http_get(server.http_url + "/rooms/lobby?" + query)
            assert status == 400, query
            assert b"must be a whole number from 0 to" in body
        assert http_get(server.http_url + f"/rooms/lobby?before={INT_MAX}")[0] == 200
        alice = connect(server, name="alice")
        frames = [
            {"type": "join", "room": "lobby", "since": 10**30},
            {"type": "history", "room": "lobby", "before": 10**30},
            {"type": "history", "room": "lobby", "limit": 2**53},
            {"type": "ping", "t": 10**30},
        ]
        for frame in frames:
            alice.send(**frame)
            error = alice.recv_until("error")
            assert error["code"] == "bad_request", (frame, error)
            assert str(INT_MAX) in error["message"]
        alice.send(type="ping", t=[INT_MAX])
        assert alice.recv_until("pong")["t"] == [INT_MAX]
        alice.close()
        assert "Traceback" not in server.log()


def start_chat(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "chat.py"), "--host", "127.0.0.1", *args],
        capture_output=True,
        text=True,
        timeout=30000 * MS,
        check=False,
    )


def test_a_second_process_on_the_same_database_is_refused(tmp_path: Path) -> None:
    """Ensure a second server on the running one's SQLite file exits non-zero
    with one clear line, and an operator's sqlite3 .backup still works."""
    db = tmp_path / "chat.db"
    seed(db, "lobby", ["kept"])
    with run_server("--db", str(db), log_dir=tmp_path) as server:
        second = subprocess.Popen(
            [sys.executable, str(ROOT / "chat.py"), "--db", str(db)]
            + ["--host", "127.0.0.1", "--port", str(free_port())],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            _, stderr = second.communicate(timeout=15000 * MS)
        except subprocess.TimeoutExpired:
            second.kill()
            second.communicate()
            pytest.fail("a second server is running on the same database file")
        assert second.returncode != 0
        errors = stderr.strip().splitlines()
        assert len(errors) == 1, stderr
        assert "in use by another chat process" in errors[0]
        if shutil.which("sqlite3"):
            copy = tmp_path / "copy.db"
            backup = subprocess.run(
                ["sqlite3", str(db), f".backup {copy}"],
                capture_output=True,
                text=True,
                timeout=10000 * MS,
                check=False,
            )
            assert backup.returncode == 0, backup.stderr
            dump = subprocess.run(
                ["sqlite3", str(copy), "SELECT text FROM messages"],
                capture_output=True,
                text=True,
                check=True,
            )
            assert dump.stdout.strip() == "kept"
        assert healthz(server)["status"] == "ok"
    # Once the first is gone, the file is free again.
    with run_server("--db", str(db), log_dir=tmp_path) as server:
        assert healthz(server)["status"] == "ok"


def test_readiness_fails_while_no_write_fits_and_the_server_survives(
    tmp_path: Path,
) -> None:
    """Ensure /readyz is 503 while writes fail for lack of space (a file-size
    limit of 0 on the running server) and 200 again once space is back."""
    with run_server(log_dir=tmp_path) as server:
        assert http_get(server.http_url + "/readyz")[0] == 200
        pid = server.proc.pid
        limits = resource.prlimit(pid, resource.RLIMIT_FSIZE)
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (0, limits[1]))
        try:
            status, _, body = http_get(server.http_url + "/readyz")
            assert status == 503, body
            assert "history store" in json.loads(body)["problem"]
            assert healthz(server)["status"] == "ok"
        finally:
            resource.prlimit(pid, resource.RLIMIT_FSIZE, limits)
        assert server.proc.poll() is None, "the server died of SIGXFSZ"
        assert poll_until(
            lambda: http_get(server.http_url + "/readyz")[0] == 200, 5000 * MS
        )


def test_a_busy_port_leaves_no_database_behind(tmp_path: Path) -> None:
    """Ensure a port that cannot be bound exits 1 saying so, before any
    database file is created."""
    db = tmp_path / "chat.db"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = start_chat("--port", str(busy.getsockname()[1]), "--db", str(db))
    assert result.returncode == 1
    assert "cannot listen on 127.0.0.1" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_port_that_is_not_a_number_says_so(tmp_path: Path) -> None:
    """Ensure --port abc exits 2 with 'must be a number'."""
    result = start_chat("--port", "abc", "--db", str(tmp_path / "chat.db"))
    assert result.returncode == 2
    assert "--port / CHAT_PORT has value 'abc'" in result.stderr
    assert "must be a number" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_unknown_rooms_leave_nothing_behind(tmp_path: Path) -> None:
    """Ensure asking about many rooms that do not exist (history over the
    WebSocket, transcript pages) does not grow the server."""
    db = tmp_path / "chat.db"
    seed(db, "lobby", ["hello"])
    fast = ("--rate", "100000", "--burst", "100000")
    with run_server("--db", str(db), *fast, log_dir=tmp_path) as server:
        alice = connect(server, name="alice")
        # 4-byte letters: 32 of them make the largest room name there is.
        pad = "\U0001d400" * 26

        def ask(start: int, count: int, batch: int = 500) -> None:
            for first in range(start, start + count, batch):
                for n in range(first, first + batch):
                    alice.send(type="history", room=f"{pad}{n:06d}")
                for _ in range(batch):
                    assert alice.recv_until("error")["code"] == "no_such_room"

        ask(0, 2000)
        before = rss_kib(server.proc.pid)
        ask(2000, 30000)
        grown_kib = rss_kib(server.proc.pid) - before
        # Cached, 30000 such names take about 7 MiB.
        assert grown_kib < 2048, f"RSS grew {grown_kib} KiB for 30000 unknown rooms"
        for n in range(3):
            assert http_get(server.http_url + f"/rooms/nobody{n}")[0] == 404
        alice.close()
