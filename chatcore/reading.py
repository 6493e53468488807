"""Read positions in the hub: the ``read`` frame, the snapshot's ``read``,
and telling a person's other connections. Pure.

A person's position in a room is the highest id they have read there, kept
in the read store (chatcore/reads) so it survives a reload and follows them
to their other devices. It never moves backwards; an id above the room's
last one is taken as the last one. Whoever reads tells their other
connections, here and (through a ``ReadUpTo`` event) on every other
process, which get ``read`` {room, id} and clear their badges.

See docs/protocol.md, "Read positions".
"""

from __future__ import annotations

from collections.abc import Callable

from chatcore import protocol
from chatcore.cluster import Cluster
from chatcore.delivery import ConnKey, Delivery
from chatcore.fanout import ReadUpTo
from chatcore.history import HistoryError, HistoryStore
from chatcore.limits import TokenBucket
from chatcore.protocol import ErrorCode, ProtocolError
from chatcore.reads import ReadStore
from chatcore.rooms import Connection
from chatcore.users import User

# ``read`` frames per connection: the page sends at most one per room per
# second; a reconnect may read every room (20 at most) at once. Beyond this
# they are dropped without an answer (a read position is only a hint).
READ_RATE, READ_BURST = 4.0, 24


class Reading:
    """Moves read positions and tells the reader's other connections.

    Args:
        store: the read positions.
        history: each room's last id (the highest position there can be).
        cluster: how other processes hear of a move.
        users, conns: the hub's users by id and connections by key (read only).
        clock: seconds since the epoch.
    """

    def __init__(
        self,
        store: ReadStore,
        history: HistoryStore,
        cluster: Cluster,
        users: dict[str, User],
        conns: dict[ConnKey, Connection],
        clock: Callable[[], float],
    ):
        self._store = store
        self._history = history
        self._cluster = cluster
        self._users = users
        self._conns = conns
        self._clock = clock
        self._buckets: dict[ConnKey, TokenBucket] = {}

    def read(self, conn: Connection, command: protocol.Read) -> list[Delivery]:
        """A ``read`` frame: move the position, tell the other connections.

        Raises:
            ProtocolError: ``not_in_room``, the connection has not joined it.
            HistoryError: a store could not be used.
        """
        room = command.room
        if room not in conn.rooms:
            raise ProtocolError(
                ErrorCode.NOT_IN_ROOM, f"you are not in the room '{room[:40]}'", "read"
            )
        bucket = self._buckets.get(conn.key)
        if bucket is None:
            bucket = self._buckets[conn.key] = TokenBucket(READ_RATE, READ_BURST)
        if not bucket.take(self._clock()):
            return []
        position = min(command.id, self._history.last_id(room))
        user_id = conn.user.id
        if not self._store.advance(user_id, room, position, self._clock()):
            return []
        self._cluster.publish(ReadUpTo(self._cluster.origin, user_id, room, position))
        return self._tell(user_id, room, position, but=conn.key)

    def on_join(self, user_id: str, room: str) -> int | None:
        """The position to put in a join's snapshot. A room joined for the
        first time is read up to now: what came before is not news. None
        when the store cannot say (the join goes on without it)."""
        try:
            position = self._store.position(user_id, room)
            if position is None:
                position = self._history.last_id(room)
                self._store.advance(user_id, room, position, self._clock())
        except HistoryError:
            return None
        return position

    def forget(self, user_id: str, room: str) -> None:
        """The user left the room, or was removed from it: its position goes
        (rejoining starts from then)."""
        try:
            self._store.forget(user_id, room)
        except HistoryError:
            pass  # bounded anyway, and purged once stale

    def disconnected(self, key: ConnKey) -> None:
        self._buckets.pop(key, None)

    def remote(self, event: ReadUpTo) -> list[Delivery]:
        """Another process moved a position: tell the user's connections here."""
        if event.origin == self._cluster.origin:
            return []
        return self._tell(event.user_id, event.room, event.id, but=None)

    def _tell(
        self, user_id: str, room: str, position: int, but: ConnKey | None
    ) -> list[Delivery]:
        user = self._users.get(user_id)
        if user is None:
            return []
        targets = tuple(
            key
            for key in user.conns
            if key != but and (conn := self._conns.get(key)) and room in conn.rooms
        )
        if not targets:
            return []
        return [Delivery(targets, protocol.encode("read", room=room, id=position))]
