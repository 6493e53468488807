"""Search latency at 100,000 stored messages, per store, side by side.

    python bench/search.py                 # SQLite, memory, Redis (if installed)
    python bench/search.py --messages 20000 --runs 50

Fills each store with the same messages (20 rooms, words drawn from a
Zipf-like vocabulary, a few rare marker words), then times searches of a few
kinds through the search backend the server would use: SQLite's FTS5 index,
and the bounded scan of memory and Redis (``--search-scan-max``, 10,000 by
default; "memory, full" scans everything, for comparison). In process: no
WebSocket, no hub; what is measured is the store's work. Also times a
delete in SQLite and the rewrite of the index that follows
(``SqliteSearch.purge``, at most once every 10 s).
Writes bench/results/search.md and search.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chatcore.history import Draft, HistoryStore  # noqa: E402
from chatcore.history.memory import MemoryHistory  # noqa: E402
from chatcore.history.sqlite import SqliteHistory  # noqa: E402
from chatcore.search import SearchIndex, terms  # noqa: E402
from chatcore.search.scan import HistoryScan  # noqa: E402
from chatcore.search.sqlite import SqliteSearch  # noqa: E402

ROOMS = 20
VOCABULARY = 5000
WORDS_PER_MESSAGE = (3, 20)
SCAN_MAX = 10_000
KEEP = 1_000_000  # nothing is trimmed during the fill

QUERIES = {
    "common word": "w0",  # in about one message in six
    "rare word": "zanzibar",  # in 20 messages, spread over the whole history
    "two words": "w1 w2",  # short terms match whole words only
    "prefix": "w12",  # w12, w120..w129, w1200..: a word start
    "no match": "xylophone",
}


def vocabulary_word(rng: random.Random) -> str:
    # Zipf-like: word n with a weight of about 1/(n+1).
    n = int(VOCABULARY ** rng.random()) - 1
    return f"w{n}"


def messages(count: int, seed: int = 7) -> Iterator[Draft]:
    rng = random.Random(seed)
    rare = set(range(0, count, count // 20))
    for n in range(count):
        words = [vocabulary_word(rng) for _ in range(rng.randint(*WORDS_PER_MESSAGE))]
        if n in rare:
            words.insert(rng.randrange(len(words)), "Zanzibar")
        yield Draft(
            f"room{n % ROOMS}",
            f"u{n % 97}",
            f"user{n % 97}",
            "#336699",
            " ".join(words),
            1_700_000_000_000 + n,
        )


def fill(store: HistoryStore, count: int) -> float:
    started = time.perf_counter()
    for n, draft in enumerate(messages(count)):
        store.append(draft)
        if n % 500 == 499:
            store.flush()  # as the server does, once per loop turn
    store.flush()
    return time.perf_counter() - started


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def measure(index: SearchIndex, rooms: list[str], runs: int) -> dict[str, dict]:
    out = {}
    for kind, query in QUERIES.items():
        words = terms(query)
        samples, hits, partial = [], 0, False
        for _ in range(runs):
            started = time.perf_counter()
            page = index.search(words, rooms, None, 20)
            samples.append((time.perf_counter() - started) * 1000)
            hits, partial = len(page.hits), page.partial
        out[kind] = {
            "p50_ms": round(statistics.median(samples), 3),
            "p99_ms": round(percentile(samples, 99), 3),
            "hits": hits,
            "partial": partial,
        }
    return out


@contextlib.contextmanager
def redis_store(directory: Path) -> Iterator[HistoryStore | None]:
    try:
        from chatcore.history import redis as redis_history
        from tests.redis_server import REDIS_SERVER, run_redis
    except ImportError:
        yield None
        return
    if REDIS_SERVER is None:
        yield None
        return
    with run_redis(directory) as server:
        client = redis_history.connect(server.url)
        yield redis_history.RedisHistory(client, KEEP, prefix="bench:")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    all_rooms = [f"room{n}" for n in range(ROOMS)]
    results: dict[str, dict] = {}
    fills: dict[str, float] = {}
    extra: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        sqlite = SqliteHistory(str(tmp_path / "chat.db"), KEEP)
        fills["sqlite"] = fill(sqlite, args.messages)
        search = SqliteSearch(sqlite.connection)
        results["sqlite"] = measure(search, all_rooms, args.runs)
        results["sqlite, one room"] = measure(search, ["room0"], args.runs)
        victim = sqlite.get("room5", 10)
        assert victim is not None
        started = time.perf_counter()
        search.forget(sqlite.change(victim, None, at=1))
        extra["sqlite delete (ms)"] = round((time.perf_counter() - started) * 1000, 1)
        started = time.perf_counter()
        search.purge()
        extra["sqlite index rewrite after deletes, at most every 10 s (ms)"] = round(
            (time.perf_counter() - started) * 1000, 1
        )
        extra["sqlite file (MB)"] = round(
            sum(p.stat().st_size for p in tmp_path.iterdir()) / 1e6, 1
        )
        sqlite.close()

        memory = MemoryHistory(KEEP)
        fills["memory"] = fill(memory, args.messages)
        results["memory"] = measure(HistoryScan(memory, SCAN_MAX), all_rooms, args.runs)
        results["memory, full"] = measure(
            HistoryScan(memory, args.messages), all_rooms, max(5, args.runs // 10)
        )
        with redis_store(tmp_path / "redis") as redis:
            if redis is not None:
                fills["redis"] = fill(redis, args.messages)
                results["redis"] = measure(
                    HistoryScan(redis, SCAN_MAX), all_rooms, max(5, args.runs // 5)
                )
                redis.close()
    report = {
        "messages": args.messages,
        "rooms": ROOMS,
        "scan_max": SCAN_MAX,
        "fill_seconds": {k: round(v, 1) for k, v in fills.items()},
        "extra": extra,
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "search.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "search.md").write_text(markdown(report))
    print(markdown(report))


def markdown(report: dict) -> str:
    stores = list(report["results"])
    lines = [
        f"# Search latency at {report['messages']:,} messages "
        f"({report['rooms']} rooms, page of 20, all rooms unless said)",
        "",
        "p50 / p99 in ms; hits on the first page; † the scan stopped at a bound "
        f"({report['scan_max']:,} messages, or everything for 'memory, full'; "
        "or 0.2 s) before the history ended.",
        "",
        "| query | " + " | ".join(stores) + " |",
        "|---|" + "---|" * len(stores),
    ]
    for kind, query in QUERIES.items():
        cells = []
        for store in stores:
            r = report["results"][store][kind]
            mark = " †" if r["partial"] else ""
            cells.append(f"{r['p50_ms']} / {r['p99_ms']} ({r['hits']}{mark})")
        lines.append(f"| {kind} (`{query}`) | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Fill time (s): "
        + ", ".join(f"{k} {v}" for k, v in report["fill_seconds"].items()),
    ]
    lines += [f"{k}: {v}" for k, v in report["extra"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
