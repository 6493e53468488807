"""Several chat processes on one real Redis: broadcast, presence, history,
recovery, and failures (Redis restarted, a process killed, Redis gone)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.redis_server import RedisProcess, needs_redis, run_redis
from tests.support import (
    MS,
    ROOT,
    Client,
    ServerProcess,
    closed_after_the_test,
    connect as open_client,
    free_port,
    http_get,
    run_server,
    stop_process,
)

pytestmark = needs_redis

HEARTBEAT = 0.5  # seconds; a killed process's users leave within 3 of them
FAST = ("--rate", "1000", "--burst", "1000", "--shutdown-timeout", "0.5")
MANY = ("--max-conn-per-ip", "0")


def connect(server: ServerProcess, **kwargs: Any) -> Client:
    """A client that is closed at the end of the test."""
    client = open_client(server, **kwargs)
    return closed_after_the_test(client)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisProcess]:
    with run_redis(tmp_path / "redis", persistent=True) as server:
        yield server


@contextlib.contextmanager
def chat_on(redis_server: RedisProcess, tmp_path: Path, *args: str):
    with run_server(
        "--redis",
        redis_server.url,
        "--redis-heartbeat",
        str(HEARTBEAT),
        *FAST,
        *MANY,
        *args,
        log_dir=tmp_path,
    ) as server:
        yield server


@pytest.fixture
def pair(
    redis_server: RedisProcess, tmp_path: Path
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two chat processes sharing ``redis_server``."""
    with (
        chat_on(redis_server, tmp_path) as one,
        chat_on(redis_server, tmp_path) as two,
    ):
        yield one, two


def messages(client: Client, count: int, timeout: float = 5000 * MS) -> list[dict]:
    """The next ``count`` message frames (other frames skipped)."""
    found = []
    deadline = time.monotonic() + timeout
    while len(found) < count:
        frame = client.recv_until("message", timeout=deadline - time.monotonic())
        found.append(frame)
    return found


def presence(client: Client, event: str, name: str, timeout: float = 5000 * MS):
    return client.recv_until(
        "presence",
        lambda f: f["event"] == event and f["user"]["name"] == name,
        timeout=timeout,
    )


def test_broadcast_both_ways_same_order_no_duplicates(pair) -> None:
    """Ensure messages sent on either process reach every client once, in the
    same id order everywhere, the senders' echoes included."""
    one, two = pair
    alice, carol = connect(one, name="alice"), connect(one, name="carol")
    bob, dave = connect(two, name="bob"), connect(two, name="dave")
    for n in range(10):
        sender = (alice, bob, carol, dave)[n % 4]
        sender.send(type="message", text=f"m{n}", client_id=f"c{n}")
    seen = {}
    for client in (alice, bob, carol, dave):
        frames = messages(client, 10)
        seen[id(client)] = [(f["id"], f["text"]) for f in frames]
        assert client.drain(300 * MS) == [] or all(
            f["type"] != "message" for f in client.drain(50 * MS)
        )
    orders = list(seen.values())
    assert all(order == orders[0] for order in orders)
    assert [i for i, _ in orders[0]] == list(range(1, 11))
    assert sorted(t for _, t in orders[0]) == sorted(f"m{n}" for n in range(10))


def test_senders_on_both_processes_keep_one_order_for_everyone(pair) -> None:
    """Ensure that with senders on both processes at once, sender first
    where possible, every client gets every message once, in the same
    increasing id order, and that some went out before their round trip
    through Redis."""
    one, two = pair
    senders = [connect(one, name="ann"), connect(one, name="bea")]
    senders += [connect(two, name="cal"), connect(two, name="dee")]
    readers = [connect(one, name="eve"), connect(two, name="fay")]
    everyone = senders + readers
    for client in everyone:
        client.drain(300 * MS)  # the joins of those after it
    per_sender = 30

    def burst(index: int) -> None:
        for n in range(per_sender):
            senders[index].send(type="message", text=f"{index}.{n}")

    with ThreadPoolExecutor(len(senders)) as pool:
        list(pool.map(burst, range(len(senders))))
    total = per_sender * len(senders)
    orders = [[f["id"] for f in messages(c, total, 20000 * MS)] for c in everyone]
    assert orders[0] == sorted(set(orders[0])) and len(orders[0]) == total
    assert all(order == orders[0] for order in orders)
    # A lone sender's message goes out first unless the subscription hands
    # it over before the store's answer does (a race the sender can lose
    # under load; then it is delivered from the channel, in order all the
    # same): some of ten in a row go first.
    for n in range(10):
        senders[0].send(type="message", text=f"alone {n}", client_id=f"last{n}")
        for client in everyone:
            assert messages(client, 1)[0]["text"] == f"alone {n}"
    _, _, text = http_get(one.http_url + "/metrics")
    first = re.search(rb"^chat_messages_sent_first_total ([0-9.e+]+)$", text, re.M)
    assert first is not None and float(first.group(1)) >= 1


def test_presence_across_processes(pair) -> None:
    """Ensure snapshots and counts include members on the other process, and
    a user with tabs on both processes is one member."""
    one, two = pair
    alice = connect(one, name="alice", key="alice-key-0123456789")
    bob = connect(two, name="bob", read_welcome=False)
    assert bob.recv()["type"] == "welcome"
    snapshot = bob.recv_until("presence", lambda f: f["event"] == "snapshot")
    # Processes learn of each other's joins a moment later: alice is in the
    # snapshot, or her join follows it.
    names = {u["name"] for u in snapshot["users"]}
    if "alice" not in names:
        presence(bob, "join", "alice")
    else:
        assert snapshot["count"] == 2
    joined = presence(alice, "join", "bob")
    assert joined["count"] == 2
    # alice's second tab, on the other process: no new member anywhere.
    alice2 = connect(two, key="alice-key-0123456789")
    assert alice2.welcome["user"]["name"] == "alice"
    carol = connect(two, name="carol")
    assert presence(alice, "join", "carol")["count"] == 3
    assert [
        f for f in bob.drain(300 * MS) if f.get("user", {}).get("name") == "alice"
    ] == []
    alice.close()  # still a member through her tab on the other process
    time.sleep(300 * MS)
    assert not any(
        f["type"] == "presence" and f["event"] == "leave" for f in bob.drain(300 * MS)
    )
    alice2.close()
    assert presence(bob, "leave", "alice")["count"] == 2
    assert presence(carol, "leave", "alice")["count"] == 2


def test_typing_and_nick_cross_processes(pair) -> None:
    """Ensure typing indicators and renames reach members on the other process."""
    one, two = pair
    alice = connect(one, name="alice")
    bob = connect(two, name="bob")
    presence(alice, "join", "bob")
    bob.send(type="typing", room="lobby", active=True)
    typing = alice.recv_until("typing")
    assert typing["user"]["name"] == "bob" and typing["active"] is True
    bob.send(type="nick", name="robert")
    nick = alice.recv_until("presence", lambda f: f["event"] == "nick")
    assert nick["user"]["name"] == "robert" and nick["previous"] == "bob"
    late = connect(one, name="late")
    snapshot_names = None
    late.send(type="join", room="lobby")
    for frame in late.drain(500 * MS):
        if frame["type"] == "presence" and frame["event"] == "snapshot":
            snapshot_names = sorted(u["name"] for u in frame["users"])
    assert snapshot_names in (None, ["alice", "late", "robert"])


def test_history_and_since_recovery_across_processes(pair) -> None:
    """Ensure history pages and join-with-since replays include messages sent
    on the other process, with the same ids."""
    one, two = pair
    alice = connect(one, name="alice")
    for n in range(5):
        alice.send(type="message", text=f"a{n}", client_id=f"a{n}")
    acks = messages(alice, 5)
    bob = connect(two, name="bob")
    bob.send(type="history", room="lobby")
    page = bob.recv_until("history")
    assert [m["id"] for m in page["messages"]] == [a["id"] for a in acks]
    bob.close()
    for n in range(3):
        alice.send(type="message", text=f"b{n}", client_id=f"b{n}")
    messages(alice, 3)
    back = connect(two, name="bob", room="elsewhere")
    back.send(type="join", room="lobby", since=acks[-1]["id"])
    replay = messages(back, 3)
    assert [m["text"] for m in replay] == ["b0", "b1", "b2"]
    # A resend of a message already stored (same client_id) on the other
    # process gets the original id, with no second broadcast.
    carol = connect(two, name="carol", key="carol-key-0123456789")
    carol.send(type="message", text="once", client_id="once")
    first = carol.recv_until("message", lambda f: f.get("client_id") == "once")
    carol.close()
    carol = connect(one, key="carol-key-0123456789")
    carol.send(type="message", text="once", client_id="once")
    again = carol.recv_until("message", lambda f: f.get("client_id") == "once")
    assert again["id"] == first["id"]
    assert [m["text"] for m in messages(alice, 1)] == ["once"]
    assert all(f["type"] != "message" for f in alice.drain(300 * MS))


@pytest.mark.parametrize("keeps_data", [True, False], ids=["aof", "emptied"])
def test_redis_restart_resumes_delivery(
    redis_server: RedisProcess, tmp_path: Path, keeps_data: bool
) -> None:
    """Ensure delivery and presence resume after Redis restarts, without
    restarting the chats: with its data (ids continue) or without (a new
    epoch: clients are told to drop what they had with ``reset``, ids stay
    above every id handed out before, and the processes write their member
    lists again)."""
    with (
        chat_on(redis_server, tmp_path, "--api-token", TOKEN) as one,
        chat_on(redis_server, tmp_path) as two,
    ):
        alice, bob = connect(one, name="alice"), connect(two, name="bob")
        epoch = alice.welcome["epoch"]
        assert bob.welcome["epoch"] == epoch
        presence(alice, "join", "bob")
        alice.send(type="message", text="before")
        assert messages(bob, 1)[0]["text"] == "before"
        port, directory = redis_server.port, redis_server.directory
        redis_server.proc.terminate()
        redis_server.proc.wait(timeout=10)
        # While Redis is down a message is refused, with the sender told.
        alice.send(type="message", text="lost", client_id="lost-1")
        error = alice.recv_until("error")
        assert error["code"] == "internal" and error["client_id"] == "lost-1"
        status, _, body = http_get(one.http_url + "/readyz")
        assert status == 503, body
        assert post_as_bot(one, "from a bot")[0] == 503
        if not keeps_data:
            for leftover in directory.glob("appendonly*"):
                shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
        with run_redis(directory, port=port, persistent=True):
            deadline = time.monotonic() + 15000 * MS
            while not _ready(one) or not _ready(two):
                assert time.monotonic() < deadline, one.log()
                time.sleep(100 * MS)
            if not keeps_data:
                for client in (alice, bob):
                    reset = client.recv_until("reset")
                    assert reset["room"] == "lobby" and reset["epoch"] != epoch
            alice.send(type="message", text="after", client_id="after-1")
            frame = alice.recv_until("message", lambda f: f["text"] == "after")
            if keeps_data:
                assert frame["id"] == 2
            else:
                assert frame["id"] > 1  # never an id handed out before
            got = bob.recv_until("message", lambda f: f["text"] == "after")
            assert got["id"] == frame["id"]
            assert all(f["type"] != "message" for f in bob.drain(300 * MS))
            # Presence came back too: a newcomer sees both.
            carol = connect(one, name="carol", read_welcome=False)
            carol.recv()
            snapshot = carol.recv_until("presence", lambda f: f["event"] == "snapshot")
            names = {u["name"] for u in snapshot["users"]}
            if "bob" not in names:  # the processes may still be re-reading
                names.add(presence(carol, "join", "bob")["user"]["name"])
            assert names == {"alice", "bob", "carol"}, snapshot
            # A client that knew the old history rejoins: told, then caught up.
            late = connect(two, name="late", room="elsewhere")
            late.send(type="join", room="lobby", since=1, epoch=epoch)
            if keeps_data:
                assert [m["text"] for m in messages(late, 1)] == ["after"]
            else:
                assert late.recv_until("reset")["epoch"] != epoch
                assert [m["text"] for m in messages(late, 1)] == ["after"]


TOKEN = "test-token-0123456789"


def post_as_bot(server: ServerProcess, text: str) -> tuple[int, bytes]:
    """POST a message with the bot API; return the status and body."""
    request = urllib.request.Request(
        server.http_url + "/api/rooms/lobby/messages",
        data=json.dumps({"text": text}).encode(),
        headers={
            "Authorization": f"Bearer {TOKEN}",
            "Content-Type": "application/json",
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5000 * MS) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_lost_subscription_recovers_from_the_streams(
    pair, redis_server: RedisProcess
) -> None:
    """Ensure messages published while a process's subscription was cut reach
    its clients afterwards from the streams: once each, in id order."""
    one, two = pair
    alice, bob = connect(one, name="alice"), connect(two, name="bob")
    presence(alice, "join", "bob")
    admin = redis.Redis.from_url(redis_server.url)
    for round_ in range(3):
        admin.client_kill_filter(_type="pubsub")  # both processes' listeners
        for n in range(20):
            alice.send(type="message", text=f"r{round_}-{n}")
        got = messages(bob, 20, timeout=10000 * MS)
        assert [m["text"] for m in got] == [f"r{round_}-{n}" for n in range(20)]
        assert [m["id"] for m in got] == list(range(got[0]["id"], got[0]["id"] + 20))
        assert [m["text"] for m in messages(alice, 20)] == [m["text"] for m in got]
    assert all(f["type"] != "message" for f in bob.drain(300 * MS))
    admin.close()
    assert "Redis subscription restored" in two.log()


def test_killed_process_users_leave_within_the_ttl(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    """Ensure the users of a process killed with SIGKILL leave presence on the
    others by themselves, within the heartbeat's time to live."""
    with chat_on(redis_server, tmp_path) as one:
        alice = connect(one, name="alice")
        with chat_on(redis_server, tmp_path) as two:
            bob = connect(two, name="bob")
            presence(alice, "join", "bob")
            two.proc.send_signal(signal.SIGKILL)
            two.proc.wait()
            started = time.monotonic()
            left = presence(alice, "leave", "bob", timeout=10 * HEARTBEAT)
            waited = time.monotonic() - started
            assert left["count"] == 1
            assert waited < 3 * HEARTBEAT + 2 * HEARTBEAT + 1.0
            bob.close()


def test_graceful_stop_drops_users_at_once(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    """Ensure a process stopped with SIGTERM takes its users out of presence."""
    with chat_on(redis_server, tmp_path) as one:
        alice = connect(one, name="alice")
        with chat_on(redis_server, tmp_path) as two:
            connect(two, name="bob")
            presence(alice, "join", "bob")
        assert presence(alice, "leave", "bob")["count"] == 1


def test_redis_down_at_start_exits_2_with_one_line(tmp_path: Path) -> None:
    """Ensure the chat refuses to start without its Redis: exit code 2, one line."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "chat.py"),
            "--port",
            str(free_port()),
            "--redis",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "cannot reach Redis at " + url in lines[0]


def test_metrics_and_readiness_report_the_link(pair) -> None:
    """Ensure /readyz and /metrics report the Redis link."""
    one, _ = pair
    status, _, body = http_get(one.http_url + "/readyz")
    assert status == 200, body
    _, _, metrics = http_get(one.http_url + "/metrics")
    assert b"chat_redis_up 1.0" in metrics


GUNICORN = [sys.executable, "-m", "gunicorn", "--no-control-socket"]
WORKER = ("-k", "chatcore.gunicorn_worker.ChatWorker", "chat:app()")


@contextlib.contextmanager
def run_gunicorn(
    workers: int, env: dict[str, str], tmp_path: Path
) -> Iterator[ServerProcess]:
    port = free_port()
    log_path = tmp_path / f"gunicorn-{port}.log"
    cmd = [*GUNICORN, "-w", str(workers), "-b", f"127.0.0.1:{port}", *WORKER]
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=full_env, stdout=log_file, stderr=subprocess.STDOUT
        )
    server = ServerProcess(proc, port, log_path)
    try:
        deadline = time.monotonic() + 15000 * MS
        while not _ready(server):
            assert proc.poll() is None, server.log()
            assert time.monotonic() < deadline, server.log()
            time.sleep(100 * MS)
        yield server
    finally:
        stop_process(proc, 15000 * MS)


def _ready(server: ServerProcess) -> bool:
    try:
        return http_get(server.http_url + "/readyz")[0] == 200
    except OSError:
        return False


def test_gunicorn_workers_on_one_port_share_rooms(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    """Ensure clients of two gunicorn workers on one port reach each other."""
    env = {
        "CHAT_REDIS_URL": redis_server.url,
        "CHAT_REDIS_HEARTBEAT": str(HEARTBEAT),
        "CHAT_RATE": "1000",
        "CHAT_BURST": "1000",
        "CHAT_SHUTDOWN_TIMEOUT": "0.5",
    }
    admin = redis.Redis.from_url(redis_server.url)
    with run_gunicorn(2, env, tmp_path) as server:
        clients: list[Client] = []
        # The kernel picks a worker for each connection: open clients until
        # both workers have some (their member lists are in Redis).
        while len(clients) < 24:
            clients.append(connect(server, name=f"user{len(clients)}"))
            time.sleep(20 * MS)
            lists = [admin.hlen(key) for key in admin.keys("chat:members:*")]
            if len(clients) >= 4 and len([n for n in lists if n]) == 2:
                break
        assert len([n for n in lists if n]) == 2, (lists, server.log())
        for n, client in enumerate(clients):
            client.send(type="message", text=f"from {n}")
        expected = sorted(f"from {n}" for n in range(len(clients)))
        orders = []
        for client in clients:
            got = messages(client, len(clients), timeout=10000 * MS)
            assert sorted(m["text"] for m in got) == expected
            orders.append([m["id"] for m in got])
        assert all(order == orders[0] for order in orders)
    admin.close()


def test_gunicorn_refuses_workers_without_redis(tmp_path: Path) -> None:
    """Ensure several workers without CHAT_REDIS_URL are refused with one line."""
    result = subprocess.run(
        [*GUNICORN, "-w", "2", "-b", f"127.0.0.1:{free_port()}", *WORKER],
        cwd=ROOT,
        env={**os.environ, "CHAT_DB": str(tmp_path / "chat.db")},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "set CHAT_REDIS_URL" in result.stderr


def test_many_clients_connecting_at_once(pair) -> None:
    """Ensure a burst of connections, each touching Redis, waits for pooled
    connections instead of failing (more clients than the pool holds)."""
    one, _ = pair
    with ThreadPoolExecutor(max_workers=150) as pool:
        clients = list(pool.map(lambda n: connect(one, name=f"many{n}"), range(150)))
    assert all(c.welcome["user"]["name"].startswith("many") for c in clients)
    clients[0].send(type="message", text="all here")
    assert messages(clients[-1], 1, timeout=10000 * MS)[0]["text"] == "all here"
