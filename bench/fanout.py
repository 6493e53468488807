"""Fan-out load: N clients in one room, S of them sending, deliveries counted.

    python bench/fanout.py --spawn                 # start chat.py pinned to core 0
    python bench/fanout.py --port 8000             # against a running server

Every client is a raw non-blocking socket driven by one selector loop, so the
generator stays cheap; it reports its own CPU share next to the result, so a
figure limited by the generator rather than the server is visible as such.
Each sender keeps ``--inflight`` messages outstanding and sends the next one
when its own echo arrives; the echo's round trip is the latency sample.

    python bench/fanout.py --spawn --react-every 5   # and again with reactions

With ``--react-every N`` the run is made twice, on a fresh server each time:
without reactions, then with every sender toggling a reaction on every Nth
of its own messages (its echo's id) besides sending the next one; each
toggle's ``reacted`` event goes to the whole room. Both results are printed,
deliveries counted with ``reacted`` frames apart.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import resource
import selectors
import socket
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MASK = b"\x00\x00\x00\x00"  # a zero mask keeps the payload as is (RFC 6455 5.3)


def client_frame(text: str) -> bytes:
    payload = text.encode()
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x81, 0x80 | length)
    else:
        header = struct.pack("!BBH", 0x81, 0x80 | 126, length)
    return header + MASK + payload


def upgrade(sock: socket.socket, port: int, target: str, origin: bool = False) -> bytes:
    """Send the opening handshake for ``target`` (a path and query) on a
    connected socket and read the answer; return any bytes that came after
    it. Raises ConnectionError unless the server answered 101."""
    key = base64.b64encode(os.urandom(16)).decode()
    extra = f"Origin: http://127.0.0.1:{port}\r\n" if origin else ""
    sock.sendall(
        f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"{extra}\r\n".encode()
    )
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed during the handshake")
        answer += chunk
    head, _, early = answer.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(head.split(b"\r\n", 1)[0].decode("latin-1"))
    return early


def handshake(port: int, query: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    upgrade(sock, port, f"/ws?{query}", origin=True)
    sock.setblocking(False)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class Peer:
    __slots__ = (
        "sock",
        "buffer",
        "received",
        "sender",
        "marker",
        "sent",
        "rtts",
        "echoes",
    )

    def __init__(self, sock: socket.socket, rest: bytes, sender: int | None):
        self.sock = sock
        self.buffer = bytearray(rest)
        self.received = 0
        self.sender = sender
        self.marker = f'"client_id":"s{sender}-'.encode() if sender is not None else b""
        self.sent = 0
        self.rtts: list[float] = []
        self.echoes = 0

    def frames(self) -> list[bytes]:
        """Complete frame payloads in the buffer; the rest stays buffered."""
        out = []
        buf = self.buffer
        pos = 0
        while len(buf) - pos >= 2:
            length = buf[pos + 1] & 0x7F
            head = 2
            if length == 126:
                if len(buf) - pos < 4:
                    break
                length = struct.unpack_from("!H", buf, pos + 2)[0]
                head = 4
            elif length == 127:
                if len(buf) - pos < 10:
                    break
                length = struct.unpack_from("!Q", buf, pos + 2)[0]
                head = 10
            if len(buf) - pos < head + length:
                break
            out.append(bytes(buf[pos + head : pos + head + length]))
            pos += head + length
        del buf[:pos]
        return out


def send_next(peer: Peer, started: dict[str, float]) -> None:
    client_id = f"s{peer.sender}-{peer.sent}"
    started[client_id] = time.perf_counter()
    peer.sent += 1
    peer.sock.send(
        client_frame(
            json.dumps({"type": "message", "text": "x" * 100, "client_id": client_id})
        )
    )


REACTED = b'{"type":"reacted"'


def toggle_reaction(peer: Peer, message_id: int) -> None:
    frame = {"type": "react", "room": "bench", "id": message_id, "emoji": "👍"}
    peer.sock.send(client_frame(json.dumps(frame)))


def run_load(
    port: int,
    clients: int,
    senders: int,
    inflight: int,
    warmup: float,
    duration: float,
    react_every: int = 0,
) -> dict[str, float]:
    selector = selectors.DefaultSelector()
    peers = []
    for index in range(clients):
        sender = index if index < senders else None
        sock = handshake(port, f"name=bench{index}&room=bench")
        peer = Peer(sock, b"", sender)
        peers.append(peer)
        selector.register(sock, selectors.EVENT_READ, peer)
    time.sleep(0.5)
    for peer in peers:  # discard welcome, snapshots and join events
        with contextlib.suppress(BlockingIOError):
            while peer.sock.recv(1 << 20):
                pass
    started: dict[str, float] = {}
    for peer in peers[:senders]:
        for _ in range(inflight):
            send_next(peer, started)
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    measure_from = t0 + warmup
    end = measure_from + duration
    counted = reacted = toggles = 0
    measuring = False
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        if not measuring and now >= measure_from:
            measuring = True
            counted = reacted = toggles = 0
            cpu0 = time.process_time()
            for peer in peers:
                peer.rtts.clear()
                peer.sent = peer.sent  # keep ids unique across the warm-up
            sent_at_start = [p.sent for p in peers[:senders]]
        for key, _ in selector.select(timeout=0.1):
            peer = key.data
            try:
                chunk = peer.sock.recv(1 << 18)
            except BlockingIOError:
                continue
            if not chunk:
                raise ConnectionError("the server closed a client")
            peer.buffer += chunk
            for payload in peer.frames():
                counted += 1
                if payload.startswith(REACTED):
                    reacted += 1
                elif peer.marker and peer.marker in payload:
                    echo = json.loads(payload)
                    peer.rtts.append(
                        time.perf_counter() - started.pop(echo["client_id"])
                    )
                    send_next(peer, started)
                    peer.echoes += 1
                    if react_every and peer.echoes % react_every == 0:
                        toggle_reaction(peer, echo["id"])
                        toggles += 1
    cpu = time.process_time() - cpu0
    rtts = sorted(r for p in peers[:senders] for r in p.rtts)
    served = [p.sent - s for p, s in zip(peers[:senders], sent_at_start, strict=True)]
    for peer in peers:
        peer.sock.close()
    return {
        "deliveries_per_s": counted / duration,
        "reacted_per_s": reacted / duration,
        "toggles_per_s": toggles / duration,
        "p50_ms": 1000 * statistics.median(rtts) if rtts else float("nan"),
        "p99_ms": 1000 * rtts[int(len(rtts) * 0.99)] if rtts else float("nan"),
        "fairness": min(served) / max(served) if max(served) else 0.0,
        "generator_cpu": cpu / duration,
    }


def wait_for_port(
    port: int, server: subprocess.Popen[bytes], limit: float = 30.0
) -> None:
    """Until the spawned server accepts connections (it may start slowly on a
    busy machine); raise if it exits or takes longer than ``limit`` s."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}")
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port)),
        ):
            return
        time.sleep(0.1)
    raise RuntimeError(f"the server did not listen on {port} within {limit:g} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--spawn", action="store_true", help="start chat.py on --port, pinned to CPU 0"
    )
    parser.add_argument(
        "--db",
        default=":memory:",
        help="--db for the spawned server (a path for SQLite)",
    )
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--senders", type=int, default=10)
    parser.add_argument("--inflight", type=int, default=4)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument(
        "--react-every",
        type=int,
        default=0,
        help="run again with each sender toggling a reaction every N messages",
    )
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    for react_every in [0, args.react_every] if args.react_every else [0]:
        result = measure(args, react_every)
        label = {"react_every": react_every} if args.react_every else {}
        print(json.dumps(label | {k: round(v, 3) for k, v in result.items()}))
    return 0


def measure(args: argparse.Namespace, react_every: int) -> dict[str, float]:
    """One run, on a fresh server when ``--spawn``."""
    server = None
    if args.spawn:
        if args.db != ":memory:":
            for suffix in ("", "-wal", "-shm"):  # a fresh file each run
                with contextlib.suppress(FileNotFoundError):
                    os.remove(args.db + suffix)
        server = subprocess.Popen(
            [
                "taskset",
                "-c",
                "0",
                sys.executable,
                str(ROOT / "chat.py"),
                "--host",
                "127.0.0.1",
                "--port",
                str(args.port),
                "--rate",
                "1e9",
                "--burst",
                "1000000000",
                "--log-level",
                "warning",
                "--db",
                args.db,
                "--max-conn-per-ip",
                "0",
            ],
        )
        wait_for_port(args.port, server)
        os.sched_setaffinity(0, {1})
    try:
        return run_load(
            args.port,
            args.clients,
            args.senders,
            args.inflight,
            args.warmup,
            args.duration,
            react_every,
        )
    finally:
        if server:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    sys.exit(main())
