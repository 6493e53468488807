"""Handshakes per second, and the server's CPU per handshake, side by side.

    .venv/bin/python bench/handshakes.py [--clients 3000] [--repeats 5]
        [--baseline DIR]   # also an older checkout of this chat (say, git archive)

Opens ``--clients`` idle WebSockets in rooms of 100, 200 at a time, with
bench/loadgen.py's idle scenario (the one bench/run.py runs), against our
chat (SQLite), Node's ``ws`` and the tutorial chat (wheezy + gevent-websocket),
each started fresh and pinned to CPU 0 with the generator on CPU 1, in
alternating order, ``--repeats`` times. Reports medians with their spread:
handshakes per second until every welcome, and the server's CPU time per
handshake while the clients connected (user and system, the joins' presence
fan-out included), the steadier figure on a shared machine.

A measurement script, not a test: it prints a table and asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVER_CPU, GENERATOR_CPU = "0", "1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def chat(root: Path, tmp: Path, port: int) -> list[str]:
    db = tmp / f"chat-{port}.db"
    return [
        sys.executable,
        str(root / "chat.py"),
        *("--host", "127.0.0.1", "--port", str(port), "--db", str(db)),
        *("--rate", "1e9", "--burst", "1000000000", "--max-conn-per-ip", "0"),
        *("--log-level", "warning"),
    ]


def node_ws(port: int) -> list[str]:
    server = ROOT / "bench" / "peers" / "node_ws" / "server.js"
    node = shutil.which("node") or "node"
    return [node, str(server), "--host", "127.0.0.1", "--port", str(port)]


def naive(port: int) -> list[str]:
    script = ROOT / "bench" / "peers" / "naive_wheezy.py"
    return [sys.executable, str(script), "--host", "127.0.0.1", "--port", str(port)]


@contextlib.contextmanager
def serving(command: list[str], port: int, log: Path) -> Iterator[int]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, *command],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{command[1]} did not start: see {log}")
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            time.sleep(0.05)
        time.sleep(0.5)
        yield proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def one_run(command: list[str], port: int, clients: int, log: Path) -> dict:
    with serving(command, port, log) as pid:
        done = subprocess.run(
            ["taskset", "-c", GENERATOR_CPU, sys.executable]
            + [str(ROOT / "bench" / "loadgen.py"), "idle", "--port", str(port)]
            + ["--server-pid", str(pid), "--clients", str(clients)]
            + ["--room-size", "100", "--concurrency", "200", "--settle", "0.2"],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["connected"] != clients:
        raise RuntimeError(f"only {result['connected']} of {clients} connected")
    return result


def spread(values: list[float], fmt: str) -> str:
    median = statistics.median(values)
    return f"{median:{fmt}} [{min(values):{fmt}}–{max(values):{fmt}}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--baseline", type=Path, help="an older checkout to compare")
    args = parser.parse_args()
    runs: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        kinds = {"ours": lambda port: chat(ROOT, tmp, port)}
        if args.baseline:
            kinds["ours (baseline)"] = lambda port: chat(args.baseline, tmp, port)
        kinds["node_ws"] = node_ws
        kinds["naive_wheezy"] = naive
        names = list(kinds)
        for rep in range(args.repeats):
            shift = rep % len(names)
            for name in names[shift:] + names[:shift]:
                port = free_port()
                log = tmp / f"{name.split()[0]}-{port}.log"
                result = one_run(kinds[name](port), port, args.clients, log)
                runs.setdefault(name, []).append(result)
                print(
                    f"{name}: {result['handshakes_per_s']:.0f}/s, "
                    f"{result['server_cpu_ms_per_handshake']:.3f} ms CPU each",
                    file=sys.stderr,
                    flush=True,
                )
    node = statistics.median(r["handshakes_per_s"] for r in runs["node_ws"])
    print(
        f"\n{args.clients} idle clients in rooms of 100, opened 200 at a time; "
        f"medians of {args.repeats} alternated runs [min–max]\n"
    )
    print("| server | handshakes/s | server CPU per handshake (ms) | ÷ node_ws rate |")
    print("|---|---|---|---|")
    for name, results in runs.items():
        rates = [r["handshakes_per_s"] for r in results]
        cpu = [r["server_cpu_ms_per_handshake"] for r in results]
        ratio = statistics.median(rates) / node
        print(
            f"| {name} | {spread(rates, '.0f')} | {spread(cpu, '.3f')} | {ratio:.2f} |"
        )


if __name__ == "__main__":
    main()
