"""The server's work per join into one big room, counted, not timed.

Joins N connections into one room through the hub (no sockets) under
cProfile and reports, per join: the frames encoded (``protocol.encode``
calls), the outbox pushes the deliveries ask for (one per target of each
delivery) and the function calls made; and the pushes of the count
frames (O(members) per count, at most 10,000 a second per room), per join.
The joins come 1,000 a second by the hub's clock, with a tick every 0.25 s.
The per-join figures are of the second half of the joins (the room holds
count/2 to count members then). Call counts are exact, so the numbers
are the same on a busy machine as on a quiet one.

    .venv/bin/python bench/big_room_profile.py --joins 2000
    .venv/bin/python bench/big_room_profile.py --joins 2000 --presence-max 100000
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import pstats
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chatcore import protocol  # noqa: E402
from chatcore.config import Settings  # noqa: E402
from chatcore.history.memory import MemoryHistory, MemoryNames  # noqa: E402
from chatcore.hub import Hub  # noqa: E402

JOINS_PER_SECOND = 1000  # by the hub's clock
TICK_EVERY = 250  # joins between two presence ticks: 0.25 s


def joins(count: int, settings: Settings) -> dict[str, float]:
    """Connect ``count`` clients into one room; what each join cost."""
    now = [1.0e9]  # seconds, by the hub's clock
    hub = Hub(
        settings,
        MemoryHistory(settings.history_max),
        MemoryNames(),
        clock=lambda: now[0],
        rng=random.Random(7),
    )
    encodes = 0
    real_encode = protocol.encode

    def counted(kind: str, **fields: object) -> str:
        nonlocal encodes
        encodes += 1
        return real_encode(kind, **fields)

    protocol.encode = counted  # type: ignore[assignment]
    pushes = tick_pushes = encodes_before = 0
    profile = cProfile.Profile()
    tick = getattr(hub, "presence_tick", lambda: [])
    try:
        for n in range(count):
            measured = n >= count // 2
            if measured:
                encodes_before = encodes if n == count // 2 else encodes_before
                profile.enable()
            joined = hub.connect(("conn", n), room="big")
            profile.disable()
            if measured:
                pushes += sum(len(delivery.targets) for delivery in joined)
            now[0] += 1 / JOINS_PER_SECOND
            if n % TICK_EVERY == TICK_EVERY - 1 and measured:
                tick_pushes += sum(len(delivery.targets) for delivery in tick())
    finally:
        protocol.encode = real_encode  # type: ignore[assignment]
    calls = pstats.Stats(profile).total_calls  # type: ignore[attr-defined]
    joins = count - count // 2
    return {
        "encodes_per_join (ticks too)": (encodes - encodes_before) / joins,
        "pushes_per_join": pushes / joins,
        "calls_per_join": calls / joins,
        "count_pushes_per_join": tick_pushes / joins,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--joins", type=int, default=2000)
    parser.add_argument("--presence-max", type=int, default=None)
    args = parser.parse_args()
    settings = Settings()
    if args.presence_max is not None:
        settings = dataclasses.replace(settings, presence_max=args.presence_max)
    for half in (args.joins // 2, args.joins):
        result = joins(half, settings)
        print(f"{half} joins: " + ", ".join(f"{k} {v:.1f}" for k, v in result.items()))


if __name__ == "__main__":
    main()
