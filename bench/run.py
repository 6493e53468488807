"""Benchmark our chat server against its peers, side by side, in one run.

    python bench/run.py                  # everything: ~25 minutes on 2 cores
    python bench/run.py --quick          # a smoke run of every scenario: ~3 minutes
    python bench/run.py --only fanout    # some scenarios (comma-separated)
    python bench/run.py --servers ours,node_ws --repeats 1

Installs what it needs on first use (bench/.venv-peers from
requirements-bench.pip, and bench/peers/node_ws/node_modules from its lock
file), then re-runs itself inside that venv. Every measurement starts a fresh
server pinned to CPU 0 and the load generator pinned to CPU 1, both with
``taskset -c``. The generator is bench/loadgen_c/loadgen.c (compiled with gcc
into bench/.build/ when its source changes) for fan-out and latency on plain
WebSocket servers, bench/loadgen.py for the rest; ``--generator py`` uses
loadgen.py throughout. Results: a markdown table on stdout and in
bench/results/latest.md, the raw figures in bench/results/latest.json, and
bench/results/latency.png (throughput and p99 latency against offered load).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV = BENCH / ".venv-peers"
NODE_DIR = BENCH / "peers" / "node_ws"
RESULTS = BENCH / "results"
LOGS = RESULTS / "logs"
REQUIREMENTS = ROOT / "requirements-bench.pip"
SERVER_CPU, GENERATOR_CPU = "0", "1"
GENERATOR_BOUND = 0.85  # share of its core above which the generator limits
QUIET = 0.15  # other load on a core below which a measurement may start
NOISY = 0.25  # other load on a core during a window that marks the figure


# -- environment ----------------------------------------------------------------


def venv_python() -> Path:
    return VENV / "bin" / "python"


def digest(*paths: Path) -> str:
    h = hashlib.sha256()
    for path in paths:
        h.update(path.read_bytes())
    return h.hexdigest()


def ensure_python_env() -> None:
    """bench/.venv-peers with requirements-bench.pip, reinstalled when it changes."""
    if not venv_python().exists():
        print(f"creating {VENV.relative_to(ROOT)} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    stamp = VENV / ".requirements.sha256"
    wanted = digest(REQUIREMENTS, ROOT / "requirements.pip")
    if stamp.exists() and stamp.read_text() == wanted:
        return
    print("installing requirements-bench.pip ...", file=sys.stderr)
    subprocess.run(
        [str(venv_python()), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)],
        check=True,
    )
    stamp.write_text(wanted)


def ensure_node_env() -> str | None:
    """node_modules for the ws peer, from its lock file; None when impossible."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        return "node or npm is not installed"
    stamp = NODE_DIR / "node_modules" / ".lock.sha256"
    wanted = digest(NODE_DIR / "package-lock.json")
    if stamp.exists() and stamp.read_text() == wanted:
        return None
    print("installing bench/peers/node_ws (npm ci) ...", file=sys.stderr)
    done = subprocess.run(
        [npm, "ci", "--prefix", str(NODE_DIR), "--no-audit", "--no-fund"],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        return "npm ci failed: " + done.stderr.strip()[-300:]
    stamp.write_text(wanted)
    return None


def in_bench_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


# -- servers --------------------------------------------------------------------


@dataclass(frozen=True)
class ServerKind:
    name: str
    label: str
    proto: str  # "ws" or "sio" (socket.io: Engine.IO v4 framing)
    command: Callable[[int], list[str]]
    cpus: str = SERVER_CPU  # taskset's CPU list for the server (and its Redis)
    redis: bool = False  # needs a redis-server: its URL is CHAT_REDIS_URL
    # Asked for by name only (--servers), not part of a default run.
    extra: bool = False


def python_peer(script: str) -> Callable[[int], list[str]]:
    def command(port: int) -> list[str]:
        path = BENCH / "peers" / script
        return [sys.executable, str(path), "--host", "127.0.0.1", "--port", str(port)]

    return command


def ours(port: int) -> list[str]:
    """Every feature on, history in a fresh SQLite file (the default store);
    only the per-client limits are lifted, since every client is local."""
    db = LOGS / f"ours-{port}.db"
    LOGS.mkdir(parents=True, exist_ok=True)
    for stale in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        stale.unlink(missing_ok=True)
    return [
        sys.executable,
        str(ROOT / "chat.py"),
        *("--host", "127.0.0.1", "--port", str(port), "--db", str(db)),
        *("--rate", "1e9", "--burst", "1000000000", "--max-conn-per-ip", "0"),
        *("--log-level", "warning"),
    ]


def ours_redis(port: int) -> list[str]:
    """One chat process on Redis (CHAT_REDIS_URL, set by ``running``)."""
    return [
        sys.executable,
        str(ROOT / "chat.py"),
        *("--host", "127.0.0.1", "--port", str(port)),
        *("--rate", "1e9", "--burst", "1000000000", "--max-conn-per-ip", "0"),
        *("--log-level", "warning"),
    ]


def ours_gunicorn(workers: int) -> Callable[[int], list[str]]:
    """``workers`` chat processes behind gunicorn on one port, on Redis."""

    def command(port: int) -> list[str]:
        return [
            sys.executable,
            *("-m", "gunicorn", "--no-control-socket", "-w", str(workers)),
            *("-k", "chatcore.gunicorn_worker.ChatWorker"),
            *("-b", f"127.0.0.1:{port}", "--log-level", "warning", "chat:app()"),
        ]

    return command


# What ours_redis and ours_gunicorn take from the environment: the same
# lifted limits as ``ours`` (gunicorn's workers read CHAT_* only).
OURS_ENV = {
    "CHAT_RATE": "1e9",
    "CHAT_BURST": "1000000000",
    "CHAT_MAX_CONN_PER_IP": "0",
    "CHAT_LOG_LEVEL": "warning",
}


def node_ws(port: int) -> list[str]:
    node = shutil.which("node") or "node"
    return [
        node,
        str(NODE_DIR / "server.js"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]


SERVERS = [
    ServerKind("ours", "ours (chat.py)", "ws", ours),
    ServerKind(
        "naive_wheezy", "naive wheezy+gevent-ws", "ws", python_peer("naive_wheezy.py")
    ),
    ServerKind(
        "socketio_gevent",
        "python-socketio gevent",
        "sio",
        python_peer("socketio_gevent.py"),
    ),
    ServerKind(
        "websockets", "websockets asyncio", "ws", python_peer("websockets_asyncio.py")
    ),
    ServerKind("node_ws", "node ws", "ws", node_ws),
    ServerKind("aiohttp", "aiohttp", "ws", python_peer("aiohttp_ws.py")),
    # More cores (--servers ours_redis1,ours_gunicorn2): one process on Redis
    # pinned to CPU 0, and two gunicorn workers on Redis over both CPUs (the
    # generator's included: this is a 2-core machine).
    ServerKind(
        "ours_redis1",
        "ours, 1 process on Redis",
        "ws",
        ours_redis,
        redis=True,
        extra=True,
    ),
    ServerKind(
        "ours_gunicorn2",
        "ours, gunicorn -w 2 on Redis",
        "ws",
        ours_gunicorn(2),
        cpus="0,1",
        redis=True,
        extra=True,
    ),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[bytes], limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} at start")
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=0.5),
        ):
            return
        time.sleep(0.05)
    raise RuntimeError(f"the server did not listen on {port} within {limit:.0f} s")


def wait_ready(port: int, proc: subprocess.Popen[bytes], limit: float) -> None:
    """Wait for /readyz to answer 200 ten times in a row: gunicorn's master
    listens before its workers have built their chat."""
    deadline = time.monotonic() + limit
    streak = 0
    while streak < 10:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the server did not become ready")
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/readyz", timeout=2.0
            ) as answer:
                streak = streak + 1 if answer.status == 200 else 0
        except OSError:
            streak = 0
            time.sleep(0.1)


@contextlib.contextmanager
def redis_server(cpus: str, log_path: Path) -> Iterator[str]:
    """A fresh, empty redis-server on a free port (no persistence), pinned
    like the server it serves; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed")
    port = free_port()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            ["taskset", "-c", cpus, binary, "--port", str(port)]
            + ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_listening(port, proc, 10.0)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait()


@contextlib.contextmanager
def running(kind: ServerKind, log_path: Path) -> Iterator[tuple[int, int]]:
    """A fresh server pinned to its CPUs (CPU 0 but for ours_gunicorn2), with
    a fresh Redis if it needs one; yields (port, pid); stops it after."""
    with contextlib.ExitStack() as stack:
        env = None
        if kind.redis:
            url = stack.enter_context(
                redis_server(kind.cpus, log_path.with_suffix(".redis.log"))
            )
            env = {**os.environ, **OURS_ENV, "CHAT_REDIS_URL": url}
        yield stack.enter_context(_server(kind, log_path, env))


@contextlib.contextmanager
def _server(
    kind: ServerKind, log_path: Path, env: dict[str, str] | None
) -> Iterator[tuple[int, int]]:
    port = free_port()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            ["taskset", "-c", kind.cpus, *kind.command(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env=env,
        )
        try:
            wait_listening(port, proc, 30.0)
            time.sleep(0.3)  # let it finish starting (imports after listen)
            if kind.redis:
                wait_ready(port, proc, 30.0)
            yield port, proc.pid
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10.0 if kind.redis else 3.0)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def log_findings(path: Path) -> dict[str, int]:
    """Count tracebacks, errors and warnings a server logged during a run."""
    text = path.read_text("utf-8", "replace") if path.exists() else ""
    return {
        "tracebacks": text.count("Traceback (most recent call last)"),
        "error_lines": sum(1 for line in text.splitlines() if "ERROR" in line),
        "warning_lines": sum(1 for line in text.splitlines() if "WARNING" in line),
    }


def core_ticks() -> dict[str, int]:
    """Ticks each core spent running tasks so far (as bench/loadgen.py counts)."""
    busy = {}
    with open("/proc/stat") as f:
        for line in f:
            name, *ticks = line.split()
            if name.startswith("cpu") and name != "cpu":
                v = [int(t) for t in ticks]
                busy[name] = v[0] + v[1] + v[2] + v[7]
    return busy


def other_load(seconds: float = 0.5) -> float:
    """How busy the busier of cores 0 and 1 is, with nothing of ours running."""
    before = core_ticks()
    time.sleep(seconds)
    after = core_ticks()
    hz = os.sysconf("SC_CLK_TCK")
    return max(
        (after[c] - before[c]) / hz / seconds for c in ("cpu0", "cpu1") if c in after
    )


def wait_for_quiet(limit: float) -> float:
    """Wait up to ``limit`` seconds for other work to leave the two cores."""
    deadline = time.monotonic() + limit
    load = other_load()
    while load > QUIET and time.monotonic() < deadline:
        load = other_load()
    return load


# -- scenarios ------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    key: str  # unique, e.g. fanout1000
    group: str  # for --only, e.g. fanout
    title: str
    args: list[str]
    limit: float  # seconds before the generator is stopped
    only: tuple[str, ...] = ()  # servers it applies to; () for all


def scenarios(quick: bool) -> list[Scenario]:
    """Every scenario with its parameters, full or --quick."""
    short = ["--warmup", "0.5", "--duration", "1.5"] if quick else []
    idle = 1000 if quick else 10000
    idle_large = 2000 if quick else 19000
    storm = 500 if quick else 2000
    big = 2000 if quick else 10000
    return [
        Scenario(
            "fanout100",
            "fanout",
            "fanout, C=100 (10 senders, 4 in flight each)",
            ["fanout", "--clients", "100", *short],
            60,
        ),
        Scenario(
            "fanout1000",
            "fanout",
            "fanout, C=1000 (10 senders, 4 in flight each)",
            ["fanout", "--clients", "1000", *short],
            120,
        ),
        Scenario(
            "latency",
            "latency",
            "latency at offered load, C=1000 (10 senders, open loop)",
            [
                "rates",
                "--clients",
                "1000",
                "--rates",
                "10000,50000,100000",
                *(["--grace", "1.5"] if quick else []),
                *short,
            ],
            180,
        ),
        Scenario(
            "idle",
            "idle",
            f"idle, {idle} connections (rooms of 100, opened 200 at a time)",
            ["idle", "--clients", str(idle), "--concurrency", "200"],
            150,
        ),
        Scenario(
            "idle_large",
            "idle_large",
            f"idle, {idle_large} connections (ours only: what one process may "
            "hold under this machine's open-file limit; opened 500 at a time)",
            [
                *("idle", "--clients", str(idle_large), "--concurrency", "500"),
                *("--connect-limit", "300", "--settle", "3"),
            ],
            600,
            only=("ours",),
        ),
        Scenario(
            "slow",
            "slow",
            "slow reader, C=50 + 1 that stops reading "
            "(10 senders, 300 msgs/s of 1.9 kB)",
            [
                "slow",
                *("--clients", "50", "--rate", "300", "--text", "1900"),
                *("--duration", "6" if quick else "15", "--grace", "3"),
            ],
            90,
        ),
        Scenario(
            "storm",
            "storm",
            f"join storm, {storm} clients connecting at once into one room",
            ["storm", "--clients", str(storm)],
            90,
        ),
        Scenario(
            "bigroom",
            "bigroom",
            f"one big room, {big} clients joining it (opened 200 at a time)",
            ["bigroom", "--clients", str(big), "--concurrency", "200"],
            300,
        ),
        Scenario(
            "history",
            "history",
            "history paging (ours only): limit 100, room of 10,000 messages",
            [
                "history",
                *("--messages", "2000" if quick else "10000"),
                *("--clients", "10", "--inflight", "1", *short),
            ],
            120,
            only=("ours",),
        ),
    ]


# -- load generators --------------------------------------------------------------

C_SOURCE = BENCH / "loadgen_c" / "loadgen.c"
C_BINARY = BENCH / ".build" / "loadgen"
C_SCENARIOS = ("fanout", "rates")  # what the C generator runs (plain WebSocket)


def build_c_generator() -> Path | None:
    """bench/.build/loadgen, compiled from bench/loadgen_c/loadgen.c when it is
    missing or older than its source; None (and why, on stderr) if impossible."""
    if not C_SOURCE.exists():
        return None
    if C_BINARY.exists() and C_BINARY.stat().st_mtime >= C_SOURCE.stat().st_mtime:
        return C_BINARY
    if shutil.which("gcc") is None:
        print("run.py: gcc not found: the Python generator only", file=sys.stderr)
        return None
    C_BINARY.parent.mkdir(exist_ok=True)
    source, binary = (str(p.relative_to(ROOT)) for p in (C_SOURCE, C_BINARY))
    command = ["gcc", "-O2", "-Wall", "-Wextra", "-o", binary, source]
    print(" ".join(command), file=sys.stderr)
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.stderr.strip():
        print(done.stderr.strip(), file=sys.stderr)
    if done.returncode != 0:
        print("run.py: the C generator did not build", file=sys.stderr)
        return None
    return C_BINARY


def generator(
    kind: ServerKind, scenario: Scenario, c_binary: Path | None
) -> tuple[str, list[str]]:
    """Which generator runs a measurement ("c" or "py"), and its command: the C
    one where it can (plain WebSocket, fanout and rates), else loadgen.py."""
    if c_binary and kind.proto == "ws" and scenario.args[0] in C_SCENARIOS:
        return "c", [str(c_binary)]
    return "py", [sys.executable, str(BENCH / "loadgen.py")]


def generators_used(results: dict[str, dict[str, list[dict[str, Any]]]]) -> str:
    """For the results header: which generator measured what."""
    names = {"c": "C (bench/loadgen_c)", "py": "Python (bench/loadgen.py)"}
    parts = []
    for scenario, by_server in results.items():
        used: dict[str, set[str]] = {}
        for server, runs in by_server.items():
            for run in runs:
                used.setdefault(run.get("generator", "py"), set()).add(server)
        if len(used) == 1:
            parts.append(f"{scenario}: {names[next(iter(used))]}")
        else:
            parts.append(
                f"{scenario}: {names['c']}, "
                f"{names['py']} for {', '.join(sorted(used.get('py', ())))}"
            )
    return "; ".join(parts)


def run_one(
    kind: ServerKind,
    scenario: Scenario,
    rep: int,
    quiet_wait: float,
    c_binary: Path | None = None,
) -> dict[str, Any]:
    """One measurement: a fresh server, the generator, the server stopped."""
    LOGS.mkdir(parents=True, exist_ok=True)
    log_path = LOGS / f"{scenario.key}-{kind.name}-{rep}.log"
    out: dict[str, Any] = {"server": kind.name, "scenario": scenario.key, "rep": rep}
    out["generator"], program = generator(kind, scenario, c_binary)
    out["other_load_before"] = wait_for_quiet(quiet_wait)
    try:
        with running(kind, log_path) as (port, pid):
            command = [
                "taskset",
                "-c",
                GENERATOR_CPU,
                *program,
                *scenario.args,
                *("--port", str(port), "--proto", kind.proto, "--server-pid", str(pid)),
            ]
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=scenario.limit
            )
            if done.returncode != 0:
                out["failed"] = "generator: " + (done.stderr.strip()[-400:] or "?")
            else:
                out["result"] = json.loads(done.stdout.strip().splitlines()[-1])
    except subprocess.TimeoutExpired:
        out["failed"] = f"no result within {scenario.limit:.0f} s"
    except (RuntimeError, ValueError, IndexError) as exc:
        out["failed"] = str(exc)
    out["log"] = log_findings(log_path)
    if "result" in out:
        out["interference"] = interference(out["result"])
    return out


def interference(result: dict[str, Any]) -> float:
    """The largest share of core 0 or 1 used during a measurement window by
    anything but the server (on 0) and the generator (on 1)."""
    worst = 0.0
    for w in [result, *result.get("levels", [])]:
        cores = w.get("core_busy")
        if cores:
            worst = max(
                worst,
                cores.get("cpu0", 0) - w.get("server_cpu", 0),
                cores.get("cpu1", 0) - w.get("generator_cpu", 0),
            )
    return worst


# -- figures --------------------------------------------------------------------

HIGHER, LOWER = "higher", "lower"
Pick = Callable[[dict[str, Any]], float | None]


def key(name: str) -> Pick:
    return lambda result: result.get(name)


def level(index: int, name: str) -> Pick:
    """A number from one offered load of the latency scenario."""

    def pick(result: dict[str, Any]) -> float | None:
        levels = result.get("levels", [])
        if index >= len(levels):
            return None
        value = levels[index].get(name)
        if name == "keeps_up":
            return 1.0 if value else 0.0
        if name == "achieved":
            return value / levels[index]["offered"]
        return value

    return pick


@dataclass(frozen=True)
class Figure:
    """One row of the table: a number pulled out of each run of a scenario."""

    scenario: str
    label: str
    pick: Pick
    better: str | None  # HIGHER or LOWER is better; None: no ratio
    fmt: Callable[[float], str]
    cpu: Pick | None = field(default=key("generator_cpu"))  # None: never marked


def si(value: float) -> str:
    for limit, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}"


def ms(value: float) -> str:
    return f"{value:.3g} ms" if value < 1000 else f"{value / 1000:.3g} s"


def pct(value: float) -> str:
    return f"{100 * value:.0f}%"


def kib(value: float) -> str:
    return f"{value / 1024:.3g} KiB"


def mib(value: float) -> str:
    return f"{value / 2**20:.3g} MiB"


def secs(value: float) -> str:
    return f"{value:.3g} s"


def plain(value: float) -> str:
    return f"{value:.3g}"


def slow_growth(result: dict[str, Any]) -> float | None:
    if result.get("rss_max") is None or result.get("rss_start") is None:
        return None
    return float(result["rss_max"] - result["rss_start"])


RATES = ("10k", "50k", "100k")


def figures() -> list[Figure]:
    rows: list[Figure] = []
    for s in ("fanout100", "fanout1000"):
        rows += [
            Figure(s, "deliveries/s", key("deliveries_per_s"), HIGHER, si),
            Figure(
                s, "fairness (least/most served sender)", key("fairness"), HIGHER, plain
            ),
            Figure(s, "round trip p50", key("p50_ms"), LOWER, ms),
            Figure(s, "round trip p99", key("p99_ms"), LOWER, ms),
            Figure(s, "server CPU", key("server_cpu"), None, pct, None),
            Figure(s, "generator CPU", key("generator_cpu"), None, pct),
        ]
    for i, offered in enumerate(RATES):
        cpu = level(i, "generator_cpu")
        rows += [
            Figure(
                "latency",
                f"{offered}/s offered: achieved/offered",
                level(i, "achieved"),
                HIGHER,
                plain,
                cpu,
            ),
            Figure(
                "latency",
                f"{offered}/s offered: keeps up (share of runs)",
                level(i, "keeps_up"),
                None,
                pct,
                None,
            ),
            Figure(
                "latency",
                f"{offered}/s offered: send→echo p50",
                level(i, "p50_ms"),
                LOWER,
                ms,
                cpu,
            ),
            Figure(
                "latency",
                f"{offered}/s offered: send→echo p99",
                level(i, "p99_ms"),
                LOWER,
                ms,
                cpu,
            ),
            Figure(
                "latency",
                f"{offered}/s offered: server CPU",
                level(i, "server_cpu"),
                None,
                pct,
                None,
            ),
            Figure(
                "latency", f"{offered}/s offered: generator CPU", cpu, None, pct, cpu
            ),
        ]
    rows += [
        Figure("idle", "connected", key("connected"), None, plain, None),
        Figure("idle", "RSS per connection", key("rss_per_conn"), LOWER, kib, None),
        Figure(
            "idle",
            "handshakes/s (until welcome)",
            key("handshakes_per_s"),
            HIGHER,
            si,
            None,
        ),
        Figure("idle_large", "connected", key("connected"), None, plain, None),
        Figure(
            "idle_large", "RSS per connection", key("rss_per_conn"), LOWER, kib, None
        ),
        Figure("idle_large", "time to connect all", key("connect_s"), None, secs),
        Figure("slow", "others' delivery ratio", key("delivery_ratio"), HIGHER, plain),
        Figure(
            "slow", "server RSS growth (max − start)", slow_growth, LOWER, mib, None
        ),
        Figure(
            "slow",
            "server RSS growth in the last third",
            key("rss_growth_last_third"),
            None,
            mib,
            None,
        ),
        Figure("slow", "generator CPU", key("generator_cpu"), None, pct),
        Figure("storm", "all welcomed after", key("all_welcomed_s"), LOWER, secs, None),
        Figure("storm", "welcome p50", key("p50_ms"), LOWER, ms, None),
        Figure("storm", "welcome p99", key("p99_ms"), LOWER, ms, None),
        Figure("storm", "connected", key("connected"), None, plain, None),
        Figure(
            "bigroom",
            "handshakes/s (until welcome)",
            key("handshakes_per_s"),
            HIGHER,
            si,
            None,
        ),
        Figure(
            "bigroom", "all welcomed after", key("all_welcomed_s"), LOWER, secs, None
        ),
        Figure(
            "bigroom",
            "presence settled after",
            key("settled_s"),
            LOWER,
            secs,
            None,
        ),
        Figure("bigroom", "server CPU time", key("server_cpu_s"), LOWER, secs, None),
        Figure("bigroom", "server RSS after", key("rss_after"), LOWER, mib, None),
        Figure(
            "bigroom",
            "frames per client besides messages",
            key("frames_per_client"),
            LOWER,
            plain,
            None,
        ),
        Figure("bigroom", "connected", key("connected"), None, plain, None),
        Figure("history", "requests/s", key("requests_per_s"), HIGHER, si),
        Figure("history", "p50", key("p50_ms"), LOWER, ms),
        Figure("history", "p99", key("p99_ms"), LOWER, ms),
        Figure("history", "server CPU", key("server_cpu"), None, pct, None),
        Figure("history", "generator CPU", key("generator_cpu"), None, pct),
    ]
    return rows


# -- aggregation and the table ----------------------------------------------------


@dataclass
class Cell:
    values: list[float]
    bound: bool  # the generator neared its core in at least one run
    noisy: bool  # other work took a good share of a core in at least one run
    failed: int  # runs without a figure

    @property
    def median(self) -> float | None:
        return statistics.median(self.values) if self.values else None


def cell(figure: Figure, runs: list[dict[str, Any]]) -> Cell:
    values, bound, failed = [], False, 0
    noisy = any(run.get("interference", 0.0) > NOISY for run in runs)
    for run in runs:
        result = run.get("result")
        value = figure.pick(result) if result else None
        if value is None:
            failed += 1
            continue
        values.append(float(value))
        cpu = figure.cpu(result) if figure.cpu and result else None
        bound = bound or (cpu is not None and cpu >= GENERATOR_BOUND)
    return Cell(values, bound, noisy, failed)


def ratio(figure: Figure, ours: Cell, peer: Cell) -> str:
    a, b = ours.median, peer.median
    if figure.better is None or a is None or b is None:
        return ""
    top, bottom = (a, b) if figure.better == HIGHER else (b, a)
    if bottom == 0:
        return " ×∞" if top > 0 else ""
    return f" ×{top / bottom:.2f}"


def render(figure: Figure, c: Cell) -> str:
    if c.median is None:
        return "failed" if c.failed else "–"
    text = figure.fmt(c.median)
    if len(c.values) > 1:
        text += f" [{figure.fmt(min(c.values))}–{figure.fmt(max(c.values))}]"
    if c.bound:
        text += " ‡"
    if c.noisy:
        text += " §"
    return text


def table(
    results: dict[str, dict[str, list[dict[str, Any]]]],
    servers: list[ServerKind],
    chosen: list[Scenario],
) -> str:
    titles = {s.key: s.title for s in chosen}
    lines: list[str] = []
    header = "| figure | " + " | ".join(k.label for k in servers) + " |"
    rule = "|---|" + "---|" * len(servers)
    for scenario in chosen:
        rows = [f for f in figures() if f.scenario == scenario.key]
        by_server = results.get(scenario.key, {})
        if not rows or not by_server:
            continue
        lines += [f"**{titles[scenario.key]}**", "", header, rule]
        for figure in rows:
            cells = {k.name: cell(figure, by_server.get(k.name, [])) for k in servers}
            ours_cell = cells.get("ours")
            texts = []
            for k in servers:
                runs = by_server.get(k.name)
                if not runs:
                    texts.append("n/a")
                    continue
                text = render(figure, cells[k.name])
                if k.name != "ours" and ours_cell is not None:
                    text += ratio(figure, ours_cell, cells[k.name])
                texts.append(text)
            lines.append(f"| {figure.label} | " + " | ".join(texts) + " |")
        lines.append("")
    return "\n".join(lines)


def notes(
    results: dict[str, dict[str, list[dict[str, Any]]]], servers: list[ServerKind]
) -> list[str]:
    """What went wrong or looked odd, per server and scenario."""
    out = []
    for scenario, by_server in results.items():
        for kind in servers:
            for run in by_server.get(kind.name, []):
                where = f"{scenario} / {kind.name} / run {run['rep'] + 1}"
                if "failed" in run:
                    out.append(f"{where}: no result: {run['failed']}")
                result = run.get("result") or {}
                for name in ("connect_failures", "closed_by_server", "errors"):
                    if result.get(name):
                        out.append(f"{where}: {name.replace('_', ' ')}: {result[name]}")
                if result.get("slow_client_closed"):
                    out.append(
                        f"{where}: the slow client was closed: "
                        f"{result['slow_client_closed']}"
                    )
                if result.get("server_alive") is False:
                    out.append(f"{where}: the server died during the run")
                log = run.get("log", {})
                if any(log.values()):
                    out.append(
                        f"{where}: server log: {log['tracebacks']} tracebacks, "
                        f"{log['error_lines']} ERROR and "
                        f"{log['warning_lines']} WARNING lines"
                    )
    return out


def scaling_note(results: dict[str, dict[str, list[dict[str, Any]]]]) -> str:
    """Scaling efficiency of two gunicorn workers over one process, both on
    Redis: throughput(2 workers) / (2 × throughput(1 process)), per fan-out
    scenario measured for both."""
    parts = []
    for scenario in ("fanout100", "fanout1000"):
        by_server = results.get(scenario, {})
        medians = {}
        for name in ("ours_redis1", "ours_gunicorn2"):
            values = [
                r["result"]["deliveries_per_s"]
                for r in by_server.get(name, [])
                if "result" in r
            ]
            if values:
                medians[name] = statistics.median(values)
        if len(medians) == 2 and medians["ours_redis1"]:
            efficiency = medians["ours_gunicorn2"] / (2 * medians["ours_redis1"])
            parts.append(
                f"{scenario}: {si(medians['ours_gunicorn2'])}/s with 2 workers, "
                f"{si(medians['ours_redis1'])}/s with 1 process: "
                f"scaling efficiency {efficiency:.2f}"
            )
    if not parts:
        return ""
    return "Scaling on Redis (deliveries/s, medians): " + "; ".join(parts) + "."


def busy_elsewhere(results: dict[str, dict[str, list[dict[str, Any]]]]) -> float:
    return max(
        (
            run.get("interference", 0.0)
            for by_server in results.values()
            for runs in by_server.values()
            for run in runs
        ),
        default=0.0,
    )


# -- the plot -----------------------------------------------------------------------


def plot(
    results: dict[str, dict[str, list[dict[str, Any]]]],
    servers: list[ServerKind],
    path: Path,
) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_server = results.get("latency")
    if not by_server:
        return False
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 9), sharex=True)
    offered_all: set[float] = set()
    for kind in servers:
        runs = [r["result"] for r in by_server.get(kind.name, []) if "result" in r]
        if not runs:
            continue
        offered = [lv["offered"] for lv in runs[0]["levels"]]
        offered_all.update(offered)
        achieved, p99, lo, hi = [], [], [], []
        for i in range(len(offered)):
            got = [r["levels"][i]["achieved"] for r in runs if i < len(r["levels"])]
            lat = [r["levels"][i]["p99_ms"] for r in runs if i < len(r["levels"])]
            lat = [v for v in lat if v is not None]
            achieved.append(statistics.median(got))
            med = statistics.median(lat) if lat else float("nan")
            p99.append(med)
            lo.append(med - min(lat) if lat else 0)
            hi.append(max(lat) - med if lat else 0)
        style = {"marker": "o", "linewidth": 2.5 if kind.name == "ours" else 1.3}
        top.plot(offered, achieved, label=kind.label, **style)
        bottom.errorbar(
            offered, p99, yerr=[lo, hi], label=kind.label, capsize=3, **style
        )
    xs = sorted(offered_all)
    top.plot(xs, xs, color="grey", linestyle=":", label="offered (ideal)")
    top.set_ylabel("achieved deliveries/s")
    top.set_title("Fan-out to 1000 clients in one room, 10 senders, open loop")
    top.legend(fontsize=8)
    top.grid(True, alpha=0.3)
    bottom.set_yscale("log")
    bottom.set_ylabel("send → echo p99 (ms, log scale)")
    bottom.set_xlabel("offered deliveries/s")
    bottom.grid(True, which="both", alpha=0.3)
    bottom.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# -- main -----------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    node = shutil.which("node")
    node_version = (
        subprocess.run(
            [node, "--version"], capture_output=True, text=True
        ).stdout.strip()
        if node
        else None
    )
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "node": node_version,
        "loadavg_at_start": os.getloadavg()[0],
    }


def raise_file_limit() -> None:
    """Servers inherit this: 10,000 idle connections need as many descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--only", help="scenario groups: fanout,latency,idle,...")
    parser.add_argument(
        "--servers", help="comma-separated: " + ",".join(k.name for k in SERVERS)
    )
    parser.add_argument("--repeats", type=int, help="default 3 (1 with --quick)")
    parser.add_argument("--no-install", action="store_true", help="skip the installs")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=10.0,
        help="seconds to wait, before each run, for other work to leave the cores",
    )
    parser.add_argument(
        "--generator",
        choices=["auto", "c", "py"],
        default="auto",
        help="load generator for fanout and latency on WebSocket servers: "
        "c (bench/loadgen_c, built with gcc), py (bench/loadgen.py), "
        "auto: c if it builds, else py",
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if not in_bench_venv():
        if not args.no_install:
            ensure_python_env()
        python = str(venv_python())
        os.execv(python, [python, str(Path(__file__).resolve()), *argv])
    node_problem = None if args.no_install else ensure_node_env()
    if shutil.which("taskset") is None:
        print("run.py: taskset (util-linux) is needed", file=sys.stderr)
        return 2
    if (os.cpu_count() or 1) < 2:
        print("run.py: needs 2 CPUs (server on 0, generator on 1)", file=sys.stderr)
        return 2
    raise_file_limit()
    c_binary = None if args.generator == "py" else build_c_generator()
    if args.generator == "c" and c_binary is None:
        print("run.py: --generator c: the C generator is unavailable", file=sys.stderr)
        return 2
    servers = [k for k in SERVERS if not k.extra]
    if args.servers:
        wanted = args.servers.split(",")
        unknown = set(wanted) - {k.name for k in SERVERS}
        if unknown:
            print(
                f"run.py: unknown servers: {', '.join(sorted(unknown))}",
                file=sys.stderr,
            )
            return 2
        servers = [k for k in SERVERS if k.name in wanted]
    if node_problem:
        print(f"run.py: skipping node_ws: {node_problem}", file=sys.stderr)
        servers = [k for k in servers if k.name != "node_ws"]
    chosen = scenarios(args.quick)
    if args.only:
        groups = set(args.only.split(","))
        unknown = groups - {s.group for s in chosen}
        if unknown:
            print(
                f"run.py: unknown scenarios: {', '.join(sorted(unknown))}",
                file=sys.stderr,
            )
            return 2
        chosen = [s for s in chosen if s.group in groups]
    repeats = args.repeats or (1 if args.quick else 3)
    info = machine()
    if info["loadavg_at_start"] > 0.5:
        print(
            f"run.py: warning: load average {info['loadavg_at_start']:.2f} at start: "
            "other work on this machine skews the figures",
            file=sys.stderr,
        )
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    started = time.monotonic()
    for scenario in chosen:
        targets = [k for k in servers if not scenario.only or k.name in scenario.only]
        for rep in range(repeats):
            # Rotate the order so no server always runs first (or last).
            shift = rep % len(targets)
            for kind in targets[shift:] + targets[:shift]:
                run = run_one(kind, scenario, rep, args.quiet_wait, c_binary)
                results.setdefault(scenario.key, {}).setdefault(kind.name, []).append(
                    run
                )
                print(progress(run, time.monotonic() - started), file=sys.stderr)
    elapsed = time.monotonic() - started
    write_outputs(results, servers, chosen, info, args, repeats, elapsed)
    return 0


def progress(run: dict[str, Any], elapsed: float) -> str:
    head = (
        f"[{elapsed:6.0f} s] {run['scenario']:<10} {run['server']:<16} "
        f"run {run['rep'] + 1}"
    )
    if "failed" in run:
        return f"{head}: FAILED: {run['failed']}"
    r = run["result"]
    bits = []
    for name in ("deliveries_per_s", "handshakes_per_s", "requests_per_s"):
        if name in r:
            bits.append(f"{name}={si(r[name])}")
    for name in ("p99_ms", "delivery_ratio", "all_welcomed_s", "rss_per_conn"):
        if r.get(name) is not None:
            bits.append(f"{name}={r[name]:.3g}")
    for lv in r.get("levels", []):
        bits.append(
            f"{si(lv['offered'])}:{lv['achieved'] / lv['offered']:.2f}/"
            f"{lv['p99_ms'] or 0:.3g}ms"
        )
    if "generator_cpu" in r:
        bits.append(f"gen={pct(r['generator_cpu'])}")
    return f"{head}: " + " ".join(bits)


def write_outputs(
    results: dict[str, dict[str, list[dict[str, Any]]]],
    servers: list[ServerKind],
    chosen: list[Scenario],
    info: dict[str, Any],
    args: argparse.Namespace,
    repeats: int,
    elapsed: float,
) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    command = "python bench/run.py" + ("".join(f" {a}" for a in sys.argv[1:]))
    drawn = plot(results, servers, RESULTS / "latency.png")
    elsewhere = busy_elsewhere(results)
    body = [
        f"Run of {info['date']} (`{command}`, {repeats} run(s) per figure, "
        f"{elapsed / 60:.1f} min): {info['cpus']} × {info['cpu']}, "
        f"Python {info['python']}, Node {info['node']}; "
        f"load average at start {info['loadavg_at_start']:.2f}; "
        f"busiest other use of a benchmark core during a window: {pct(elsewhere)}.",
        "",
        f"Load generator: {generators_used(results)}.",
        "",
        "Each cell: median [min–max] of the runs. Ratios compare ours with that "
        "peer so that ×N > 1 means ours is better: ours/peer for throughput, "
        "peer/ours for latency, time and memory. ‡: the generator used ≥ "
        f"{pct(GENERATOR_BOUND)} of its core in a run (generator-bound: the "
        "server may be faster than shown). §: other processes took over "
        f"{pct(NOISY)} of core 0 or 1 during a run (the figure is noisy).",
        "",
        table(results, servers, chosen),
    ]
    scaling = scaling_note(results)
    if scaling:
        body += [scaling, ""]
    found = notes(results, servers)
    if found:
        body += ["Notes (errors, closes, failures, server logs):", ""]
        body += [f"- {line}" for line in found]
        body.append("")
    if drawn:
        body += ["![throughput and p99 latency against offered load](latency.png)", ""]
    text = "\n".join(body)
    (RESULTS / "latest.md").write_text("# Latest benchmark results\n\n" + text)
    raw = {
        "machine": info,
        "command": command,
        "repeats": repeats,
        "servers": {k.name: k.label for k in servers},
        "scenarios": {s.key: {"title": s.title, "args": s.args} for s in chosen},
        "runs": results,
    }
    (RESULTS / "latest.json").write_text(json.dumps(raw, indent=1) + "\n")
    print(text)
    complete = not (args.quick or args.only or args.servers or args.repeats)
    if complete:
        update_readme(text.replace("](latency.png)", "](results/latency.png)"))


def update_readme(text: str) -> None:
    """Put the latest full results between the markers in bench/README.md."""
    readme = BENCH / "README.md"
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    content = readme.read_text() if readme.exists() else ""
    if start not in content or end not in content:
        return
    head, rest = content.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{start}\n{text}\n{end}{tail}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
