"""Upload throughput: MB/s and uploads/s through ``POST /upload``.

    .venv/bin/python bench/upload.py [--clients 4] [--seconds 10] [--repeats 3]

Starts ``chat.py`` (SQLite, a throw-away upload directory), takes an upload
token over a WebSocket like the page does, then ``--clients`` threads upload
over keep-alive HTTP connections for ``--seconds`` each scenario:

- ``1mb_file``: 1 MiB of random bytes (a plain file: streamed to disk,
  sniffed, renamed);
- ``small_image``: an 800×600 JPEG (~75 KB: decoded in full in a thread,
  thumbnail re-encoded).

Everything on loopback, the server on CPU 0 and the clients on CPU 1. A
measurement script, not a test: it prints a table, writes
bench/results/uploads.{json,md}, and asserts nothing.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402

from tests.support import connect, run_server  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def payloads() -> dict[str, tuple[bytes, str]]:
    # Photo-like: smooth gradients with some grain (~75 KB as JPEG).
    gradient = Image.linear_gradient("L").resize((800, 600))
    grain = Image.effect_noise((800, 600), 20)
    image = Image.merge(
        "RGB",
        (gradient, Image.blend(gradient, grain, 0.3), grain.point(lambda v: v // 2)),
    )
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return {
        "1mb_file": (os.urandom(1 << 20), "data.bin"),
        "small_image": (out.getvalue(), "photo.jpg"),
    }


def uploader(
    port: int, token: str, body: bytes, name: str, until: float, counts: list[int]
) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.connect()
    # Headers and body go out as two writes: without this, Nagle holds the
    # body until the server's delayed ACK of the headers (~40 ms), as no
    # browser would.
    connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    done = 0
    while time.monotonic() < until:
        connection.request(
            "POST",
            f"/upload?room=lobby&name={name}",
            body,
            {"X-Upload-Token": token},
        )
        response = connection.getresponse()
        response.read()
        if response.status != 201:
            raise RuntimeError(f"upload answered {response.status}")
        done += 1
    connection.close()
    counts.append(done)


def measure(
    port: int, token: str, body: bytes, name: str, clients: int, seconds: float
) -> dict[str, float]:
    counts: list[int] = []
    started = time.monotonic()
    until = started + seconds
    threads = [
        threading.Thread(target=uploader, args=(port, token, body, name, until, counts))
        for _ in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    uploads = sum(counts)
    return {
        "uploads_per_s": uploads / elapsed,
        "mb_per_s": uploads * len(body) / elapsed / (1 << 20),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.sched_setaffinity(0, {1})
    bodies = payloads()
    results: dict[str, list[dict[str, float]]] = {name: [] for name in bodies}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            with run_server(
                "--upload-dir",
                str(Path(tmp) / "uploads"),
                "--upload-quota",
                "1000G",
                "--log-level",
                "warning",
                log_dir=Path(tmp),
            ) as server:
                os.sched_setaffinity(server.proc.pid, {0})
                client = connect(server, name="bench")
                client.send(type="upload_token")
                token = client.recv_until("upload_token")["token"]
                for scenario, (body, name) in bodies.items():
                    results[scenario].append(
                        measure(
                            server.port, token, body, name, args.clients, args.seconds
                        )
                    )
                client.close()
            shutil.rmtree(Path(tmp) / "uploads", ignore_errors=True)
    summary = {
        scenario: {
            key: round(statistics.median(run[key] for run in runs), 1)
            for key in ("uploads_per_s", "mb_per_s")
        }
        for scenario, runs in results.items()
    }
    sizes = {scenario: len(body) for scenario, (body, _) in bodies.items()}
    lines = [
        f"Upload throughput: {args.clients} clients, {args.seconds:g} s per "
        f"scenario, median of {args.repeats} runs, loopback, server on one core",
        "",
        "| scenario | body | uploads/s | MB/s |",
        "|---|---|---|---|",
    ]
    for scenario, figures in summary.items():
        lines.append(
            f"| {scenario} | {sizes[scenario] / 1024:.0f} KiB | "
            f"{figures['uploads_per_s']} | {figures['mb_per_s']} |"
        )
    table = "\n".join(lines) + "\n"
    print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "uploads.md").write_text(table)
    (RESULTS / "uploads.json").write_text(
        json.dumps(
            {
                "clients": args.clients,
                "seconds": args.seconds,
                "sizes": sizes,
                "runs": results,
                "median": summary,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
