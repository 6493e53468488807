"""What our seam over gevent-websocket costs and saves, next to the stock library.

    .venv/bin/python bench/seam.py

Starts ``chat.py`` (``--max-text 65000 --max-frame 70000``, rate limits out of
the way) and, for comparison, a stock gevent-websocket 0.10.1 echo server
(``WebSocketServer`` with a plain ``ws.receive()``/``ws.send()`` loop, as
test.py does it, no seam), then measures on each:

- the server's RSS before and after a header announcing 2**62 bytes, and
  after a 16 MiB message streamed to it;
- the time from sending a 64 KiB masked text frame (a chat ``message`` whose
  text is 60,000 characters) until its broadcast (or echo) is back, median of
  20 runs;
- the stall other clients see while one client uploads at the limit: a second
  client's WebSocket ping/pong round trips (p50/p99/max) during a loop of
  64 KiB uploads from the first (the uploader waits for each broadcast before
  the next; the pinger is not in the uploader's room).

A measurement script, not a test: it prints a table and asserts nothing.
Bounded: well under a minute (the stock 16 MiB echo is given at most 20 s).
The ``--stock-server`` mode is the comparison server itself, run as a child.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.rawws import (  # noqa: E402
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    RawWS,
    frame_bytes,
    mask_bytes,
    open_raw,
)
from tests.support import ServerProcess, run_server  # noqa: E402

MiB = 1 << 20
FRAME_SIZE = 64 * 1024
TEXT_CHARS = 60_000
RUNS = 20
STALL_SECONDS = 3.0
IDLE_PINGS = 200
STOCK_16MIB_TIMEOUT = 20.0
CHAT_FLAGS = (
    "--max-text",
    "65000",
    "--max-frame",
    "70000",
    "--rate",
    "1000",
    "--burst",
    "1000",
)

Row = tuple[str, str, str]


# -- the stock server (run as a child process) ----------------------------------


def stock_server(port: int) -> None:
    """gevent-websocket as it comes: WebSocketServer and an echo loop."""
    from geventwebsocket import WebSocketServer
    from geventwebsocket.exceptions import WebSocketError

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        ws = environ.get("wsgi.websocket")
        if ws is None:
            start_response("400 Bad Request", [("Content-Type", "text/plain")])
            return [b"WebSocket only\n"]
        try:
            while True:
                message = ws.receive()
                if message is None:
                    break
                ws.send(message)
        except WebSocketError:
            pass
        return []

    WebSocketServer(("127.0.0.1", port), app, log=None).serve_forever()


# -- measuring -----------------------------------------------------------------


def rss(server: ServerProcess) -> int:
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def mib(size: int) -> str:
    return f"{size / MiB:.1f} MiB"


def upload_frame(tag: str) -> bytes:
    """A masked text frame of exactly 64 KiB: a chat message whose text is
    60,000 characters (some of them two-byte, to reach the size)."""
    prefix = '{"type":"message","text":"'
    suffix = f'","client_id":"{tag}"}}'
    two_byte = FRAME_SIZE - len(prefix) - len(suffix) - TEXT_CHARS
    text = "é" * two_byte + "a" * (TEXT_CHARS - two_byte)
    payload = (prefix + text + suffix).encode()
    assert len(payload) == FRAME_SIZE and len(text) == TEXT_CHARS
    return frame_bytes(OP_TEXT, payload)


def wait_for_upload(ws: RawWS, tag: str, timeout: float = 10.0) -> None:
    """Read frames until the one carrying ``tag`` (broadcast or echo) is back."""
    marker = f'"client_id":"{tag}"'.encode()
    deadline = time.monotonic() + timeout
    while True:
        frame = ws.recv_frame(max(0.0, deadline - time.monotonic()))
        if frame.opcode == OP_CLOSE:
            raise ConnectionError(f"closed while waiting: {frame.payload[:60]!r}")
        if frame.opcode == OP_TEXT and marker in frame.payload:
            return


def connect(server: ServerProcess, chat: bool, room: str) -> RawWS:
    ws = open_raw(server.port, f"/ws?room={room}" if chat else "/ws")
    if chat:
        ws.read_greeting()
    return ws


def huge_header(server: ServerProcess, chat: bool) -> str:
    """Announce 2**62 bytes, send only the header; what did the server do?"""
    ws = connect(server, chat, "huge")
    try:
        started = time.monotonic()
        ws.send_frame(OP_TEXT, length_override=1 << 62)
        code = ws.expect_close(5.0)
        took = (time.monotonic() - started) * 1000
        return f"close {code if code != 1005 else '(no code)'} in {took:.1f} ms"
    except TimeoutError:
        return "no answer in 5 s"
    finally:
        ws.close()


def big_message(server: ServerProcess, chat: bool) -> str:
    """Stream a 16 MiB text message; wait for a close or an echo."""
    ws = connect(server, chat, "big")
    key = b"\x12\x34\x56\x78"
    chunk = mask_bytes(b"a" * (256 * 1024), key)  # a multiple of 4: same phase
    started = time.monotonic()
    try:
        ws.send_raw(frame_bytes(OP_TEXT, length_override=16 * MiB, key=key))
        ws.sock.settimeout(5.0)
        for _ in range(16 * MiB // len(chunk)):
            ws.sock.sendall(chunk)
    except OSError:
        pass  # cut off once refused
    deadline = started + STOCK_16MIB_TIMEOUT
    try:
        while True:
            frame = ws.recv_frame(max(0.0, deadline - time.monotonic()))
            took = time.monotonic() - started
            if frame.opcode == OP_CLOSE:
                code = int.from_bytes(frame.payload[:2], "big") or "(no code)"
                return f"close {code} after {took:.2f} s"
            if frame.opcode == OP_TEXT:
                return f"echoed {mib(len(frame.payload))} after {took:.2f} s"
    except TimeoutError:
        return f"no answer in {STOCK_16MIB_TIMEOUT:.0f} s"
    except EOFError:
        return "connection cut"
    finally:
        ws.close()


def upload_latency(server: ServerProcess, chat: bool) -> list[float]:
    """Seconds from sending a 64 KiB frame until it is back, RUNS times."""
    ws = connect(server, chat, "uploads")
    samples = []
    try:
        for run in range(RUNS):
            tag = f"lat-{run:06d}"
            data = upload_frame(tag)
            started = time.perf_counter()
            ws.send_raw(data)
            wait_for_upload(ws, tag)
            samples.append(time.perf_counter() - started)
    finally:
        ws.close()
    return samples


def ping_rtts(ws: RawWS, until: Callable[[], bool]) -> list[float]:
    """WebSocket ping/pong round trips, back to back, until ``until()``."""
    samples = []
    count = 0
    while not until():
        payload = f"p{count}".encode()
        count += 1
        started = time.perf_counter()
        ws.send_frame(OP_PING, payload)
        while True:
            frame = ws.recv_frame(10.0)
            if frame.opcode == OP_PONG and frame.payload == payload:
                break
        samples.append(time.perf_counter() - started)
        time.sleep(0.002)
    return samples


def stall(server: ServerProcess, chat: bool) -> tuple[list[float], list[float], int]:
    """Ping RTTs idle, then during STALL_SECONDS of back-to-back 64 KiB uploads."""
    pinger = connect(server, chat, "pinger")
    uploader = connect(server, chat, "uploader")
    idle_count = [0]

    def idle_done() -> bool:
        idle_count[0] += 1
        return idle_count[0] > IDLE_PINGS

    idle = ping_rtts(pinger, idle_done)
    stop = threading.Event()
    uploads = [0]
    failure: list[BaseException] = []

    def upload_loop() -> None:
        try:
            while not stop.is_set():
                tag = f"up-{uploads[0]:06d}"
                uploader.send_raw(upload_frame(tag))
                wait_for_upload(uploader, tag)
                uploads[0] += 1
        except BaseException as exc:  # reported, not raised in a thread
            failure.append(exc)

    thread = threading.Thread(target=upload_loop, daemon=True)
    thread.start()
    time.sleep(0.1)  # let the uploads get going
    end = time.monotonic() + STALL_SECONDS
    busy = ping_rtts(pinger, lambda: time.monotonic() > end or bool(failure))
    stop.set()
    thread.join(10.0)
    pinger.close()
    uploader.close()
    if failure:
        raise RuntimeError(f"the upload loop failed: {failure[0]!r}")
    return idle, busy, uploads[0]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def quantiles(samples: Iterable[float]) -> str:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"{ms(p50)} / {ms(p99)} / {ms(ordered[-1])}"


def measure(server: ServerProcess, chat: bool) -> dict[str, str]:
    out: dict[str, str] = {}
    out["rss start"] = mib(rss(server))
    out["huge"] = huge_header(server, chat)
    out["rss huge"] = mib(rss(server))
    out["big"] = big_message(server, chat)
    out["rss big"] = mib(rss(server))
    latencies = upload_latency(server, chat)
    out["latency"] = f"{ms(statistics.median(latencies))} (min {ms(min(latencies))})"
    idle, busy, uploads = stall(server, chat)
    out["idle"] = quantiles(idle)
    out["busy"] = quantiles(busy)
    out["uploads"] = f"{uploads / STALL_SECONDS:.0f}/s ({len(busy)} pings)"
    return out


LABELS = [
    ("rss start", "RSS at start"),
    ("huge", "header announcing 2**62 bytes"),
    ("rss huge", "RSS after it"),
    ("big", "16 MiB message, streamed"),
    ("rss big", "RSS after it"),
    ("latency", f"64 KiB frame -> back, median of {RUNS}"),
    ("idle", "ping RTT idle p50/p99/max"),
    ("busy", "ping RTT during uploads p50/p99/max"),
    ("uploads", "64 KiB uploads during the stall test"),
]


def print_table(rows: list[Row]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for index, row in enumerate(rows):
        print(
            "  ".join(
                cell.ljust(width) for cell, width in zip(row, widths, strict=True)
            )
        )
        if index == 0:
            print("  ".join("-" * width for width in widths))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stock-server", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.stock_server:
        stock_server(args.port)
        return 0
    started = time.monotonic()
    results: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory(prefix="seam-bench-") as tmp:
        with run_server(*CHAT_FLAGS, log_dir=Path(tmp)) as server:
            results["seam"] = measure(server, chat=True)
            tracebacks = server.log().count("Traceback")
        with run_server(
            "--stock-server", script="bench/seam.py", log_dir=Path(tmp)
        ) as server:
            results["stock"] = measure(server, chat=False)
    rows: list[Row] = [("", "chat.py (our seam)", "stock gevent-websocket 0.10.1")]
    rows += [(label, results["seam"][k], results["stock"][k]) for k, label in LABELS]
    print_table(rows)
    print(
        f"\nchat.py flags: {' '.join(CHAT_FLAGS)}; frames are masked with a random "
        f"key; tracebacks in chat.py's log: {tracebacks}; "
        f"total {time.monotonic() - started:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
