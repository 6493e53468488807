"""Load generator for the chat benchmarks: one process, one epoll loop.

    python bench/loadgen.py fanout --port 8000 --clients 1000
    python bench/loadgen.py rates --port 8000 --rates 10000,50000,100000
    python bench/loadgen.py idle --port 8000 --clients 10000 --server-pid 1234
    python bench/loadgen.py slow|storm|history|bigroom --port 8000 ...
    (add --proto sio for a python-socketio server: Engine.IO v4 over WebSocket)

Each scenario prints one JSON object on stdout. ``bench/run.py`` starts it
pinned to CPU 1 (``taskset -c 1``) while the server under test has CPU 0.

Built to stay cheaper than any server it measures: every client is a raw
non-blocking socket in a single ``select.epoll`` loop; outgoing frames are
masked from precomputed parts; incoming frames are counted by walking their
headers only. A sender spots its own echoes by a byte marker in the
``client_id`` and JSON-parses only those, for the round trip. The generator
reports its own CPU share (process time over wall time) for every
measurement window: near 85 % of its core, a result says more about the
generator than about the server, and run.py marks it "generator-bound".
"""

from __future__ import annotations

import argparse
import base64
import errno
import heapq
import json
import os
import random
import resource
import select
import socket
import struct
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

WS, SIO = "ws", "sio"
CONNECTING, UPGRADING, OPENING, JOINING, READY, CLOSED = range(6)
EPOLLIN, EPOLLOUT = select.EPOLLIN, select.EPOLLOUT
READ_EVENTS = select.EPOLLIN | select.EPOLLERR | select.EPOLLHUP
RECV_SIZE = 1 << 18
SEQ_DIGITS = 8  # client ids are "K<sender:03d>.<seq:08d>": fixed length frames

now = time.perf_counter


# -- frames -------------------------------------------------------------------


def masked_frame(payload: bytes, opcode: int = 0x1, key: bytes | None = None) -> bytes:
    """One client-to-server frame (RFC 6455 5.2), masked as clients must."""
    key = key or os.urandom(4)
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    return header + key + xor(payload, mask_int(key, length), length)


def mask_int(key: bytes, length: int) -> int:
    return int.from_bytes((key * (length // 4 + 1))[:length], "big")


def xor(payload: bytes, mask: int, length: int) -> bytes:
    return (int.from_bytes(payload, "big") ^ mask).to_bytes(length, "big")


class MessageMaker:
    """Masked ``message`` frames of one sender, differing only in the sequence
    number: header, mask and the mask's integer form are computed once."""

    def __init__(self, proto: str, sender: int, text: str):
        self.marker = b"K%03d." % sender
        body = json.dumps({"text": text, "client_id": "@"}, separators=(",", ":"))
        head, tail = body.encode().split(b"@")
        head += self.marker
        if proto == SIO:
            self.prefix, self.suffix = b'42["message",' + head, tail + b"]"
        else:
            self.prefix, self.suffix = b'{"type":"message",' + head[1:], tail
        self.length = len(self.prefix) + SEQ_DIGITS + len(self.suffix)
        key = os.urandom(4)
        self.header = masked_frame(b"x" * self.length, key=key)[: -self.length]
        self.mask = mask_int(key, self.length)

    def frame(self, seq: int) -> bytes:
        payload = b"%s%08d%s" % (self.prefix, seq, self.suffix)
        return self.header + xor(payload, self.mask, self.length)


SIO_CONNECT = masked_frame(b"40")
SIO_PONG = masked_frame(b"3")


def echo_seq(proto: str, payload: bytes) -> int:
    """The sequence number in the client_id of one of our own echoes."""
    if proto == SIO:
        client_id = json.loads(payload[2:])[1]["client_id"]
    else:
        client_id = json.loads(payload)["client_id"]
    return int(client_id[5:])


# -- one client ---------------------------------------------------------------


class Client:
    __slots__ = (
        "gen",
        "index",
        "sock",
        "fd",
        "state",
        "head",
        "rest",
        "outbuf",
        "msgs",
        "others",
        "marker",
        "maker",
        "seq",
        "started",
        "t_open",
        "t_welcome",
        "close_code",
        "reading",
        "pending",
        "completed",
    )

    def __init__(self, gen: Generator, index: int, sock: socket.socket):
        self.gen = gen
        self.index = index
        self.sock = sock
        self.fd = sock.fileno()
        self.state = CONNECTING
        self.head = b""  # HTTP response bytes during the upgrade
        self.rest = b""  # an incomplete frame
        self.outbuf = bytearray()
        self.msgs = 0  # message frames received
        self.others = 0  # other data frames received
        self.marker: bytes | None = None  # set on senders: own echoes carry it
        self.maker: MessageMaker | None = None
        self.seq = 0  # next sequence number to send
        self.started: dict[int, float] = {}  # seq -> send (or scheduled) time
        self.t_open = now()
        self.t_welcome = 0.0
        self.close_code: int | str | None = None
        self.reading = True
        self.pending: list[float] = []  # history requests in flight (FIFO)
        self.completed = 0  # echoes (or history replies) inside the window

    # writing

    def send(self, data: bytes) -> None:
        if self.state == CLOSED:
            return
        if self.outbuf:
            self.outbuf += data
            return
        try:
            sent = self.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self.lost(f"send: {errno.errorcode.get(exc.errno or 0, exc)}")
            return
        if sent < len(data):
            self.outbuf += data[sent:]
            self.gen.watch(self)

    def flush(self) -> None:
        if self.state == CONNECTING:
            self.connected()
            return
        try:
            sent = self.sock.send(self.outbuf)
        except BlockingIOError:
            return
        except OSError as exc:
            self.lost(f"send: {errno.errorcode.get(exc.errno or 0, exc)}")
            return
        del self.outbuf[:sent]
        if not self.outbuf:
            self.gen.watch(self)

    def send_message(self, at: float) -> None:
        assert self.maker is not None
        self.started[self.seq] = at
        self.send(self.maker.frame(self.seq))
        self.seq += 1

    # connecting

    def connected(self) -> None:
        error = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error:
            self.lost(f"connect: {errno.errorcode.get(error, error)}")
            return
        self.state = UPGRADING
        self.gen.watch(self)
        self.send(self.gen.request(self.index))

    def upgrade(self, data: bytes) -> None:
        self.head += data
        end = self.head.find(b"\r\n\r\n")
        if end < 0:
            if len(self.head) > 16384:
                self.lost("upgrade: oversized response")
            return
        status = self.head[: self.head.find(b"\r\n")]
        rest = self.head[end + 4 :]
        self.head = b""
        if not status.startswith(b"HTTP/1.1 101"):
            self.lost("upgrade: " + status.decode("latin-1")[:60])
            return
        self.state = OPENING if self.gen.proto == SIO else JOINING
        if rest:
            self.feed(rest)

    # reading

    def feed(self, data: bytes) -> None:
        """Walk the frame headers in ``data``; count message frames, hand own
        echoes and every other frame to the generator."""
        if self.rest:
            data = self.rest + data
        size = len(data)
        pos = 0
        msgs = 0
        marker = self.marker
        find = data.find
        while size - pos >= 2:
            length = data[pos + 1] & 0x7F
            if length < 126:
                start = pos + 2
            elif length == 126:
                if size - pos < 4:
                    break
                length = (data[pos + 2] << 8) | data[pos + 3]
                start = pos + 4
            else:
                if size - pos < 10:
                    break
                length = int.from_bytes(data[pos + 2 : pos + 10], "big")
                start = pos + 10
            end = start + length
            if end > size:
                break
            if data[pos] & 0x0F == 0x1 and find(b'message"', start, start + 24) >= 0:
                msgs += 1
                if marker is not None and find(marker, start, end) >= 0:
                    self.gen.on_echo(self, data[start:end])
            else:
                self.control(data[pos] & 0x0F, data[start:end])
                if self.state == CLOSED:
                    return
            pos = end
        self.rest = data[pos:] if pos < size else b""
        self.msgs += msgs

    def control(self, opcode: int, payload: bytes) -> None:
        """A frame that is not a chat message: handshake steps, pings, closes,
        welcome, presence, errors, history pages."""
        gen = self.gen
        if opcode == 0x9:
            self.send(masked_frame(payload, 0xA))
            return
        if opcode == 0x8:
            code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            self.lost(code)
            return
        if opcode != 0x1:
            return
        self.others += 1
        if gen.proto == SIO:
            if payload == b"2":
                self.send(SIO_PONG)
            elif payload[:1] == b"0":
                self.send(SIO_CONNECT)
            elif payload.startswith(b'42["welcome"'):
                self.welcomed()
            elif payload[:2] == b"44" or payload[:2] == b"41":
                gen.note_error(payload)
            return
        head = payload[:30]
        if self.state == JOINING and b'"welcome"' in head:
            self.welcomed()
        elif b'"history"' in head:
            gen.on_history(self, payload)
        elif b'"error"' in head:
            gen.note_error(payload)

    def welcomed(self) -> None:
        if self.state in (OPENING, JOINING):
            self.state = READY
            self.t_welcome = now()
            self.gen.on_ready(self)

    def lost(self, why: int | str) -> None:
        if self.state == CLOSED:
            return
        was_ready = self.state == READY
        self.state = CLOSED
        self.close_code = why
        self.gen.forget(self, was_ready)


# -- the loop -----------------------------------------------------------------


def core_busy() -> dict[str, int]:
    """Clock ticks each core spent running tasks (user, nice, system) or
    stolen by the hypervisor; interrupt and softirq time is left out, since
    the kernel does not charge it to any process."""
    busy = {}
    with open("/proc/stat") as f:
        for line in f:
            name, *ticks = line.split()
            if name.startswith("cpu") and name != "cpu":
                values = [int(t) for t in ticks]
                busy[name] = values[0] + values[1] + values[2] + values[7]
    return busy


@dataclass
class Window:
    """CPU and delivery counters at the start of a measurement window."""

    wall: float
    cpu: float
    server_ticks: int | None
    delivered: int
    cores: dict[str, int]
    recvs: int
    usage: resource.struct_rusage

    def close(self, gen: Generator) -> dict[str, Any]:
        wall = now() - self.wall
        out: dict[str, Any] = {
            "seconds": wall,
            "generator_cpu": (time.process_time() - self.cpu) / wall,
            "deliveries": gen.delivered() - self.delivered,
            "recv_calls": gen.recvs - self.recvs,
        }
        usage = resource.getrusage(resource.RUSAGE_SELF)
        out["generator_user"] = (usage.ru_utime - self.usage.ru_utime) / wall
        out["generator_sys"] = (usage.ru_stime - self.usage.ru_stime) / wall
        ticks = gen.server_ticks()
        if ticks is not None and self.server_ticks is not None:
            out["server_cpu"] = (ticks - self.server_ticks) / CLOCK_TICKS / wall
        # How busy each core was, whoever used it: with the server on cpu0 and
        # the generator on cpu1, the rest is other load (or kernel work).
        cores = core_busy()
        out["core_busy"] = {
            name: (cores[name] - self.cores.get(name, 0)) / CLOCK_TICKS / wall
            for name in sorted(cores)
        }
        return out


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Generator:
    port: int
    proto: str
    room_of: Callable[[int], str]
    server_pid: int | None = None
    host: str = "127.0.0.1"
    headers: tuple[str, ...] = ()  # extra request lines, "Name: value"
    cookies: tuple[str, ...] = ()  # client i sends cookies[i % len] (a session)
    clients: list[Client] = field(default_factory=list)
    by_fd: dict[int, Client] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    closes: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    last_rx: float = 0.0
    opening: int = 0  # clients between connect() and welcome
    ready: int = 0
    timers: list[tuple[float, int, Callable[[], None]]] = field(default_factory=list)
    on_echo: Callable[[Client, bytes], None] = lambda client, payload: None
    on_history: Callable[[Client, bytes], None] = lambda client, payload: None
    rcvbuf: int | None = None  # SO_RCVBUF for the next clients, if set
    recvs: int = 0  # recv() calls that returned data
    batch: float = float(os.environ.get("LOADGEN_BATCH", "0"))
    batch_events: int = int(os.environ.get("LOADGEN_BATCH_EVENTS", "50"))
    closing: bool = False  # close_all() is under way: closes are ours

    def __post_init__(self) -> None:
        self.epoll = select.epoll()
        self._timer_seq = 0

    # clients

    def request(self, index: int) -> bytes:
        key = base64.b64encode(os.urandom(16)).decode()
        query = f"name=u{index}&room={self.room_of(index)}"
        path = f"/socket.io/?EIO=4&transport=websocket&{query}"
        if self.proto == WS:
            path = f"/ws?{query}"
        return (
            f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            + "".join(f"{line}\r\n" for line in self.headers)
            + (
                f"Cookie: {self.cookies[index % len(self.cookies)]}\r\n"
                if self.cookies
                else ""
            )
            + "\r\n"
        ).encode()

    def connect(self) -> Client:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        client = Client(self, len(self.clients), sock)
        self.clients.append(client)
        self.by_fd[client.fd] = client
        self.opening += 1
        err = sock.connect_ex((self.host, self.port))
        if err not in (0, errno.EINPROGRESS):
            self.epoll.register(client.fd, EPOLLIN)
            client.lost(f"connect: {errno.errorcode.get(err, err)}")
            return client
        self.epoll.register(client.fd, EPOLLOUT)
        return client

    def watch(self, client: Client) -> None:
        """Poll for writability while the client has bytes waiting."""
        if client.state == CLOSED:
            return
        events = (EPOLLIN if client.reading else 0) | (EPOLLOUT if client.outbuf else 0)
        self.epoll.modify(client.fd, events)

    def pause_reading(self, client: Client) -> None:
        client.reading = False
        self.watch(client)

    def on_ready(self, client: Client) -> None:
        self.opening -= 1
        self.ready += 1

    def forget(self, client: Client, was_ready: bool) -> None:
        if was_ready:
            self.ready -= 1
            if not self.closing:
                self.closes[str(client.close_code)] += 1
        else:
            self.opening -= 1
            self.failures[str(client.close_code)] += 1
        self.by_fd.pop(client.fd, None)
        try:
            self.epoll.unregister(client.fd)
        except OSError:
            pass
        client.sock.close()

    def note_error(self, payload: bytes) -> None:
        text = payload.decode("utf-8", "replace")
        try:
            key = str(json.loads(text).get("code"))
        except (ValueError, AttributeError):
            key = text[:40]
        self.errors[key] += 1
        if len(self.error_samples) < 3:
            self.error_samples.append(text[:200])

    def delivered(self) -> int:
        return sum(c.msgs for c in self.clients)

    # time

    def at(self, when: float, task: Callable[[], None]) -> None:
        self._timer_seq += 1
        heapq.heappush(self.timers, (when, self._timer_seq, task))

    def step(self, timeout: float) -> None:
        timers = self.timers
        if timers:
            timeout = max(0.0, min(timeout, timers[0][0] - now()))
        by_fd = self.by_fd
        events = self.epoll.poll(timeout)
        if events:
            self.last_rx = now()
            if self.batch and len(events) < self.batch_events:
                time.sleep(self.batch)
                events = self.epoll.poll(0)
        for fd, mask in events:
            client = by_fd.get(fd)
            if client is None:
                continue
            if mask & EPOLLOUT:
                client.flush()
            if mask & READ_EVENTS and client.state != CLOSED:
                try:
                    data = client.sock.recv(RECV_SIZE)
                except BlockingIOError:
                    continue
                except OSError as exc:
                    client.lost(f"recv: {errno.errorcode.get(exc.errno or 0, exc)}")
                    continue
                self.recvs += 1
                if not data:
                    client.lost("eof")
                elif client.state >= OPENING:
                    client.feed(data)
                elif client.state == UPGRADING:
                    client.upgrade(data)
        if timers:
            t = now()
            while timers and timers[0][0] <= t:
                heapq.heappop(timers)[2]()

    def run_until(
        self, deadline: float, done: Callable[[], bool] | None = None
    ) -> None:
        while True:
            t = now()
            if t >= deadline or (done is not None and done()):
                return
            self.step(min(0.05, deadline - t))

    def open(
        self, count: int, concurrency: int, limit: float
    ) -> tuple[list[Client], float]:
        """Open ``count`` clients, at most ``concurrency`` at a time, until each
        has its welcome or ``limit`` seconds pass; return them and the time."""
        first = len(self.clients)
        t0 = now()
        deadline = t0 + limit
        started = 0
        while now() < deadline:
            while started < count and self.opening < concurrency:
                self.connect()
                started += 1
            if started == count and self.opening == 0:
                break
            self.step(0.05)
        elapsed = now() - t0
        for client in self.clients[first:]:
            if client.state not in (READY, CLOSED):
                client.lost("timeout: no welcome")
        return self.clients[first:], elapsed

    def drain(self, quiet: float = 0.5, limit: float = 30.0) -> float:
        """Read until nothing arrives for ``quiet`` seconds (presence storms)."""
        t0 = now()
        self.last_rx = t0
        while now() - self.last_rx < quiet and now() - t0 < limit:
            self.step(0.05)
        return now() - t0

    # the server under test

    def server_ticks(self) -> int | None:
        if not self.server_pid:
            return None
        try:
            with open(f"/proc/{self.server_pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return int(fields[11]) + int(fields[12])  # utime + stime

    def server_rss(self) -> int | None:
        """VmRSS of the server, in bytes."""
        if not self.server_pid:
            return None
        try:
            with open(f"/proc/{self.server_pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            return None
        return None

    def window(self) -> Window:
        return Window(
            now(),
            time.process_time(),
            self.server_ticks(),
            self.delivered(),
            core_busy(),
            self.recvs,
            resource.getrusage(resource.RUSAGE_SELF),
        )

    def summary(self) -> dict[str, Any]:
        return {
            "connect_failures": dict(self.failures),
            "closed_by_server": dict(self.closes),
            "errors": dict(self.errors),
            "error_samples": self.error_samples,
            "server_alive": self.server_rss() is not None if self.server_pid else None,
        }

    def close_all(self, limit: float = 2.0) -> None:
        """Close every connection politely (a close frame, the server's reply),
        for at most ``limit`` seconds; reset the rest, leaving no TIME_WAIT."""
        self.closing = True
        self.timers.clear()
        goodbye = masked_frame(struct.pack("!H", 1000), 0x8)
        for client in list(self.by_fd.values()):
            if client.state in (OPENING, JOINING, READY):
                client.reading = True
                self.watch(client)
                client.send(goodbye)
        self.run_until(now() + limit, lambda: not self.by_fd)
        linger = struct.pack("ii", 1, 0)
        for client in list(self.by_fd.values()):
            try:
                client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            except OSError:
                pass
            client.lost("reset at the end")


# -- statistics ---------------------------------------------------------------


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency(values: list[float]) -> dict[str, float | None]:
    ms = [1000 * v for v in values]
    return {
        "p50_ms": percentile(ms, 0.50),
        "p99_ms": percentile(ms, 0.99),
        "samples": len(ms),
    }


# -- scenarios ----------------------------------------------------------------


def setup(args: argparse.Namespace, room_of: Callable[[int], str]) -> Generator:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    cookies: tuple[str, ...] = ()
    if args.cookie_file:
        with open(args.cookie_file) as lines:
            cookies = tuple(line.strip() for line in lines if line.strip())
    return Generator(
        args.port,
        args.proto,
        room_of,
        args.server_pid,
        headers=tuple(args.header),
        cookies=cookies,
    )


def open_room(gen: Generator, args: argparse.Namespace) -> dict[str, Any]:
    clients, elapsed = gen.open(args.clients, args.concurrency, args.connect_limit)
    ready = sum(1 for c in clients if c.state == READY)
    drained = gen.drain()
    return {"connected": ready, "connect_s": elapsed, "drain_s": drained}


def make_senders(gen: Generator, count: int, text: str) -> list[Client]:
    senders = [c for c in gen.clients if c.state == READY][:count]
    for number, client in enumerate(senders):
        client.maker = MessageMaker(gen.proto, number, text)
        client.marker = client.maker.marker
    return senders


def scenario_fanout(args: argparse.Namespace) -> dict[str, Any]:
    """Closed loop: each sender keeps ``inflight`` messages outstanding."""
    gen = setup(args, lambda i: "fanout")
    result = open_room(gen, args)
    senders = make_senders(gen, args.senders, "x" * args.text)
    rtts: list[float] = []
    measuring = False

    def echo(client: Client, payload: bytes) -> None:
        t = now()
        sent = client.started.pop(echo_seq(gen.proto, payload), None)
        if sent is None:
            return
        if measuring:
            rtts.append(t - sent)
            client.completed += 1
        client.send_message(t)

    gen.on_echo = echo
    t0 = now()
    for client in senders:
        for _ in range(args.inflight):
            client.send_message(t0)
    gen.run_until(t0 + args.warmup)
    measuring = True
    window = gen.window()
    gen.run_until(now() + args.duration)
    result.update(window.close(gen))
    measuring = False
    served = [c.completed for c in senders]
    result.update(
        deliveries_per_s=result["deliveries"] / result["seconds"],
        messages_per_s=sum(served) / result["seconds"],
        fairness=min(served) / max(served) if served and max(served) else 0.0,
        sender_completed=served,
        **latency(rtts),
        **gen.summary(),
    )
    gen.close_all()
    return result


def scenario_rates(args: argparse.Namespace) -> dict[str, Any]:
    """Open loop: senders follow a schedule (no waiting for echoes) so that the
    room receives the offered deliveries per second; latency is measured from
    the scheduled send time, so a server that falls behind shows it."""
    gen = setup(args, lambda i: "rates")
    result = open_room(gen, args)
    senders = make_senders(gen, args.senders, "x" * args.text)
    levels = [
        run_level(gen, senders, result["connected"], float(offered), args)
        for offered in args.rates.split(",")
    ]
    result.update(levels=levels, **gen.summary())
    gen.close_all()
    return result


def run_level(
    gen: Generator,
    senders: list[Client],
    members: int,
    offered: float,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """One offered load: ``offered`` deliveries/s in a room of ``members``."""
    rtts: list[float] = []
    in_window: dict[tuple[int, int], float] = {}  # (sender, seq) -> scheduled
    interval = members * len(senders) / offered  # between one sender's messages
    t0 = now() + 0.05
    start, stop = t0 + args.warmup, t0 + args.warmup + args.duration

    def echo(client: Client, payload: bytes) -> None:
        seq = echo_seq(gen.proto, payload)
        sent = client.started.pop(seq, None)
        if sent is not None and in_window.pop((client.index, seq), None) is not None:
            rtts.append(now() - sent)

    def tick(client: Client, when: float) -> None:
        if when >= stop:
            return
        if when >= start:
            in_window[(client.index, client.seq)] = when
        client.send_message(when)
        gen.at(when + interval, lambda: tick(client, when + interval))

    gen.on_echo = echo
    for number, client in enumerate(senders):
        first = t0 + interval * number / len(senders)
        gen.at(first, lambda c=client, w=first: tick(c, w))
    gen.run_until(start)
    window = gen.window()
    gen.run_until(stop)
    level: dict[str, Any] = {"offered": offered, **window.close(gen)}
    gen.run_until(now() + args.grace, lambda: not in_window)
    # A message still unanswered counts with the time waited so far (a lower
    # bound), so a server that falls behind cannot hide its slowest replies.
    t_end = now()
    rtts.extend(t_end - sent for sent in in_window.values())
    level.update(
        achieved=level["deliveries"] / level["seconds"],
        unanswered=len(in_window),
        **latency(rtts),
    )
    level["keeps_up"] = level["achieved"] / offered >= 0.95 and not in_window
    level["drain_s"] = gen.drain(quiet=0.3, limit=args.grace)
    gen.timers.clear()
    for client in senders:
        client.started.clear()
    return level


def scenario_idle(args: argparse.Namespace) -> dict[str, Any]:
    """Many idle connections: handshake rate while opening, then RSS each."""
    gen = setup(args, lambda i: f"idle{i // args.room_size}")
    time.sleep(0.5)
    rss_before = gen.server_rss()
    window = gen.window()
    clients, elapsed = gen.open(args.clients, args.concurrency, args.connect_limit)
    opening = window.close(gen)
    ready = sum(1 for c in clients if c.state == READY)
    gen.drain(quiet=1.0)
    gen.run_until(now() + args.settle)
    rss_after = gen.server_rss()
    result: dict[str, Any] = {
        "connected": ready,
        "connect_s": elapsed,
        "handshakes_per_s": ready / elapsed if elapsed else 0.0,
        "rss_before": rss_before,
        "rss_after": rss_after,
        **latency([c.t_welcome - c.t_open for c in clients if c.state == READY]),
        # While opening: the generator's share of its core, and the server's
        # CPU per handshake (the joins' presence fan-out included).
        "generator_cpu": opening["generator_cpu"],
    }
    if opening.get("server_cpu") is not None and ready:
        cpu_seconds = opening["server_cpu"] * opening["seconds"]
        result["server_cpu_ms_per_handshake"] = 1000 * cpu_seconds / ready
    if rss_before is not None and rss_after is not None and ready:
        result["rss_per_conn"] = (rss_after - rss_before) / ready
    result.update(gen.summary())
    gen.close_all()
    return result


def scenario_slow(args: argparse.Namespace) -> dict[str, Any]:
    """One member stops reading; the others go on. What do the others get, and
    what happens to the server's memory?"""
    gen = setup(args, lambda i: "slow")
    result = open_room(gen, args)
    gen.rcvbuf = 4096
    (slow,), _ = gen.open(1, 1, args.connect_limit)
    gen.rcvbuf = None
    gen.drain(quiet=0.3)
    if slow.state != READY:
        raise SystemExit("the slow client could not join")
    gen.pause_reading(slow)
    senders = make_senders(gen, args.senders, "y" * args.text)
    others = [c for c in gen.clients if c is not slow and c.state == READY]
    base = {id(c): c.msgs for c in others}
    interval = args.senders / args.rate
    t0 = now() + 0.05
    stop = t0 + args.duration
    sent = [0]
    samples: list[tuple[float, int | None]] = []

    def tick(client: Client, when: float) -> None:
        if when >= stop:
            return
        client.send_message(when)
        sent[0] += 1
        gen.at(when + interval, lambda: tick(client, when + interval))

    def sample() -> None:
        samples.append((now() - t0, gen.server_rss()))
        if now() < stop + args.grace:
            gen.at(now() + 0.5, sample)

    for number, client in enumerate(senders):
        first = t0 + interval * number
        gen.at(first, lambda c=client, w=first: tick(c, w))
    gen.at(t0, sample)
    window = gen.window()
    gen.run_until(stop)
    result.update(window.close(gen))
    expected = sent[0] * len(others)
    gen.run_until(
        now() + args.grace,
        lambda: sum(c.msgs - base[id(c)] for c in others) >= expected,
    )
    received = sum(c.msgs - base[id(c)] for c in others)
    # Now read what the slow client was sent: did the server cut it off?
    slow.reading = True
    gen.watch(slow)
    gen.drain(quiet=1.0, limit=args.grace)
    rss = [r for _, r in samples if r is not None]
    third = max(1, len(rss) // 3)
    result.update(
        sent=sent[0],
        expected=expected,
        received=received,
        delivery_ratio=received / expected if expected else 0.0,
        rss_samples=samples,
        rss_start=rss[0] if rss else None,
        rss_max=max(rss) if rss else None,
        rss_end=rss[-1] if rss else None,
        rss_growth_last_third=(rss[-1] - rss[-third]) if rss else None,
        slow_client_closed=str(slow.close_code) if slow.state == CLOSED else None,
        slow_client_received=slow.msgs,
        **gen.summary(),
    )
    gen.close_all()
    return result


def scenario_storm(args: argparse.Namespace) -> dict[str, Any]:
    """Every client connects at once; how long until the last has its welcome?"""
    gen = setup(args, lambda i: "storm")
    clients, elapsed = gen.open(args.clients, args.clients, args.connect_limit)
    ready = [c for c in clients if c.state == READY]
    last = max((c.t_welcome for c in ready), default=0.0)
    first_open = min(c.t_open for c in clients)
    result = {
        "connected": len(ready),
        "all_welcomed_s": last - first_open if len(ready) == len(clients) else None,
        "last_welcome_s": last - first_open if ready else None,
        **latency([c.t_welcome - c.t_open for c in ready]),
        **gen.summary(),
    }
    gen.close_all()
    return result


def scenario_bigroom(args: argparse.Namespace) -> dict[str, Any]:
    """Every client joins ONE room, ``--concurrency`` opening at a time: the
    handshake rate, how long until all are welcomed and the presence traffic
    has died down, the server's CPU time and memory, and how many frames
    other than messages (presence, mostly) each client got."""
    gen = setup(args, lambda i: "bigroom")
    time.sleep(0.5)
    rss_before, ticks_before = gen.server_rss(), gen.server_ticks()
    clients, elapsed = gen.open(args.clients, args.concurrency, args.connect_limit)
    ready = [c for c in clients if c.state == READY]
    first_open = min((c.t_open for c in clients), default=0.0)
    last = max((c.t_welcome for c in ready), default=0.0)
    settled = gen.drain(quiet=1.0, limit=120.0)
    ticks_after = gen.server_ticks()
    result: dict[str, Any] = {
        "connected": len(ready),
        "connect_s": elapsed,
        "handshakes_per_s": len(ready) / elapsed if elapsed else 0.0,
        "all_welcomed_s": last - first_open if len(ready) == len(clients) else None,
        # The last second of the drain is the quiet it waited for.
        "settled_s": elapsed + max(0.0, settled - 1.0),
        "rss_before": rss_before,
        "rss_after": gen.server_rss(),
        "frames_per_client": sum(c.others for c in ready) / max(len(ready), 1),
        **latency([c.t_welcome - c.t_open for c in ready]),
    }
    if ticks_before is not None and ticks_after is not None:
        result["server_cpu_s"] = (ticks_after - ticks_before) / os.sysconf("SC_CLK_TCK")
    result.update(gen.summary())
    gen.close_all()
    return result


def scenario_history(args: argparse.Namespace) -> dict[str, Any]:
    """Our server only: fill a room, then page through it with ``history``."""
    gen = setup(args, lambda i: "hist" if i == 0 else "readers")
    (writer,), _ = gen.open(1, 1, args.connect_limit)
    if writer.state != READY:
        raise SystemExit("the writer could not join")
    writer.maker = MessageMaker(gen.proto, 0, "h" * args.text)
    writer.marker = writer.maker.marker
    stored = [0]

    def stored_echo(client: Client, payload: bytes) -> None:
        stored[0] += 1
        if client.seq < args.messages:
            client.send_message(now())

    gen.on_echo = stored_echo
    t0 = now()
    for _ in range(min(100, args.messages)):
        writer.send_message(t0)
    gen.run_until(t0 + args.connect_limit, lambda: stored[0] >= args.messages)
    fill_s = now() - t0
    readers, _ = gen.open(args.clients, args.concurrency, args.connect_limit)
    gen.drain(quiet=0.3)
    rng = random.Random(1)
    times: list[float] = []
    measuring = False

    def ask(client: Client) -> None:
        before = rng.randint(args.limit + 1, args.messages + 1)
        request = {"type": "history", "room": "hist", "before": before}
        request["limit"] = args.limit
        client.pending.append(now())
        client.send(masked_frame(json.dumps(request).encode()))

    def answered(client: Client, payload: bytes) -> None:
        t = now()
        if not client.pending:
            return
        sent = client.pending.pop(0)
        if measuring:
            times.append(t - sent)
            client.completed += 1
        ask(client)

    gen.on_history = answered
    live = [c for c in readers if c.state == READY]
    for client in live:
        for _ in range(args.inflight):
            ask(client)
    gen.run_until(now() + args.warmup)
    measuring = True
    window = gen.window()
    gen.run_until(now() + args.duration)
    closed = window.close(gen)
    measuring = False
    done = sum(c.completed for c in live)
    result = {
        "stored": stored[0],
        "fill_s": fill_s,
        "readers": len(live),
        "requests_per_s": done / closed["seconds"],
        "generator_cpu": closed["generator_cpu"],
        "server_cpu": closed.get("server_cpu"),
        "core_busy": closed["core_busy"],
        **latency(times),
        **gen.summary(),
    }
    gen.close_all()
    return result


SCENARIOS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "fanout": scenario_fanout,
    "rates": scenario_rates,
    "idle": scenario_idle,
    "slow": scenario_slow,
    "storm": scenario_storm,
    "bigroom": scenario_bigroom,
    "history": scenario_history,
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        help="an extra handshake header, 'Name: value'",
    )
    parser.add_argument(
        "--cookie-file",
        help="one Cookie header value per line; client i sends line i (mod lines)",
    )
    parser.add_argument("--proto", choices=[WS, SIO], default=WS)
    parser.add_argument("--server-pid", type=int, help="for RSS and CPU readings")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=200, help="opening")
    parser.add_argument("--connect-limit", type=float, default=60.0, help="seconds")
    parser.add_argument("--senders", type=int, default=10)
    parser.add_argument("--inflight", type=int, default=4)
    parser.add_argument("--text", type=int, default=100, help="characters")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--grace", type=float, default=3.0)
    parser.add_argument("--rates", default="10000,50000,100000")
    parser.add_argument("--rate", type=float, default=500.0, help="slow: msgs/s")
    parser.add_argument("--room-size", type=int, default=100, help="idle")
    parser.add_argument("--settle", type=float, default=1.0, help="idle")
    parser.add_argument("--messages", type=int, default=10000, help="history")
    parser.add_argument("--limit", type=int, default=100, help="history page")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    result = SCENARIOS[args.scenario](args)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
