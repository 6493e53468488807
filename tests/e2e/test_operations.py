"""Operations against the real server: metrics, readiness, logs, the bot API."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

from tests.support import (
    MS,
    connect,
    http_get,
    run_server,
    this_machines_outside_address,
    wait_for,
)

TOKEN = "test-token-123"


def metric(text: str, name: str, labels: str = "") -> float:
    """The value of one sample in Prometheus text format."""
    pattern = rf"^{re.escape(name)}{re.escape(labels)} ([0-9.e+-]+)$"
    match = re.search(pattern, text, re.M)
    assert match, f"{name}{labels} not in metrics"
    return float(match.group(1))


def post(url: str, body: object, token: str | None = TOKEN) -> tuple[int, dict]:
    data = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5000 * MS) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_metrics_move_when_messages_flow(tmp_path: Path) -> None:
    """Ensure /metrics counts connections, messages, deliveries and errors."""
    with run_server(log_dir=tmp_path) as server:
        before = http_get(server.http_url + "/metrics")[2].decode()
        assert metric(before, "chat_messages_received_total") == 0
        alice = connect(server, name="alice")
        bob = connect(server, name="bob")
        for n in range(3):
            alice.send(type="message", text=f"m{n}")
            bob.recv_until("message", lambda f, n=n: f["text"] == f"m{n}")
        alice.send(type="nonsense")
        alice.recv_until("error")
        status, headers, body = http_get(server.http_url + "/metrics")
        text = body.decode()
        assert status == 200 and headers["Content-Type"].startswith("text/plain")
        assert metric(text, "chat_connections") == 2
        assert metric(text, "chat_users") == 2
        assert metric(text, "chat_members") == 2
        assert metric(text, "chat_messages_received_total") == 3
        assert metric(text, "chat_deliveries_total") >= 6
        assert metric(text, "chat_errors_total", '{code="unknown_type"}') == 1
        assert metric(text, "chat_broadcast_seconds_count") == 3
        assert metric(text, "chat_history_write_seconds_count") >= 1
        alice.close()
        bob.close()


def test_greenlets_gauge_counts_no_greenlet_per_idle_connection(
    tmp_path: Path,
) -> None:
    """Ensure chat_greenlets is exposed on demand only, and that open idle
    connections leave it at its idle value (their reads are the event
    loop's)."""
    with run_server(log_dir=tmp_path) as server:

        def greenlets() -> float:
            return metric(
                http_get(server.http_url + "/metrics?greenlets=1")[2].decode(),
                "chat_greenlets",
            )

        # A plain scrape does not pay for the count (it walks the heap).
        assert (
            "chat_greenlets" not in http_get(server.http_url + "/metrics")[2].decode()
        )
        idle = greenlets()
        assert idle >= 2  # the event loop's hub and the main greenlet at least
        clients = [connect(server, name=f"user{n}") for n in range(5)]
        assert greenlets() <= idle + 1
        for client in clients:
            client.close()
        wait_for(lambda: greenlets() <= idle, 5000 * MS, "greenlets back to idle")


def test_health_and_readiness(tmp_path: Path) -> None:
    """Ensure /healthz and /readyz answer 200 with JSON on a working server."""
    with run_server(log_dir=tmp_path) as server:
        status, _, body = http_get(server.http_url + "/healthz")
        assert status == 200 and json.loads(body)["status"] == "ok"
        status, _, body = http_get(server.http_url + "/readyz")
        assert status == 200 and json.loads(body) == {"ready": True}


def test_readiness_fails_while_the_database_is_locked(tmp_path: Path) -> None:
    """Ensure /readyz is 503 with a reason while the history cannot be written."""
    import sqlite3

    db = tmp_path / "locked.db"
    with run_server("--db", str(db), log_dir=tmp_path) as server:
        locker = sqlite3.connect(db, isolation_level=None, timeout=0)
        locker.execute("BEGIN EXCLUSIVE")
        try:
            status, _, body = http_get(server.http_url + "/readyz")
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        assert status == 503
        assert "history store" in json.loads(body)["problem"]
        assert http_get(server.http_url + "/readyz")[0] == 200


def test_json_logs_have_one_line_per_connection_and_no_text(tmp_path: Path) -> None:
    """Ensure --log-format json logs one line per connection, on close, with
    its rooms and close code, and never message text; the open line is at
    debug level only."""
    secret = "the-secret-message-text"
    with run_server("--log-format", "json", log_dir=tmp_path) as server:
        alice = connect(server, name="alice")
        alice.send(type="message", text=secret)
        alice.recv_until("message")
        alice.close()
        deadline_log = ""
        for _ in range(100):
            deadline_log = server.log()
            if "close conn=" in deadline_log:
                break
            __import__("time").sleep(0.05)
    entries = [
        json.loads(line) for line in deadline_log.splitlines() if line.startswith("{")
    ]
    closes = [e for e in entries if e["message"].startswith("close conn=")]
    opens = [e for e in entries if e["message"].startswith("open conn=")]
    assert len(opens) == 0 and len(closes) == 1
    assert closes[0]["rooms"] == "lobby" and closes[0]["code"] == 1000
    assert secret not in deadline_log


def test_api_is_off_without_a_token(tmp_path: Path) -> None:
    """Ensure the bot API answers 404 with a reason when no --api-token is set."""
    with run_server(log_dir=tmp_path) as server:
        status, body = post(
            server.http_url + "/api/rooms/lobby/messages", {"text": "x"}
        )
        assert status == 404 and "--api-token" in body["message"]


def test_api_posts_into_a_room_like_a_member(tmp_path: Path) -> None:
    """Ensure an API post is checked, stored and broadcast like a WebSocket one."""
    with run_server(
        "--api-token", TOKEN, "--max-text", "50", log_dir=tmp_path
    ) as server:
        url = server.http_url + "/api/rooms/lobby/messages"
        bob = connect(server, name="bob")
        status, body = post(url, {"text": "deploy <done>", "name": "deploybot"})
        assert status == 201
        seen = bob.recv_until("message")
        assert seen["id"] == body["id"] and seen["text"] == "deploy <done>"
        assert seen["user"]["name"] == "deploybot"
        assert seen["user"]["id"].startswith("bot-")
        assert post(url, {"text": "x"}, token="wrong")[0] == 401
        assert post(url, {"text": "x"}, token=None)[0] == 401
        assert post(url, {"text": "x" * 51})[0] == 413
        assert post(url, {"text": "  "})[0] == 400
        assert post(url, {"text": 5})[0] == 400
        assert post(url, {"text": "hi", "name": "bob"})[0] == 409
        assert post(server.http_url + "/api/rooms/bad%20room!/messages", {"text": "x"})[
            0
        ] in (
            400,
            404,
        )
        again = post(url, {"text": "once", "client_id": "k1"})
        assert post(url, {"text": "once", "client_id": "k1"})[1]["id"] == again[1]["id"]
        request = urllib.request.Request(
            server.http_url + "/api/rooms", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        with urllib.request.urlopen(request, timeout=5000 * MS) as response:
            rooms = json.loads(response.read())["rooms"]
        assert {"room": "lobby", "members": 1, "last_id": again[1]["id"]} in rooms
        bob.send(type="history", room="lobby")
        texts = [m["text"] for m in bob.recv_until("history")["messages"]]
        assert texts == ["deploy <done>", "once"]
        bob.close()


def test_metrics_answer_this_machine_or_the_token_only(tmp_path: Path) -> None:
    """Ensure /metrics is refused to other machines and to requests that came
    through an unknown proxy, and answered with the metrics token."""
    secret = "metrics-secret-42"
    outside = this_machines_outside_address()
    host = "0.0.0.0" if outside else "127.0.0.1"
    with run_server(
        "--host", host, "--metrics-token", secret, log_dir=tmp_path
    ) as server:
        local = server.http_url + "/metrics"
        assert http_get(local)[0] == 200

        forwarded = {"X-Forwarded-For": "203.0.113.9"}
        status, _, body = http_get(local, headers=forwarded)
        assert status == 403
        assert b"--metrics-token" in body
        wrong = {**forwarded, "Authorization": "Bearer not-the-secret"}
        assert http_get(local, headers=wrong)[0] == 403
        right = {**forwarded, "Authorization": f"Bearer {secret}"}
        status, _, body = http_get(local, headers=right)
        assert status == 200 and b"chat_connections" in body

        if outside:  # a request from this machine's network address, not loopback
            remote = f"http://{outside}:{server.port}/metrics"
            assert http_get(remote)[0] == 403
            auth = {"Authorization": f"Bearer {secret}"}
            assert http_get(remote, headers=auth)[0] == 200
