"""The fan-out of a chat that runs as one process: every member is local."""

from __future__ import annotations

from chatcore.fanout import Event


class LocalFanout:
    """Nothing to tell anyone: the hub delivers every event itself."""

    shared = False
    origin = "local"

    def publish(self, event: Event) -> None:
        pass
