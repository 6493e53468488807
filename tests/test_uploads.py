"""Uploads without a server: the metadata stores (every backend), the rules
of chatcore/uploading.py, sniffing and thumbnails, the attachment a stored
message carries."""

from __future__ import annotations

import io
import json
import random
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from chatcore.config import Settings
from chatcore.history import Attachment, Draft, HistoryStore
from chatcore.history.memory import MemoryHistory, MemoryNames
from chatcore.history.sqlite import SqliteHistory
from chatcore.hub import Hub
from chatcore.uploading import TOKEN_SECONDS, Uploading, clean_name
from chatcore.uploads import (
    CLAIMED,
    UNUSED_SECONDS,
    QuotaExceeded,
    Upload,
    UploadStore,
    open_uploads,
)
from chatcore.uploads.files import TooLarge, UploadFiles
from chatcore.uploads.images import THUMB_MAX, BadImage, inspect
from tests.test_history import Services, services  # noqa: F401 - a fixture
from tests.test_hub import Conn, Inbox


def redis_history(tmp: Path, services: Services) -> HistoryStore:  # noqa: F811
    from chatcore.history import redis as redis_store

    client = redis_store.connect(services.redis_url())
    return redis_store.RedisHistory(client, 1000, prefix=f"t-{uuid.uuid4().hex[:8]}:")


HISTORIES: dict[str, Callable[[Path, Services], HistoryStore]] = {
    "memory": lambda tmp, _: MemoryHistory(1000),
    "sqlite": lambda tmp, _: SqliteHistory(str(tmp / "chat.db"), 1000),
    "redis": redis_history,
}


@pytest.fixture(params=sorted(HISTORIES))
def history(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    services: Services,  # noqa: F811
) -> Iterator[HistoryStore]:
    store = HISTORIES[request.param](tmp_path, services)
    yield store
    store.close()


@pytest.fixture
def uploads(history: HistoryStore) -> UploadStore:
    return open_uploads(history)


def upload(
    upload_id: str = "u" * 24,
    user: str = "alice",
    room: str = "lobby",
    cost: int = 5000,
    created: float = 1000.0,
) -> Upload:
    return Upload(
        upload_id, user, room, "cat.png", cost, "image/png", True, 8, 6,
        "image/jpeg", cost, created,
    )  # fmt: skip


class Files:
    """Records what was deleted from disk."""

    def __init__(self) -> None:
        self.deleted: list[str] = []

    def delete(self, upload_id: str) -> None:
        self.deleted.append(upload_id)


# -- the stores -----------------------------------------------------------------


def test_store_keeps_and_counts_against_the_quota(uploads: UploadStore) -> None:
    """Ensure an upload is kept, costs its owner, and the quota refuses more."""
    uploads.add(upload("a" * 24, cost=6000), quota=10000)
    assert uploads.get("a" * 24) == upload("a" * 24, cost=6000)
    assert uploads.used("alice") == 6000
    with pytest.raises(QuotaExceeded) as refused:
        uploads.add(upload("b" * 24, cost=6000), quota=10000)
    assert refused.value.used == 6000
    assert uploads.get("b" * 24) is None
    uploads.add(upload("c" * 24, user="bob", cost=6000), quota=10000)
    assert uploads.remove("a" * 24) is not None
    assert uploads.used("alice") == 0
    uploads.add(upload("b" * 24, cost=6000), quota=10000)


def test_store_claims_once_for_its_owner_and_room(uploads: UploadStore) -> None:
    """Ensure only the owner, for its room, claims an unused upload, once."""
    uploads.add(upload(), quota=10**9)
    assert uploads.claim("u" * 24, "bob", "lobby") is None
    assert uploads.claim("u" * 24, "alice", "dev") is None
    assert uploads.claim("u" * 24, "alice", "lobby") == upload()
    assert uploads.claim("u" * 24, "alice", "lobby") is None
    uploads.release("u" * 24)
    assert uploads.claim("u" * 24, "alice", "lobby") is not None
    big_id = 1_796_605_838_998_123  # Redis ids can be this large
    uploads.bind("u" * 24, "lobby", big_id)
    uploads.release("u" * 24)  # bound: stays bound
    assert uploads.get("u" * 24) == upload().bound(big_id)
    assert uploads.claim("u" * 24, "alice", "lobby") is None


def test_store_finds_what_to_sweep(uploads: UploadStore) -> None:
    """Ensure unused old uploads and those of trimmed messages are found."""
    uploads.add(upload("o" * 24, created=10.0), quota=10**9)
    uploads.add(upload("n" * 24, created=99.0), quota=10**9)
    uploads.add(upload("t" * 24, created=10.0), quota=10**9)
    uploads.claim("t" * 24, "alice", "lobby")
    uploads.bind("t" * 24, "lobby", 5)
    assert [u.id for u in uploads.unused_before(50.0, 10)] == ["o" * 24]
    assert uploads.attached_rooms() == ["lobby"]
    assert uploads.attached_up_to("lobby", 4, 10) == []
    assert [u.id for u in uploads.attached_up_to("lobby", 5, 10)] == ["t" * 24]
    uploads.remove("t" * 24)
    assert uploads.attached_rooms() == []


def test_attachment_is_stored_with_its_message_and_gone_on_delete(
    history: HistoryStore,
) -> None:
    """Ensure every history store keeps a message's attachment, an edit
    keeps it, and a delete drops it."""
    attachment = Attachment("a" * 24, "a b.png", 10, "image/png", True, 4, 3)
    draft = Draft("lobby", "u1", "alice", "#000", "", 1, None, attachment=attachment)
    stored = history.append(draft)
    history.flush()
    assert history.get("lobby", stored.id) == stored
    assert stored.to_wire()["attachment"]["url"] == f"/files/{'a' * 24}/a%20b.png"
    edited = history.change(stored, "a caption", 2)
    assert history.get("lobby", stored.id).attachment == attachment  # type: ignore[union-attr]
    deleted = history.change(edited, None, 3)
    assert deleted.attachment is None
    assert history.get("lobby", stored.id).attachment is None  # type: ignore[union-attr]
    assert "attachment" not in history.since("lobby", 0, 10)[0].to_wire()


# -- the rules --------------------------------------------------------------------


def test_tokens_name_their_user_until_they_expire() -> None:
    """Ensure a token names its user, expires, and a changed one is refused."""
    now = [1000.0]
    rules = Uploading(open_uploads(MemoryHistory(10)), Files(), lambda: now[0])
    token, expires = rules.token("u0123456789abcde")
    assert expires == (1000 + TOKEN_SECONDS) * 1000
    assert rules.user_of(token) == "u0123456789abcde"
    payload, _, mac = token.rpartition(".")
    forged = f"{int(payload.split('.')[0]) + 9999}.{payload.split('.')[1]}.{mac}"
    assert rules.user_of(forged) is None
    assert rules.user_of(token[:-1] + ("0" if token[-1] != "0" else "1")) is None
    assert rules.user_of("garbage") is None
    assert rules.user_of(None) is None
    other = Uploading(open_uploads(MemoryHistory(10)), Files(), lambda: now[0])
    assert other.user_of(token) is None  # another chat's key
    now[0] += TOKEN_SECONDS + 1
    assert rules.user_of(token) is None


def test_sweep_deletes_unused_after_an_hour_and_trimmed() -> None:
    """Ensure the sweep deletes an unused upload only after UNUSED_SECONDS,
    and an attached one once retention trimmed its message."""
    now = [1000.0]
    store, files = open_uploads(MemoryHistory(10)), Files()
    rules = Uploading(store, files, lambda: now[0])
    store.add(upload("o" * 24, created=1000.0), 10**9)
    store.add(upload("t" * 24, created=1000.0), 10**9)
    store.claim("t" * 24, "alice", "lobby")
    store.bind("t" * 24, "lobby", 7)
    floor = {"lobby": 6}
    now[0] += UNUSED_SECONDS - 1
    assert rules.sweep(floor.__getitem__) == 0
    now[0] += 2
    assert rules.sweep(floor.__getitem__) == 1
    assert files.deleted == ["o" * 24]
    floor["lobby"] = 7
    assert rules.sweep(floor.__getitem__) == 1
    assert files.deleted == ["o" * 24, "t" * 24]
    assert store.used("alice") == 0


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("photo.png", "photo.png"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\a.txt", "a.txt"),
        ("evil\u202egnp.exe", "evilgnp.exe"),
        ("line\nbreak.txt", "linebreak.txt"),
        (".hidden", "hidden"),
        ("", "file"),
        ("thumb", "file"),
        ("x" * 300 + ".jpeg", "x" * 195 + ".jpeg"),
    ],
)
def test_clean_name(raw: str, clean: str) -> None:
    """Ensure file names lose directories and control characters, and stay short."""
    assert clean_name(raw) == clean


# -- bytes ------------------------------------------------------------------------


def png(width: int = 900, height: int = 500, mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height), "red").save(out, "PNG")
    return out.getvalue()


def test_inspect_tells_images_by_their_bytes(tmp_path: Path) -> None:
    """Ensure an image is known by its bytes, and anything else is a file."""
    path = tmp_path / "anything.txt"
    path.write_bytes(png())
    found = inspect(path)
    assert (found.type, found.image, found.width, found.height) == (
        "image/png",
        True,
        900,
        500,
    )
    Image.new("RGB", (20, 10), "red").save(path, "BMP")  # Pillow reads it; we do not
    assert (inspect(path).image, inspect(path).type) == (
        False,
        "application/octet-stream",
    )
    path.write_bytes(
        b"<svg xmlns='http://www.w3.org/2000/svg'><script>x</script></svg>"
    )
    assert inspect(path).image is False
    assert inspect(path).type == "application/octet-stream"


def test_thumbnail_is_small_and_has_no_metadata(tmp_path: Path) -> None:
    """Ensure a thumbnail fits THUMB_MAX and carries no EXIF of the original."""
    image = Image.new("RGB", (1200, 800), "blue")
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    path = tmp_path / "photo.jpg"
    image.save(path, "JPEG", exif=exif)
    assert b"SecretCam" in path.read_bytes()
    found = inspect(path)
    assert found.thumb is not None and b"SecretCam" not in found.thumb
    with Image.open(io.BytesIO(found.thumb)) as thumb:
        assert max(thumb.size) == THUMB_MAX
        assert not thumb.getexif()


def test_damaged_or_huge_images_are_bad_files(tmp_path: Path) -> None:
    """Ensure a truncated image and a decompression bomb are refused."""
    path = tmp_path / "x.png"
    path.write_bytes(png()[:200])
    with pytest.raises(BadImage):
        inspect(path)
    path.write_bytes(png(10_000, 10_000, "1"))  # 100 megapixels, a small file
    with pytest.raises(BadImage, match="million"):
        inspect(path)


def test_receive_stops_at_the_cap(tmp_path: Path) -> None:
    """Ensure a body over the cap is refused without reading it all."""
    files = UploadFiles(tmp_path / "up")
    body = io.BytesIO(b"x" * 1_000_000)
    with pytest.raises(TooLarge):
        files.receive(body.read, None, 100_000)
    assert body.tell() < 200_000
    assert list((tmp_path / "up" / "tmp").iterdir()) == []
    path, size = files.receive(io.BytesIO(b"abc").read, 3, 10)
    assert (path.read_bytes(), size) == (b"abc", 3)


def test_claimed_constant_is_not_a_message_id() -> None:
    assert CLAIMED == 0


# -- the hub ----------------------------------------------------------------------


class UploadHub:
    """A hub with uploads in memory and a steppable clock."""

    def __init__(self, **settings: Any) -> None:
        self.now = 1000.0
        self.history = MemoryHistory(1000)
        self.files = Files()
        self.store = open_uploads(self.history)
        self.hub = Hub(
            Settings(**settings),
            self.history,
            MemoryNames(),
            lambda: self.now,
            random.Random(1),
            uploads=Uploading(self.store, self.files, lambda: self.now),
        )

    def connect(self, name: str) -> tuple[Conn, str]:
        conn = Conn(name)
        inbox = Inbox(self.hub.connect(conn, name=name))
        return conn, inbox.one(conn, "welcome")["user"]["id"]

    def send(self, conn: Conn, **frame: Any) -> Inbox:
        return Inbox(self.hub.receive(conn, json.dumps(frame)))

    def uploaded(self, user_id: str, upload_id: str = "u" * 24) -> str:
        self.store.add(upload(upload_id, user=user_id), 10**9)
        return upload_id


def test_a_message_carries_its_upload_once() -> None:
    """Ensure the attachment reaches the room, is bound to the message, and
    a resend with the same client_id is acknowledged, not refused."""
    h = UploadHub()
    alice, alice_id = h.connect("alice")
    bob, _ = h.connect("bob")
    upload_id = h.uploaded(alice_id)
    sent = dict(type="message", room="lobby", attachment=upload_id, client_id="c1")
    inbox = h.send(alice, **sent)
    message = inbox.one(bob, "message")
    assert message["text"] == "" and message["attachment"]["id"] == upload_id
    assert h.store.get(upload_id).message_id == message["id"]  # type: ignore[union-attr]
    again = h.send(alice, **sent)
    assert again.one(alice, "message")["id"] == message["id"]
    assert bob not in again
    sent.update(client_id="c2")
    assert h.send(alice, **sent).error(alice)["code"] == "bad_request"


def test_a_refused_message_gives_its_upload_back() -> None:
    """Ensure an upload whose message was refused (rate limit) may be used
    by the next message."""
    h = UploadHub(rate=0.001, burst=1)
    alice, alice_id = h.connect("alice")
    h.send(alice, type="message", room="lobby", text="first")
    upload_id = h.uploaded(alice_id)
    refused = h.send(alice, type="message", room="lobby", attachment=upload_id)
    assert refused.error(alice)["code"] == "rate_limited"
    assert h.store.get(upload_id).message_id is None  # type: ignore[union-attr]
    h.now += 2000
    ok = h.send(alice, type="message", room="lobby", attachment=upload_id)
    assert ok.one(alice, "message")["attachment"]["id"] == upload_id


def test_deleting_the_message_deletes_the_upload() -> None:
    """Ensure a delete removes the upload and its files; an edit keeps them."""
    h = UploadHub()
    alice, alice_id = h.connect("alice")
    upload_id = h.uploaded(alice_id)
    sent = h.send(alice, type="message", room="lobby", attachment=upload_id)
    message_id = sent.one(alice, "message")["id"]
    h.send(alice, type="edit", room="lobby", id=message_id, text="caption")
    assert h.files.deleted == [] and h.store.get(upload_id) is not None
    h.send(alice, type="delete", room="lobby", id=message_id)
    assert h.files.deleted == [upload_id]
    assert h.store.get(upload_id) is None and h.store.used(alice_id) == 0


def test_without_uploads_attachments_and_tokens_are_refused() -> None:
    """Ensure a hub without uploads refuses both, saying uploads are off."""
    h = UploadHub()
    h.hub = Hub(Settings(), h.history, MemoryNames(), lambda: h.now)
    alice, _ = h.connect("alice")
    error = h.send(alice, type="message", room="lobby", attachment="x" * 24)
    assert error.error(alice)["message"] == "uploads are turned off on this server"
    assert h.send(alice, type="upload_token").error(alice)["code"] == "forbidden"
