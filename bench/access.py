"""What sessions cost a handshake: ``--access open`` next to ``--access invite``.

    .venv/bin/python bench/access.py [--clients 2000] [--repeats 3]

Runs ``chat.py`` (SQLite) once per mode and repeat, alternating, and opens
``--clients`` idle WebSockets in rooms of 100 with bench/loadgen.py's idle
scenario (the same one the main benchmark runs): the handshake rate until
every welcome, and the time to a welcome. In invite mode every client is its
own account, signed in with its own session cookie (made beforehand through
invites, as people would), so both modes connect as many distinct users to
the same rooms; the difference is the session lookup (and the account's
name instead of a reservation).

A measurement script, not a test: it prints a table and asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.accounts_support import cli, first_invite, redeem  # noqa: E402
from tests.support import ServerProcess, run_server  # noqa: E402

INVITE_USES = 1000  # the most one invite allows


def sessions(server: ServerProcess, db: Path, count: int) -> list[str]:
    """``count`` accounts, each signed in once: their cookie values."""
    redeem(server, first_invite(server), "benchadmin")
    cookies: list[str] = []
    while len(cookies) < count:
        made = cli(
            "invite", "--uses", str(INVITE_USES), "--access", "invite", "--db", str(db)
        )
        assert made.returncode == 0, made.stderr
        url = made.stdout.strip()
        for _ in range(min(INVITE_USES, count - len(cookies))):
            token = redeem(server, url, f"bench{len(cookies):05d}")
            cookies.append(f"chat_session={token}")
    return cookies


def one_run(mode: str, clients: int, tmp: Path) -> dict[str, float]:
    db = tmp / f"{mode}.db"
    db.unlink(missing_ok=True)
    with run_server(
        "--access", mode, "--max-conn-per-ip", "0", "--db", str(db), log_dir=tmp
    ) as server:
        extra: list[str] = []
        if mode == "invite":
            cookie_file = tmp / "cookies.txt"
            cookie_file.write_text("\n".join(sessions(server, db, clients)) + "\n")
            extra = ["--cookie-file", str(cookie_file)]
        done = subprocess.run(
            [
                sys.executable,
                str(ROOT / "bench" / "loadgen.py"),
                "idle",
                "--port",
                str(server.port),
                "--server-pid",
                str(server.proc.pid),
                "--clients",
                str(clients),
                "--room-size",
                "100",
                *extra,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["connected"] == clients, result
    return {
        "rate": result["handshakes_per_s"],
        "p50": result["p50_ms"],
        "p99": result["p99_ms"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    runs: dict[str, list[dict[str, float]]] = {"open": [], "invite": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            for mode in runs:
                runs[mode].append(one_run(mode, args.clients, Path(tmp)))
                print(mode, runs[mode][-1], flush=True)
    print(f"\n{args.clients} idle clients in rooms of 100, medians of {args.repeats}")
    print("| access | handshakes/s | welcome p50 ms | welcome p99 ms |")
    print("|---|---|---|---|")
    medians = {
        mode: {
            k: statistics.median(r[k] for r in results) for k in ("rate", "p50", "p99")
        }
        for mode, results in runs.items()
    }
    for mode, m in medians.items():
        print(f"| {mode} | {m['rate']:.0f} | {m['p50']:.1f} | {m['p99']:.1f} |")
    ratio = medians["invite"]["rate"] / medians["open"]["rate"]
    print(f"\ninvite / open handshake rate: {ratio:.2f}")


if __name__ == "__main__":
    main()
