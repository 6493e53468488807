"""The chat application object of one connection, without a server."""

from __future__ import annotations

import gc
import weakref
from types import SimpleNamespace

from chatcore.application import ChatApplication
from chatcore.config import Settings


class App(ChatApplication):
    settings = Settings()


def test_a_connection_leaves_no_reference_cycle() -> None:
    """Ensure a connection's application object is freed as soon as the last
    reference to it goes, without waiting for the cycle collector (a cycle
    per connection kept every closed connection's objects until a full
    collection: RSS grew with reconnects in the soak)."""
    ws = SimpleNamespace(
        outbox=object(),
        environ={"REMOTE_ADDR": "127.0.0.1"},
        handler=SimpleNamespace(client_address=("127.0.0.1", 50000)),
    )
    app = App(ws)  # type: ignore[arg-type]
    gone = weakref.ref(app)
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        del app
        assert gone() is None
    finally:
        if was_enabled:
            gc.enable()
