"""A soak of our server: ~1,000 clients for 10 minutes, and nothing may grow.

    python3 bench/soak.py                          # 10 minutes, 1,000 clients
    python3 bench/soak.py --minutes 2 --clients 300
    python3 bench/soak.py --minutes 3 --only chat,flood --name soak-flood

Starts ``chat.py`` the way bench/run.py does (a fresh server pinned to CPU 0,
here with SQLite history in a temporary directory and the normal per-client
limits) and drives every client from this one process, pinned to CPU 1, with
gevent. Chatters send messages across 20 rooms at a modest steady rate, type,
join and leave rooms, ask for history, ping, and now and then reconnect (some
as a brand-new user). A few abusive clients come back again and again:
flooders (closed with 1008), oversized frames (1009), garbage frames (error
frames, the connection stays), slow readers that stop reading (dropped once
their queue overflows), connections that vanish with a reset and no close
frame, and silent ones that stop reading and answering pings (dropped by the
server's liveness check). ``--only`` keeps some behaviours, to find which one
makes something grow.

Every 10 s it samples the server's RSS (/proc/PID/status), open files
(/proc/PID/fd), live greenlets (``chat_greenlets`` in /metrics?greenlets=1) and
connections (/healthz). At the end it prints a table (the idle server, the
first minute as baseline, every later minute, and the server once every client
is gone) with PASS or FAIL against: RSS, open files and greenlets flat within
10% of the baseline while loaded (greenlets, which are only work in progress,
beyond a slack of 50), and open files and greenlets back to their
idle values once the clients have left. Samples and verdict go to
bench/results/<name>.json and a markdown table to bench/results/<name>.md.
Exit status: 0 on PASS, 1 on FAIL.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import struct
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import run
from fanout import upgrade
from loadgen import masked_frame

try:
    import gevent
    from gevent import socket as gsocket
    from gevent.event import AsyncResult, Event
    from gevent.lock import Semaphore
except ImportError:  # a Python without the chat's dependencies: use the project's
    _PROJECT_PYTHON = run.ROOT / ".venv" / "bin" / "python"
    if not _PROJECT_PYTHON.exists():
        sys.exit("soak.py: needs gevent: run ./scripts/run once to create .venv")
    os.execv(_PROJECT_PYTHON, [str(_PROJECT_PYTHON), __file__, *sys.argv[1:]])

ROOMS = [f"room{n:02d}" for n in range(20)]
CHATTER_BEHAVIOURS = ("chat", "typing", "rooms", "history", "reconnect")
ABUSES = ("flood", "oversize", "garbage", "slow", "vanish", "silent")
BEHAVIOURS = CHATTER_BEHAVIOURS + ABUSES
# What a chatter does when it wakes up, with its odds; the rest of the time
# it stays idle. Behaviours left out by --only count as idle too.
ACTIONS = (("chat", 0.45), ("typing", 0.15), ("rooms", 0.10), ("history", 0.10))
RECONNECT_ODDS = 0.04  # per wake-up; a fifth of reconnects come back as a new user
ABUSER_SHARE = 0.02  # of --clients; at least one per abusive behaviour kept
EXTRA_ROOMS_MAX = 3  # rooms a chatter joins beyond its home room
RAMP_PER_S = 50.0  # new clients per second at the start
SAMPLE_EVERY = 10.0  # seconds
WARM_UP = 60.0  # seconds: the first minute; its second half is the baseline
FLAT = 0.10  # allowed growth over the baseline
# Idle connections hold no greenlet: the count is of work in progress (a
# handshake, a burst's hooks), a few dozen that come and go. Growth past the
# baseline is judged beyond this many, so that 8 live instead of 6 is no leak.
GREENLET_SLACK = 50
OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x2, 0x8, 0x9, 0xA
TCP_ESTABLISHED = 1  # include/net/tcp_states.h
# Server settings of the soak: the normal per-client limits (abusers must
# meet them); every client is local, so no per-address cap; quicker pings so
# that silent clients are found within the run.
PING_INTERVAL, PING_TIMEOUT = 10.0, 10.0
CLOSE_TIMEOUT = 2.0  # the server's default --close-timeout
TEXTS = [
    "hello everyone",
    "did the build pass?",
    "lunch at noon " * 3,
    "ok",
    "see the notes in the wiki, section three, before the meeting " * 2,
    "x" * 180,
]


# -- one connection ------------------------------------------------------------


def open_websocket(
    port: int, query: dict[str, str], receive_buffer: int | None = None
) -> tuple[Any, bytes]:
    """A WebSocket to /ws after a completed handshake, and any bytes already read.

    Raises OSError (or ConnectionError) when the server refuses or is gone.
    """
    sock = gsocket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(10.0)
    try:
        sock.connect(("127.0.0.1", port))
        path = "/ws" + ("?" + urlencode(query) if query else "")
        early = upgrade(sock, port, path)
        sock.settimeout(None)
        return sock, early
    except BaseException:
        sock.close()
        raise


class Connection:
    """One client's WebSocket: sends under a lock, reads in its own greenlet,
    answers pings and the server's close, and counts what it is sent."""

    def __init__(
        self, sock: Any, early: bytes, role: str, tally: Counter[str], seen: dict
    ):
        self.sock = sock
        self.inbuf = bytearray(early)
        self.role = role
        self.tally = tally
        self.seen = seen  # room -> the last message id this client saw there
        self.send_lock = Semaphore()
        self.welcome: AsyncResult = AsyncResult()
        self.ended = Event()
        self.close_code: int | None = None  # the server's close frame; None: EOF
        self.errors = 0
        self.reader: gevent.Greenlet | None = None
        self.reading_stopped = False

    def start_reading(self) -> None:
        self.reader = gevent.spawn(self._read_until_closed)

    def send(self, payload: bytes, opcode: int = OP_TEXT) -> None:
        data = masked_frame(payload, opcode)
        with self.send_lock:
            self.sock.sendall(data)

    def send_json(self, **frame: Any) -> None:
        self.send(json.dumps(frame).encode())

    def close(self, timeout: float = 5.0) -> None:
        """Close politely (1000); cut the socket if the server does not answer."""
        if not self.ended.is_set():
            try:
                self.send(struct.pack("!H", 1000), OP_CLOSE)
            except OSError:
                pass
            if self.reader is not None:
                self.ended.wait(timeout)
        self.cut()

    def cut(self, reset: bool = False) -> None:
        """Drop the socket at once; with ``reset`` the server sees an RST and
        no close frame, as when a peer vanishes."""
        self.stop_reading()
        if reset:
            try:
                self.sock.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
            except OSError:
                pass
        self.sock.close()
        self.ended.set()

    def _read_until_closed(self) -> None:
        try:
            while True:
                opcode, payload = self._next_frame()
                if opcode == OP_TEXT:
                    self._on_text(payload)
                elif opcode == OP_PING:
                    self.send(payload, OP_PONG)
                elif opcode == OP_CLOSE:
                    self.close_code = (
                        struct.unpack("!H", payload[:2])[0] if payload else 1005
                    )
                    self.send(payload[:2], OP_CLOSE)
                    return
        except (OSError, EOFError):
            return
        finally:
            if not self.reading_stopped:
                self.sock.close()
                self.ended.set()

    def stop_reading(self) -> None:
        """Read nothing more (not even pings), leaving the socket open."""
        self.reading_stopped = True
        if self.reader is not None:
            self.reader.kill()

    def _fill(self, count: int) -> None:
        while len(self.inbuf) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.inbuf += chunk

    def _next_frame(self) -> tuple[int, bytes]:
        # Server frames are never masked nor fragmented (docs/protocol.md).
        self._fill(2)
        length, start = self.inbuf[1] & 0x7F, 2
        if length == 126:
            self._fill(4)
            length, start = struct.unpack_from("!H", self.inbuf, 2)[0], 4
        elif length == 127:
            self._fill(10)
            length, start = struct.unpack_from("!Q", self.inbuf, 2)[0], 10
        self._fill(start + length)
        opcode = self.inbuf[0] & 0x0F
        payload = bytes(self.inbuf[start : start + length])
        del self.inbuf[: start + length]
        return opcode, payload

    def _on_text(self, payload: bytes) -> None:
        frame = json.loads(payload)
        kind = frame.get("type")
        self.tally[f"{self.role}:got:{kind}"] += 1
        if kind == "welcome":
            self.welcome.set(frame)
        elif kind == "message":
            room = frame["room"]
            self.seen[room] = max(self.seen.get(room, 0), frame["id"])
        elif kind == "error":
            self.errors += 1
            self.tally[f"{self.role}:error:{frame.get('code')}"] += 1


# -- the clients ---------------------------------------------------------------


@dataclass
class Soak:
    """The clients' shared state: where the server is, what to do, what happened."""

    port: int
    behaviours: frozenset[str]
    period: float  # mean seconds between a chatter's wake-ups
    tally: Counter[str] = field(default_factory=Counter)
    # seconds from the first byte of abuse to the server's cut, per behaviour
    time_to_cut: dict[str, list[float]] = field(default_factory=dict)
    stopping: Event = field(default_factory=Event)
    live: set[Connection] = field(default_factory=set)

    def connect(
        self,
        role: str,
        query: dict[str, str],
        seen: dict | None = None,
        receive_buffer: int | None = None,
        read: bool = True,
    ) -> Connection | None:
        try:
            sock, early = open_websocket(self.port, query, receive_buffer)
        except OSError as error:
            self.tally[f"{role}:connect_failed:{type(error).__name__}"] += 1
            return None
        conn = Connection(sock, early, role, self.tally, seen if seen else {})
        self.tally[f"{role}:connected"] += 1
        self.live.add(conn)
        conn.ended.rawlink(lambda _: self.live.discard(conn))
        if read:
            conn.start_reading()
        return conn

    def welcomed(self, conn: Connection) -> dict | None:
        try:
            return conn.welcome.get(timeout=10.0)
        except gevent.Timeout:
            self.tally[f"{conn.role}:no_welcome"] += 1
            conn.cut()
            return None

    def cut_after(self, kind: str, began: float) -> None:
        self.time_to_cut.setdefault(kind, []).append(time.monotonic() - began)

    def pause(self, seconds: float) -> bool:
        """Sleep unless the soak ends first; say whether it is still on."""
        return not self.stopping.wait(seconds)


def chatter(soak: Soak, index: int) -> None:
    """A well-behaved user, reconnecting now and then, until the soak ends."""
    home = ROOMS[index % len(ROOMS)]
    name: str | None = f"soak{index}"
    key: str | None = None
    rooms = [home]
    seen: dict[str, int] = {}
    while not soak.stopping.is_set():
        query = {"room": home}
        if name:
            query["name"] = name
        if key:
            query["key"] = key
        conn = soak.connect("chat", query, seen)
        if conn is None:
            soak.pause(random.uniform(1, 3))
            continue
        welcome = soak.welcomed(conn)
        if welcome is None:
            continue
        key = welcome.get("key", key)
        ending = talk(soak, conn, index, rooms)
        conn.close()
        if ending == "new user":
            name, key, rooms, seen = None, None, [home], {}
            soak.tally["chat:reconnect_as_new_user"] += 1
        elif ending == "reconnect":
            soak.tally["chat:reconnect"] += 1
        soak.pause(random.uniform(0.5, 3))


def talk(soak: Soak, conn: Connection, index: int, rooms: list[str]) -> str:
    """One connection's life: act at random moments until it should end."""
    on = soak.behaviours
    sent = 0
    try:
        for room in rooms[1:]:  # back into the rooms it was in, missing nothing
            conn.send_json(type="join", room=room, since=conn.seen.get(room, 0))
        while True:
            gevent.wait(
                [conn.ended, soak.stopping],
                timeout=random.expovariate(1 / soak.period),
                count=1,
            )
            if soak.stopping.is_set():
                return "stop"
            if conn.ended.is_set():
                soak.tally["chat:lost"] += 1
                return "lost"
            if "reconnect" in on and random.random() < RECONNECT_ODDS:
                return "new user" if random.random() < 0.2 else "reconnect"
            action = pick_action()
            if action not in on:
                continue
            room = random.choice(rooms)
            if action == "typing":
                conn.send_json(type="typing", room=room, active=True)
                if conn.ended.wait(random.uniform(1, 3)):
                    continue
                action = "chat" if "chat" in on and random.random() < 0.7 else ""
                if not action:
                    conn.send_json(type="typing", room=room, active=False)
            if action == "chat":
                sent += 1
                conn.send_json(
                    type="message",
                    room=room,
                    text=random.choice(TEXTS),
                    client_id=f"c{index}.{sent}",
                )
                soak.tally["chat:sent"] += 1
            elif action == "rooms":
                join_or_leave(conn, rooms)
            elif action == "history":
                conn.send_json(type="history", room=room, limit=50)
                conn.send_json(type="ping", t=sent)
    except OSError:
        soak.tally["chat:send_failed"] += 1
        return "lost"


def pick_action() -> str:
    roll = random.random()
    for action, odds in ACTIONS:
        if roll < odds:
            return action
        roll -= odds
    return "idle"


def join_or_leave(conn: Connection, rooms: list[str]) -> None:
    if len(rooms) <= EXTRA_ROOMS_MAX and random.random() < 0.6:
        room = random.choice([r for r in ROOMS if r not in rooms])
        rooms.append(room)
        conn.send_json(type="join", room=room, since=conn.seen.get(room, 0))
    elif len(rooms) > 1:
        room = rooms.pop(random.randrange(1, len(rooms)))
        conn.send_json(type="leave", room=room)


# -- the abusive clients -------------------------------------------------------


def flood(soak: Soak, index: int) -> str:
    """Send messages back to back, far past the rate limit, until closed."""
    conn = soak.connect("flood", {"room": ROOMS[index % len(ROOMS)]})
    if conn is None or soak.welcomed(conn) is None:
        return "no connection"
    began = time.monotonic()
    try:
        for n in range(400):
            if conn.ended.is_set():
                break
            conn.send_json(type="message", text=f"flood {n}")
            if n % 20 == 19:
                gevent.sleep(0.01)
    except OSError:
        pass
    if conn.ended.wait(15.0):
        soak.cut_after("flood", began)
    conn.cut()
    return f"closed {conn.close_code}"


def oversize(soak: Soak, index: int) -> str:
    """Announce a 100 kB frame (the limit is 64 KiB) and start sending it."""
    conn = soak.connect("oversize", {"room": ROOMS[index % len(ROOMS)]})
    if conn is None or soak.welcomed(conn) is None:
        return "no connection"
    header = struct.pack("!BBQ", 0x80 | OP_TEXT, 0x80 | 127, 100_000)
    try:
        with conn.send_lock:
            conn.sock.sendall(header + os.urandom(4) + b"a" * 8192)
    except OSError:
        pass
    conn.ended.wait(15.0)
    conn.cut()
    return f"closed {conn.close_code}"


GARBAGE = (
    (OP_TEXT, b"{not json"),
    (OP_TEXT, b"[1, 2, 3]"),
    (OP_TEXT, b'{"text": "no type"}'),
    (OP_TEXT, b'{"type": "dance"}'),
    (OP_TEXT, b'{"type": "message"}'),
    (OP_TEXT, json.dumps({"type": "message", "text": "y" * 2500}).encode()),
    (OP_TEXT, b'{"type": "message", "text": "hi", "room": "nowhere"}'),
    (OP_TEXT, b'{"type": "join", "room": "bad room!"}'),
    (OP_TEXT, b'{"type": "history", "room": "never-used"}'),
    (OP_BINARY, b"\x00\x01\x02 binary"),
)


def garbage(soak: Soak, index: int) -> str:
    """Send every kind of malformed frame; each must get an error, no close."""
    conn = soak.connect("garbage", {"room": ROOMS[index % len(ROOMS)]})
    if conn is None or soak.welcomed(conn) is None:
        return "no connection"
    try:
        for opcode, payload in GARBAGE:
            conn.send(payload, opcode)
            if conn.ended.wait(0.3):
                break
    except OSError:
        pass
    conn.ended.wait(1.0)
    if conn.ended.is_set():
        return f"closed {conn.close_code}"
    answered = "all answered" if conn.errors >= len(GARBAGE) else "errors missing"
    conn.close()
    return f"stayed open, {answered}"


def slow(soak: Soak, index: int) -> str:
    """Stop reading (a 4 KiB receive window) and keep asking for history pages,
    until the server drops the connection or 120 s pass."""
    room = ROOMS[index % len(ROOMS)]
    conn = soak.connect("slow", {"room": room}, receive_buffer=4096, read=False)
    if conn is None:
        return "no connection"
    began = time.monotonic()
    try:
        while time.monotonic() - began < 120 and not soak.stopping.is_set():
            conn.send_json(type="history", room=room, limit=100)
            gevent.sleep(0.125)  # 8 frames/s: under the frame rate limit
    except OSError:
        soak.cut_after("slow", began)
        conn.cut()
        return "dropped by the server"
    conn.cut()
    return "not dropped" if not soak.stopping.is_set() else "soak ended"


def vanish(soak: Soak, index: int) -> str:
    """Chat a little, then reset the connection: no close frame, no FIN."""
    conn = soak.connect("vanish", {"room": ROOMS[index % len(ROOMS)]})
    if conn is None or soak.welcomed(conn) is None:
        return "no connection"
    try:
        conn.send_json(type="message", text="here for a moment")
        conn.send_json(type="typing", active=True, room=ROOMS[index % len(ROOMS)])
    except OSError:
        pass
    conn.ended.wait(random.uniform(0.5, 3))
    conn.cut(reset=True)
    return "vanished"


def silent(soak: Soak, index: int) -> str:
    """Stop reading and answering pings, keeping the socket open: the server's
    liveness check must drop it (a peer gone without a trace)."""
    conn = soak.connect("silent", {"room": ROOMS[index % len(ROOMS)]})
    if conn is None or soak.welcomed(conn) is None:
        return "no connection"
    conn.stop_reading()
    began = time.monotonic()
    while time.monotonic() - began < PING_INTERVAL + PING_TIMEOUT + 15:
        if not soak.pause(1.0):
            conn.cut(reset=True)
            return "soak ended"
        if tcp_state(conn.sock) != TCP_ESTABLISHED:  # the server's FIN came
            soak.cut_after("silent", began)
            conn.cut(reset=True)
            return "dropped by the server"
    conn.cut(reset=True)
    return "still open"


def tcp_state(sock: Any) -> int:
    """The kernel's TCP state of a socket (the first byte of TCP_INFO)."""
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]


ABUSE_RUNS: dict[str, Callable[[Soak, int], str]] = {
    "flood": flood,
    "oversize": oversize,
    "garbage": garbage,
    "slow": slow,
    "vanish": vanish,
    "silent": silent,
}


def abuser(soak: Soak, kind: str, index: int) -> None:
    """One abusive client: misbehave, get cut off, come back, until the end."""
    while not soak.stopping.is_set():
        outcome = ABUSE_RUNS[kind](soak, index)
        soak.tally[f"{kind}:{outcome}"] += 1
        soak.pause(random.uniform(2, 6))


# -- sampling ------------------------------------------------------------------


def http_get(port: int, path: str) -> bytes:
    """The body of a GET, over a gevent socket (HTTP/1.0: the server closes)."""
    with gsocket.create_connection(("127.0.0.1", port), timeout=30.0) as sock:
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200") and not head.startswith(b"HTTP/1.0 200"):
        raise ConnectionError(f"GET {path}: {head[:60]!r}")
    return body


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise KeyError(name)


def sample(port: int, pid: int, started: float, phase: str, soak: Soak) -> dict:
    """One reading of the server: memory, files, greenlets, connections."""
    with open(f"/proc/{pid}/status") as f:
        rss_kib = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    began = time.perf_counter()
    metrics = http_get(port, "/metrics?greenlets=1").decode()
    scrape_ms = (time.perf_counter() - began) * 1000
    began = time.perf_counter()
    health = json.loads(http_get(port, "/healthz"))
    healthz_ms = (time.perf_counter() - began) * 1000
    return {
        "t": round(time.monotonic() - started, 1),
        "phase": phase,
        "rss_kib": rss_kib,
        "fds": fds,
        "greenlets": int(metric(metrics, "chat_greenlets")),
        "connections": health["connections"],
        "users": health["users"],
        "handlers": health["handlers"],
        "scrape_ms": round(scrape_ms, 1),
        "healthz_ms": round(healthz_ms, 1),
        "clients_open": len(soak.live),
        "load_1min": os.getloadavg()[0],
    }


# -- the run -------------------------------------------------------------------


def server_command(port: int, db: Path) -> list[str]:
    return [
        sys.executable,
        str(run.ROOT / "chat.py"),
        *("--host", "127.0.0.1", "--port", str(port), "--db", str(db)),
        *("--max-conn-per-ip", "0", "--log-level", "warning"),
        *("--ping-interval", str(PING_INTERVAL), "--ping-timeout", str(PING_TIMEOUT)),
    ]


def settle(port: int, limit: float) -> None:
    """Wait until the server holds no connection, then for its close timers."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if json.loads(http_get(port, "/healthz"))["connections"] == 0:
            break
        gevent.sleep(0.5)
    gevent.sleep(2 * CLOSE_TIMEOUT + 1)


def prime(soak: Soak, port: int) -> None:
    """One client writes one message and leaves, so that what the server opens
    on first use (the database's WAL) is part of the idle baseline."""
    conn = soak.connect("prime", {"room": ROOMS[0]})
    if conn is None or soak.welcomed(conn) is None:
        raise RuntimeError("the server did not welcome the first client")
    conn.send_json(type="message", text="soak starting", client_id="prime")
    gevent.sleep(0.5)
    conn.close()
    settle(port, 10.0)


def drive(port: int, pid: int, args: argparse.Namespace) -> dict[str, Any]:
    """Run the clients for the duration, sampling; then let them go."""
    soak = Soak(port, frozenset(args.only), args.period)
    samples: list[dict] = []
    started = time.monotonic()
    prime(soak, port)
    samples.append(sample(port, pid, started, "idle", soak))
    gevent.sleep(SAMPLE_EVERY / 2)
    samples.append(sample(port, pid, started, "idle", soak))
    waited = time.monotonic() - started
    started = time.monotonic()
    for idle in samples:  # times count from the first client on
        idle["t"] = round(idle["t"] - waited, 1)
    phase = ["load"]

    def keep_sampling() -> None:
        while True:
            gevent.sleep(SAMPLE_EVERY)
            try:
                samples.append(sample(port, pid, started, phase[0], soak))
            except (OSError, StopIteration) as error:
                samples.append(
                    {"t": round(time.monotonic() - started, 1), "error": str(error)}
                )
            latest = samples[-1]
            print(f"soak: {json.dumps(latest)}", file=sys.stderr, flush=True)

    sampler = gevent.spawn(keep_sampling)
    kinds = [k for k in ABUSES if k in soak.behaviours]
    abusers = max(len(kinds), round(args.clients * ABUSER_SHARE)) if kinds else 0
    workers: list[gevent.Greenlet] = []
    for n in range(args.clients):
        if n < abusers:
            kind = kinds[n % len(kinds)]
            workers.append(gevent.spawn(abuser, soak, kind, n))
        else:
            workers.append(gevent.spawn(chatter, soak, n))
        gevent.sleep(1 / RAMP_PER_S)
    gevent.sleep(max(0.0, started + args.minutes * 60 - time.monotonic()))
    phase[0] = "leaving"
    soak.stopping.set()
    gevent.joinall(workers, timeout=60.0)
    stuck = sum(1 for w in workers if not w.dead)
    gevent.killall(workers, timeout=5.0)
    for conn in list(soak.live):
        conn.cut()
    settle(port, 60.0)
    sampler.kill()
    for _ in range(3):
        samples.append(sample(port, pid, started, "final", soak))
        gevent.sleep(SAMPLE_EVERY / 2)
    return {
        "samples": samples,
        "tally": dict(sorted(soak.tally.items())),
        "abusers": abusers,
        "time_to_cut": soak.time_to_cut,
        "clients_stuck_at_end": stuck,
    }


# -- the verdict ---------------------------------------------------------------

FIGURES = (
    ("rss_kib", "RSS (MiB)", lambda v: f"{v / 1024:.1f}"),
    ("fds", "open files", lambda v: f"{v:.0f}"),
    ("greenlets", "live greenlets", lambda v: f"{v:.0f}"),
    ("connections", "connections", lambda v: f"{v:.0f}"),
)


def mean(samples: list[dict], key: str) -> float:
    return statistics.fmean(s[key] for s in samples)


def growth(value: float, base: float) -> float:
    return (value - base) / base if base else 0.0


def periods(samples: list[dict]) -> dict[str, list[dict]]:
    """The samples by period: idle, baseline (the second half of the first
    minute, every client connected), each later minute, and final."""
    good = [s for s in samples if "error" not in s]
    out: dict[str, list[dict]] = {"idle": [s for s in good if s["phase"] == "idle"]}
    loaded = [s for s in good if s["phase"] == "load"]
    out["baseline"] = [s for s in loaded if WARM_UP / 2 <= s["t"] < WARM_UP]
    for s in loaded:
        if s["t"] >= WARM_UP:
            out.setdefault(f"minute {int(s['t'] // 60) + 1}", []).append(s)
    out["final"] = [s for s in good if s["phase"] == "final"]
    return {name: group for name, group in out.items() if group}


def slope_per_minute(samples: list[dict], key: str) -> float | None:
    """Least-squares growth of ``key`` per minute over the loaded samples after
    the warm-up; how fast something grows, if it does."""
    points = [
        (s["t"] / 60, s[key])
        for s in samples
        if "error" not in s and s["phase"] == "load" and s["t"] >= WARM_UP / 2
    ]
    if len(points) < 3:
        return None
    return statistics.linear_regression(*zip(*points, strict=True)).slope


def verdict(samples: list[dict]) -> tuple[bool, list[str]]:
    """PASS or FAIL, and one line per check."""
    groups = periods(samples)
    checks: list[tuple[bool, str]] = []
    if "baseline" not in groups or "idle" not in groups or "final" not in groups:
        return False, ["FAIL: too short a run or failed samples: no baseline"]
    base = {key: mean(groups["baseline"], key) for key, *_ in FIGURES}
    idle = {key: mean(groups["idle"], key) for key, *_ in FIGURES}
    final = {key: groups["final"][-1][key] for key, *_ in FIGURES}
    later = [name for name in groups if name.startswith("minute")]
    for key, label, _ in FIGURES[:3]:
        worst = max((mean(groups[name], key) for name in later), default=base[key])
        slack = GREENLET_SLACK if key == "greenlets" else 0
        checks.append(
            (
                growth(worst - slack, base[key]) <= FLAT,
                f"{label} while loaded: at most {growth(worst, base[key]):+.1%} "
                f"over the baseline (limit {FLAT:+.0%})",
            )
        )
    over_base = growth(final["rss_kib"], base["rss_kib"])
    over_idle = growth(final["rss_kib"], idle["rss_kib"])
    checks.append(
        (
            over_base <= FLAT,
            f"RSS once the clients are gone: {over_base:+.1%} over the loaded "
            f"baseline, {over_idle:+.1%} over idle",
        )
    )
    for key, label in (("fds", "open files"), ("greenlets", "greenlets")):
        checks.append(
            (
                final[key] <= idle[key],
                f"{label} once the clients are gone: {final[key]:.0f} "
                f"(idle: {idle[key]:.0f})",
            )
        )
    checks.append(
        (final["connections"] == 0, f"connections at the end: {final['connections']}")
    )
    ok = all(passed for passed, _ in checks)
    return ok, [("PASS: " if passed else "FAIL: ") + text for passed, text in checks]


def markdown(result: dict[str, Any]) -> str:
    """The table: idle, baseline, each later minute and final, with growth."""
    samples = result["samples"]
    groups = periods(samples)
    base = groups.get("baseline")
    names = list(groups)
    lines = [
        "| figure | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for key, label, fmt in FIGURES:
        cells = []
        for name in names:
            value = (
                groups[name][-1][key] if name == "final" else mean(groups[name], key)
            )
            text = fmt(value)
            if name == "final" and "idle" in groups:
                text += f" ({growth(value, mean(groups['idle'], key)):+.1%} vs idle)"
            elif base and name not in ("idle", "baseline"):
                text += f" ({growth(value, mean(base, key)):+.1%})"
            cells.append(text)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    rss_slope = slope_per_minute(samples, "rss_kib")
    scrapes = [s["scrape_ms"] for s in samples if "scrape_ms" in s]
    ok, checks = verdict(samples)
    run_line = (
        f"{result['date']}: `{result['command']}`, {result['clients']} clients "
        f"({result['abusers']} abusive) for {result['minutes']:g} min, behaviours: "
        f"{', '.join(result['behaviours']) or 'none (idle)'}; {result['machine']}."
    )
    body = [run_line, "", *lines, ""]
    body.append(
        "Each cell: the mean of that period's samples (one every "
        f"{SAMPLE_EVERY:.0f} s), with its growth over the baseline (the second "
        "half of the first minute, every client connected). idle: before the "
        "first client; final: the last sample, once every client has gone, "
        "with its growth over idle."
    )
    body.append("")
    if rss_slope is not None:
        body.append(f"RSS trend while loaded: {rss_slope:+.0f} KiB per minute.")
    if scrapes:
        plain = [s["healthz_ms"] for s in samples if "healthz_ms" in s]
        body.append(
            f"A /metrics scrape (the greenlet count included) took "
            f"{statistics.median(scrapes):.1f} ms median, {max(scrapes):.1f} ms "
            f"max; a /healthz request {statistics.median(plain):.1f} ms median."
        )
    for kind, times in result.get("time_to_cut", {}).items():
        body.append(
            f"{kind}: cut by the server after {statistics.median(times):.1f} s "
            f"median ({min(times):.1f}–{max(times):.1f} s, {len(times)} times)."
        )
    body.append(
        f"Server alive at the end: {result.get('server_alive')}; client "
        f"greenlets still running 60 s after the end: "
        f"{result['clients_stuck_at_end']}."
    )
    body += ["", f"**{'PASS' if ok else 'FAIL'}**", ""]
    body += [f"- {line}" for line in checks]
    body += ["", "What the clients did and saw:", ""]
    body += [f"- {name}: {count}" for name, count in result["tally"].items()]
    log = result.get("server_log", {})
    body += [
        "",
        f"Server log: {log.get('tracebacks', 0)} tracebacks, "
        f"{log.get('error_lines', 0)} ERROR and {log.get('warning_lines', 0)} "
        "WARNING lines.",
    ]
    return "\n".join(body) + "\n"


# -- main ----------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument(
        "--period",
        type=float,
        default=10.0,
        help="mean seconds between a chatter's actions (default 10)",
    )
    parser.add_argument(
        "--only",
        default=",".join(BEHAVIOURS),
        help="behaviours to keep, comma-separated: "
        + ",".join(BEHAVIOURS)
        + "; none: the clients connect and stay idle",
    )
    parser.add_argument(
        "--name", default="soak", help="results file name in bench/results/"
    )
    args = parser.parse_args(argv)
    args.only = [] if args.only == "none" else args.only.split(",")
    unknown = set(args.only) - set(BEHAVIOURS)
    if unknown:
        parser.error(f"unknown behaviours: {', '.join(sorted(unknown))}")
    if args.minutes * 60 < 2 * WARM_UP:
        parser.error("--minutes must be at least 2 (a warm-up minute, then more)")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    run.raise_file_limit()
    if (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {int(run.GENERATOR_CPU)})
    info = run.machine()
    with tempfile.TemporaryDirectory(prefix="chat-soak-") as tmp:
        db, log_path = Path(tmp) / "soak.db", Path(tmp) / "server.log"
        kind = run.ServerKind(
            "ours", "ours", "ws", lambda port: server_command(port, db)
        )
        with run.running(kind, log_path) as (port, pid):
            result = drive(port, pid, args)
            result["server_alive"] = Path(f"/proc/{pid}").exists()
        result["server_log"] = run.log_findings(log_path)
        run.LOGS.mkdir(parents=True, exist_ok=True)
        (run.LOGS / f"{args.name}-server.log").write_bytes(log_path.read_bytes())
    result.update(
        date=info["date"],
        command="python3 bench/soak.py" + "".join(f" {a}" for a in argv),
        machine=f"{info['cpus']} × {info['cpu']}, Python {info['python']}, "
        f"load average at start {info['loadavg_at_start']:.2f}",
        clients=args.clients,
        minutes=args.minutes,
        behaviours=args.only,
    )
    ok, checks = verdict(result["samples"])
    result["pass"], result["checks"] = ok, checks
    run.RESULTS.mkdir(parents=True, exist_ok=True)
    (run.RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=1) + "\n")
    table = markdown(result)
    (run.RESULTS / f"{args.name}.md").write_text(f"# Soak: {args.name}\n\n{table}")
    print(table)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
