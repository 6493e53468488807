"""End-to-end chat flows against a real ``python chat.py`` and real WebSockets."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support import (
    MS,
    Client,
    ServerProcess,
    connect,
    healthz,
    run_server,
    wait_for,
)

Frame = dict[str, Any]


def of_type(frames: list[Frame], kind: str) -> list[Frame]:
    return [f for f in frames if f["type"] == kind]


def abrupt_close(client: Client) -> None:
    """Drop the TCP connection without a WebSocket close frame."""
    client.ws.sock.shutdown(socket.SHUT_RDWR)
    client.ws.sock.close()


def send_and_get(sender: Client, text: str, room: str | None = None) -> Frame:
    """Send a message and return the sender's own echo of it."""
    frame: Frame = {"type": "message", "text": text}
    if room is not None:
        frame["room"] = room
    sender.send(**frame)
    return sender.recv_until("message", lambda f: f["text"] == text)


def connect_raw_welcome(clients: Callable[..., Client], **kwargs: Any) -> Client:
    """Open a client, read only its welcome and leave the snapshot unread."""
    client = clients(read_welcome=False, **kwargs)
    client.welcome = client.recv()
    assert client.welcome["type"] == "welcome"
    return client


# -- welcome and messages -----------------------------------------------------


def test_welcome_describes_user_rooms_and_limits(clients: Callable[..., Client]):
    """Ensure welcome carries the user, the joined rooms and the limits."""
    alice = clients(name="Alice", room="kitchen")
    welcome = alice.welcome
    assert welcome["type"] == "welcome"
    assert isinstance(welcome["user"]["id"], str) and welcome["user"]["id"]
    assert welcome["user"]["name"] == "Alice"
    assert re.fullmatch(r"#[0-9a-fA-F]{6}", welcome["user"]["color"])
    assert welcome["rooms"] == ["kitchen"]
    expected = {"max_text": 2000, "rate": 5, "burst": 10, "history_page": 100}
    assert {k: welcome["limits"].get(k) for k in expected} == expected

    guest = clients()
    assert re.fullmatch(r"guest-\d{4}", guest.welcome["user"]["name"])
    assert guest.welcome["rooms"] == ["lobby"]
    assert guest.welcome["user"]["id"] != welcome["user"]["id"]


def test_welcome_limits_follow_the_flags(tmp_path: Path):
    """Ensure the limits in welcome are the ones the server was started with."""
    flags = ("--max-text", "321", "--rate", "2.5", "--burst", "4")
    with run_server(*flags, log_dir=tmp_path) as server:
        client = connect(server)
        try:
            limits = client.welcome["limits"]
            assert limits["max_text"] == 321
            assert limits["rate"] == 2.5
            assert limits["burst"] == 4
        finally:
            client.close()


def test_message_is_broadcast_to_everyone_including_the_sender(
    clients: Callable[..., Client],
):
    """Ensure a message reaches every member, the sender too, as the same frame."""
    alice, bob, carol = clients(name="Alice"), clients(name="Bob"), clients()
    alice.send(type="message", text="hello <b>all</b>", client_id="c-1")
    got = [c.recv_until("message") for c in (alice, bob, carol)]
    assert got[0] == got[1] == got[2]
    message = got[0]
    assert message["text"] == "hello <b>all</b>"
    assert message["room"] == "lobby"
    assert message["user"] == alice.welcome["user"]
    assert message["client_id"] == "c-1"
    assert isinstance(message["id"], int) and message["id"] >= 1
    assert abs(message["ts"] / 1000 - time.time()) < 60


def test_message_without_client_id_has_none(clients: Callable[..., Client]):
    """Ensure client_id is only present when the sender gave one."""
    alice = clients()
    message = send_and_get(alice, "no id")
    assert "client_id" not in message or message["client_id"] is None


def test_rooms_are_isolated(clients: Callable[..., Client]):
    """Ensure a member of room b receives nothing of what happens in room a."""
    outsider = clients(room="b")
    alice = clients(room="a")
    friend = clients(room="a")
    alice.drain()
    send_and_get(alice, "only for a")
    assert friend.recv_until("message")["text"] == "only for a"
    assert outsider.drain() == []


def test_one_connection_in_several_rooms(clients: Callable[..., Client]):
    """Ensure a connection can join a second room and talk in both, ids per room."""
    alice = clients(name="Alice")
    lobby_only = clients(name="Bob")
    second_only = clients(name="Carol", room="second")
    alice.send(type="join", room="second")
    snapshot = alice.recv_until("presence", lambda f: f["event"] == "snapshot")
    assert snapshot["room"] == "second"
    assert snapshot["count"] == 2

    in_lobby = send_and_get(alice, "to the lobby")  # default: first room
    in_second = send_and_get(alice, "to second", room="second")
    assert in_lobby["room"] == "lobby" and in_second["room"] == "second"
    assert in_lobby["id"] == 1 and in_second["id"] == 1
    assert send_and_get(alice, "again", room="second")["id"] == 2

    bob_sees = of_type(lobby_only.drain(), "message")
    assert [m["text"] for m in bob_sees] == ["to the lobby"]
    carol_sees = of_type(second_only.drain(), "message")
    assert [(m["text"], m["id"]) for m in carol_sees] == [
        ("to second", 1),
        ("again", 2),
    ]


# -- presence -----------------------------------------------------------------


def test_presence_snapshot_to_joiner_and_small_join_to_others(
    clients: Callable[..., Client],
):
    """Ensure the joiner gets the full list and the others one small join event."""
    alice = clients(name="Alice")
    bob = connect_raw_welcome(clients, name="Bob")
    snapshot = bob.recv_until("presence")
    assert snapshot["event"] == "snapshot"
    assert snapshot["room"] == "lobby"
    assert snapshot["count"] == 2
    names = sorted(u["name"] for u in snapshot["users"])
    assert names == ["Alice", "Bob"]

    join = alice.recv_until("presence")
    assert join["event"] == "join"
    assert join["room"] == "lobby"
    assert join["user"] == bob.welcome["user"]
    assert join["count"] == 2
    assert "users" not in join
    assert alice.drain() == []


def test_two_tabs_of_one_user_count_once(
    chat_server: ServerProcess, clients: Callable[..., Client]
):
    """Ensure two connections with one key are one member: one join, one leave."""
    watcher = clients(name="Watcher")
    tab1 = clients(name="Uma", key="uma-secret")
    join = watcher.recv_until("presence")
    assert join["event"] == "join" and join["count"] == 2

    tab2 = connect_raw_welcome(clients, key="uma-secret")
    assert tab2.welcome["user"] == tab1.welcome["user"]
    snapshot = tab2.recv_until("presence")
    assert snapshot["count"] == 2
    assert [u["name"] for u in snapshot["users"]].count("Uma") == 1
    assert watcher.drain() == []
    status = healthz(chat_server)
    assert (status["connections"], status["users"]) == (3, 2)

    tab1.close()
    wait_for(lambda: healthz(chat_server)["connections"] == 2)
    assert watcher.drain() == []

    tab2.close()
    leave = watcher.recv_until("presence")
    assert leave["event"] == "leave"
    assert leave["user"] == tab1.welcome["user"]
    assert leave["count"] == 1


def test_other_key_is_another_user(clients: Callable[..., Client]):
    """Ensure different keys give different users and the id hides the key."""
    one = clients(key="key-one-secret")
    two = clients(key="key-two-secret")
    again = clients(key="key-one-secret")
    assert one.welcome["user"]["id"] != two.welcome["user"]["id"]
    assert again.welcome["user"]["id"] == one.welcome["user"]["id"]
    assert "secret" not in one.welcome["user"]["id"]


# -- typing -------------------------------------------------------------------


def test_typing_goes_to_the_others_only_and_clears_on_message(
    clients: Callable[..., Client],
):
    """Ensure typing skips the typist's own tabs and is cleared by a message."""
    observer = clients(name="Obs")
    typist = clients(name="Tia", key="tia-key")
    other_tab = clients(key="tia-key")
    observer.drain()
    typist.drain()
    other_tab.drain()

    typist.send(type="typing", room="lobby", active=True)
    typing = observer.recv_until("typing")
    assert typing == {
        "type": "typing",
        "room": "lobby",
        "user": typist.welcome["user"],
        "active": True,
    }
    typist.send(type="typing", room="lobby", active=True)  # a refresh only
    assert observer.drain() == []
    assert of_type(typist.drain(), "typing") == []
    assert of_type(other_tab.drain(), "typing") == []

    typist.send(type="message", text="done typing")
    cleared = observer.recv()
    assert cleared["type"] == "typing" and cleared["active"] is False
    assert cleared["user"] == typist.welcome["user"]
    assert observer.recv()["type"] == "message"
    assert of_type(other_tab.drain(), "typing") == []


def test_typing_cleared_by_active_false(clients: Callable[..., Client]):
    """Ensure active:false from the typist clears the indicator for the others."""
    observer = clients()
    typist = clients()
    observer.drain()
    typist.send(type="typing", room="lobby", active=True)
    assert observer.recv_until("typing")["active"] is True
    typist.send(type="typing", room="lobby", active=False)
    assert observer.recv_until("typing")["active"] is False


def test_typing_cleared_when_the_typist_disconnects(clients: Callable[..., Client]):
    """Ensure the others see active:false, then the leave, when the typist drops."""
    observer = clients()
    typist = clients()
    observer.drain()
    typist.send(type="typing", room="lobby", active=True)
    assert observer.recv_until("typing")["active"] is True
    abrupt_close(typist)
    cleared = observer.recv()
    assert cleared["type"] == "typing" and cleared["active"] is False
    leave = observer.recv()
    assert leave["type"] == "presence" and leave["event"] == "leave"


def test_typing_expires_after_the_timeout(tmp_path: Path):
    """Ensure a quiet typist's indicator is cleared after --typing-timeout."""
    with run_server("--typing-timeout", "0.5", log_dir=tmp_path) as server:
        observer, typist = connect(server), connect(server)
        try:
            observer.drain()
            typist.send(type="typing", room="lobby", active=True)
            assert observer.recv_until("typing")["active"] is True
            cleared = observer.recv_until("typing", timeout=5000 * MS)
            assert cleared["active"] is False
            assert cleared["user"] == typist.welcome["user"]
        finally:
            observer.close()
            typist.close()


# -- names --------------------------------------------------------------------


def test_nick_renames_the_user_and_tells_the_others(clients: Callable[..., Client]):
    """Ensure nick sends renamed to every tab and presence nick to the others."""
    tab1 = clients(name="Alice", key="alice-key")
    tab2 = clients(key="alice-key")
    bob = clients(name="Bob")
    for client in (tab1, tab2):
        client.drain()

    tab1.send(type="nick", name="Alicia")
    for tab in (tab1, tab2):
        renamed = tab.recv_until("renamed")
        assert renamed["previous"] == "Alice"
        assert renamed["user"]["name"] == "Alicia"
        assert renamed["user"]["id"] == tab1.welcome["user"]["id"]
    nick = bob.recv_until("presence", lambda f: f["event"] == "nick")
    assert nick["user"]["name"] == "Alicia"
    assert nick["previous"] == "Alice"
    assert nick["count"] == 2
    assert nick["room"] == "lobby"
    assert of_type(tab1.drain(), "presence") == []

    message = send_and_get(tab2, "under my new name")
    assert message["user"]["name"] == "Alicia"


def test_name_taken_keeps_the_connection_usable(clients: Callable[..., Client]):
    """Ensure a taken name (any case, any width) is refused and nothing breaks."""
    clients(name="Alice")
    bob = clients(name="Bob")
    for name in ("alice", "ALICE", "\uff21lice"):  # fullwidth A
        bob.send(type="nick", name=name)
        error = bob.recv_until("error")
        assert error["code"] == "name_taken"
        assert error["ref"] == "nick"
    bob.send(type="ping", t="still here")
    assert bob.recv_until("pong")["t"] == "still here"
    assert send_and_get(bob, "still Bob")["user"]["name"] == "Bob"


def test_taken_name_on_connect_gives_a_guest_name(clients: Callable[..., Client]):
    """Ensure connecting with a taken name gives a guest name and name_taken."""
    clients(name="Alice")
    late = clients(name="aLiCe", read_welcome=False)
    welcome = late.recv()
    assert welcome["type"] == "welcome"
    assert welcome["user"]["name"].startswith("guest-")
    error = late.recv()
    assert error["type"] == "error"
    assert (error["code"], error["ref"]) == ("name_taken", "nick")
    assert late.recv_until("presence")["event"] == "snapshot"


# -- history and replay -------------------------------------------------------


def test_history_pages_oldest_first_with_more(clients: Callable[..., Client]):
    """Ensure history returns earlier messages oldest first and says if more exist."""
    alice = clients()
    for i in range(5):
        send_and_get(alice, f"m{i}")

    alice.send(type="history", room="lobby", limit=3)
    page = alice.recv_until("history")
    assert page["room"] == "lobby"
    assert [m["id"] for m in page["messages"]] == [3, 4, 5]
    assert [m["text"] for m in page["messages"]] == ["m2", "m3", "m4"]
    assert page["more"] is True
    assert all("type" not in m for m in page["messages"])
    assert all(m["user"] == alice.welcome["user"] for m in page["messages"])

    alice.send(type="history", room="lobby", before=3, limit=3)
    older = alice.recv_until("history")
    assert [m["id"] for m in older["messages"]] == [1, 2]
    assert older["more"] is False

    alice.send(type="history", room="lobby")
    everything = alice.recv_until("history")
    assert [m["id"] for m in everything["messages"]] == [1, 2, 3, 4, 5]
    assert everything["more"] is False


def test_join_with_since_replays_the_missed_messages_first(
    clients: Callable[..., Client],
):
    """Ensure join since=N replays exactly the messages after N, in order, first."""
    alice = clients(name="Alice")
    bob = clients(name="Bob")
    send_and_get(alice, "seen by bob")
    assert bob.recv_until("message")["id"] == 1
    bob.send(type="leave", room="lobby")
    assert bob.recv_until("left")["room"] == "lobby"
    for text in ("missed 2", "missed 3", "missed 4"):
        send_and_get(alice, text)

    bob.send(type="join", room="lobby", since=1)
    assert bob.recv()["event"] == "snapshot"
    replayed = [bob.recv() for _ in range(3)]
    assert [(m["type"], m["id"], m["text"]) for m in replayed] == [
        ("message", 2, "missed 2"),
        ("message", 3, "missed 3"),
        ("message", 4, "missed 4"),
    ]
    send_and_get(alice, "new 5")
    after = bob.drain()
    assert [(m["type"], m["id"]) for m in after] == [("message", 5)]


def test_join_with_since_replays_more_than_a_history_page(tmp_path: Path):
    """Ensure every missed message is replayed, even more than 100 of them."""
    with run_server(
        "--rate", "100000", "--burst", "100000", log_dir=tmp_path
    ) as server:
        alice, bob = connect(server), connect(server)
        try:
            bob.send(type="leave", room="lobby")
            bob.recv_until("left")
            for i in range(150):
                alice.send(type="message", text=f"m{i}")
            for _ in range(150):
                alice.recv_until("message")

            bob.send(type="join", room="lobby", since=0)
            assert bob.recv()["event"] == "snapshot"
            send_and_get(alice, "after the replay")
            ids = [f["id"] for f in bob.drain() if f["type"] == "message"]
            assert ids == list(range(1, 152))
        finally:
            alice.close()
            bob.close()


# -- ping, leave, disconnect ----------------------------------------------------


def test_ping_is_answered_with_the_same_t(clients: Callable[..., Client]):
    """Ensure pong echoes any JSON t, and null when there was none."""
    client = clients()
    for t in (1, "x", {"a": [1, 2.5, None]}, [True, False]):
        client.send(type="ping", t=t)
        assert client.recv_until("pong") == {"type": "pong", "t": t}
    client.send(type="ping")
    assert client.recv_until("pong") == {"type": "pong", "t": None}


def test_websocket_ping_control_frame_gets_a_pong(clients: Callable[..., Client]):
    """Ensure a WebSocket-level ping is answered with a pong of the same payload."""
    client = clients()
    client.ws.ping("are you there")
    client.ws.settimeout(5000 * MS)
    opcode, frame = client.ws.recv_data_frame(True)
    assert opcode == 0xA
    assert frame.data == b"are you there"


def test_leave_answers_left_and_tells_the_others(clients: Callable[..., Client]):
    """Ensure leave is answered with left and the others see a presence leave."""
    alice = clients(name="Alice")
    bob = clients(name="Bob")
    alice.drain()
    bob.send(type="leave", room="lobby")
    assert bob.recv_until("left") == {"type": "left", "room": "lobby"}
    leave = alice.recv_until("presence")
    assert leave["event"] == "leave"
    assert leave["user"] == bob.welcome["user"]
    assert leave["count"] == 1

    send_and_get(alice, "bob is gone")
    assert of_type(bob.drain(), "message") == []


def test_abrupt_disconnect_is_noticed_promptly(
    chat_server: ServerProcess, clients: Callable[..., Client]
):
    """Ensure dropping the TCP connection makes a prompt leave and frees the slot."""
    alice = clients(name="Alice")
    bob = clients(name="Bob")
    alice.drain()
    assert healthz(chat_server)["connections"] == 2
    abrupt_close(bob)
    leave = alice.recv_until("presence", timeout=3000 * MS)
    assert leave["event"] == "leave"
    assert leave["user"] == bob.welcome["user"]
    assert leave["count"] == 1
    wait_for(lambda: healthz(chat_server)["connections"] == 1)
    assert healthz(chat_server)["users"] == 1


def test_clean_close_is_echoed_with_1000(clients: Callable[..., Client]):
    """Ensure a client's close frame is answered with a close 1000."""
    client = clients()
    client.ws.send_close()
    client.ws.settimeout(5000 * MS)
    while True:
        opcode, frame = client.ws.recv_data_frame(True)
        if opcode == 0x8:
            break
    client.ws.shutdown()  # our close was already sent: just free the socket
    assert int.from_bytes(frame.data[:2], "big") == 1000
