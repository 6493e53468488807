"""Files and images on a real server: uploads over HTTP, attachments on
messages, how files are served, limits, private rooms, deletes, and two
processes on one Redis sharing one upload directory."""

from __future__ import annotations

import http.client
import io
import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from PIL import Image

from tests.accounts_support import connect_as, cookie_header, first_invite, redeem
from tests.redis_server import needs_redis, run_redis
from tests.support import (
    MS,
    Client,
    ServerProcess,
    closed_after_the_test,
    connect as open_client,
    http_get,
    run_server,
)

Start = Callable[..., ServerProcess]
EVIL_HTML = b"<!doctype html><html><body><script>window.ran=1</script></body></html>"


def connect(server: ServerProcess, **kwargs: Any) -> Client:
    return closed_after_the_test(open_client(server, **kwargs))


def png(width: int = 900, height: int = 500) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def token_of(client: Client) -> str:
    client.send(type="upload_token")
    return client.recv_until("upload_token")["token"]


def post(
    server: ServerProcess,
    body: bytes,
    *,
    token: str | None,
    room: str = "lobby",
    name: str = "file.bin",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    """POST /upload; return the status and the JSON answer."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    sent = {"X-Filename": name, **({"X-Upload-Token": token} if token else {})}
    connection.request(
        "POST", f"/upload?room={room}", body, {**sent, **(headers or {})}
    )
    response = connection.getresponse()
    body = response.read()
    connection.close()
    try:
        return response.status, json.loads(body or b"{}")
    except ValueError:  # the access gate's refusal: plain text
        return response.status, {"text": body.decode()}


def send_with(
    client: Client, upload_id: str, room: str = "lobby", text: str = ""
) -> dict[str, Any]:
    client.send(type="message", room=room, text=text, attachment=upload_id)
    return client.recv_until("message", lambda f: "attachment" in f)


def upload_dir(tmp_path: Path) -> Path:
    return tmp_path / "uploads"


@pytest.fixture
def server(server_with: Start, tmp_path: Path) -> ServerProcess:
    return server_with("--upload-dir", str(upload_dir(tmp_path)))


def test_image_by_its_bytes_reaches_the_room_with_a_thumbnail(
    server: ServerProcess,
) -> None:
    """Ensure a PNG named .txt is an image; the message carries it to the
    room; the file and its thumbnail are served as images, sandboxed."""
    alice, bob = connect(server, name="alice"), connect(server, name="bob")
    status, answer = post(server, png(), token=token_of(alice), name="photo.txt")
    assert status == 201, answer
    upload_id = answer["id"]
    assert answer == {
        "id": upload_id,
        "name": "photo.txt",
        "size": len(png()),
        "type": "image/png",
        "image": True,
        "width": 900,
        "height": 500,
        "url": f"/files/{upload_id}/photo.txt",
        "thumb_url": f"/files/{upload_id}/thumb",
    }
    mine = send_with(alice, answer["id"])
    theirs = bob.recv_until("message")
    assert theirs["attachment"] == mine["attachment"]
    assert theirs["text"] == ""
    attachment = theirs["attachment"]
    assert attachment["url"] == f"/files/{answer['id']}/photo.txt"
    status, headers, body = http_get(server.http_url + attachment["url"])
    assert (status, headers["Content-Type"], body) == (200, "image/png", png())
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in headers["Content-Security-Policy"]
    assert headers["Content-Disposition"].startswith("inline;")
    status, headers, thumb = http_get(server.http_url + attachment["thumb_url"])
    assert (status, headers["Content-Type"]) == (200, "image/jpeg")
    with Image.open(io.BytesIO(thumb)) as image:
        assert image.size == (400, 222)


def test_disguised_html_is_a_download_never_a_page(server: ServerProcess) -> None:
    """Ensure an HTML file named .png is not an image: served as an
    attachment of application/octet-stream with nosniff and a sandbox."""
    alice = connect(server, name="alice")
    status, answer = post(server, EVIL_HTML, token=token_of(alice), name="cat.png")
    assert status == 201
    assert (answer["image"], answer["type"]) == (False, "application/octet-stream")
    message = send_with(alice, answer["id"], text="look")
    assert "thumb_url" not in message["attachment"]
    status, headers, body = http_get(server.http_url + message["attachment"]["url"])
    assert status == 200 and body == EVIL_HTML
    assert headers["Content-Type"] == "application/octet-stream"
    assert headers["Content-Disposition"] == (
        "attachment; filename=\"cat.png\"; filename*=UTF-8''cat.png"
    )
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert http_get(server.http_url + f"/files/{answer['id']}/thumb")[0] == 404


def test_unicode_names_from_the_query(server: ServerProcess) -> None:
    """Ensure a name given as the ``name`` query parameter (UTF-8, escaped)
    is kept, and downloads under an RFC 6266 ``filename*``."""
    alice = connect(server, name="alice")
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request(
        "POST",
        "/upload?room=lobby&name=" + quote("résumé 2026.pdf"),
        b"%PDF-1.4 not really",
        {"X-Upload-Token": token_of(alice)},
    )
    response = connection.getresponse()
    answer = json.loads(response.read())
    connection.close()
    assert (response.status, answer["name"]) == (201, "résumé 2026.pdf")
    url = send_with(alice, answer["id"])["attachment"]["url"]
    assert url.endswith("/r%C3%A9sum%C3%A9%202026.pdf")
    headers = http_get(server.http_url + url)[1]
    assert headers["Content-Disposition"] == (
        'attachment; filename="r_sum_ 2026.pdf"; '
        "filename*=UTF-8''r%C3%A9sum%C3%A9%202026.pdf"
    )


def test_too_big_is_refused_before_the_body_is_read(server_with: Start) -> None:
    """Ensure a body over --max-upload gets 413 with a message at once, even
    while the client has sent almost none of what it announced."""
    server = server_with("--max-upload", "4K")
    alice = connect(server, name="alice")
    token = token_of(alice)
    status, answer = post(server, b"x" * 5000, token=token)
    assert (status, answer["error"]) == (413, "too_large")
    assert answer["message"] == "the file is 5 KB; the limit is 4 KB"
    # The server closes instead of reading 100 MB it will not keep.
    status = refused_unread(server, b"X-Upload-Token: " + token.encode() + b"\r\n")
    assert status == b"HTTP/1.1 413 Request Entity Too Large"
    # So it does with any refusal before the body.
    assert refused_unread(server, b"") == b"HTTP/1.1 401 Unauthorized"
    # Chunked, without a length: cut as soon as it passes the limit.
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request(
        "POST",
        "/upload?room=lobby",
        iter([b"y" * 3000] * 3),
        {"X-Upload-Token": token},
        encode_chunked=True,
    )
    response = connection.getresponse()
    assert response.status == 413
    assert json.loads(response.read())["message"] == (
        "the file is larger; the limit is 4 KB"
    )
    connection.close()


def test_quota_refuses_more_until_a_delete_frees_it(
    server_with: Start, tmp_path: Path
) -> None:
    """Ensure --upload-quota refuses an upload past it with a message, and
    deleting a message with a file gives its room back."""
    server = server_with(
        "--upload-quota", "10K", "--upload-dir", str(upload_dir(tmp_path))
    )
    alice = connect(server, name="alice")
    token = token_of(alice)
    first = post(server, b"a" * 4096, token=token)[1]
    assert post(server, b"b" * 4096, token=token)[0] == 201
    status, answer = post(server, b"c" * 4096, token=token)
    assert (status, answer["error"]) == (413, "quota")
    assert "delete" in answer["message"]
    message = send_with(alice, first["id"])
    alice.send(type="delete", room="lobby", id=message["id"])
    alice.recv_until("deleted")
    assert post(server, b"c" * 4096, token=token)[0] == 201


def refused_unread(server: ServerProcess, headers: bytes) -> bytes:
    """Announce 100 MB, send 1 KB: the answer comes, then the server closes
    (it does not read the rest first). Returns the status line."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(
            b"POST /upload?room=lobby HTTP/1.1\r\nHost: x\r\n"
            + headers
            + b"Content-Length: 100000000\r\n\r\n"
            + b"x" * 1000
        )
        reply = sock.recv(4096)
        while sock.recv(4096):
            pass
    return reply.split(b"\r\n", 1)[0]


def test_bad_requests_get_clear_errors(server: ServerProcess) -> None:
    """Ensure a missing or forged token, another site's page, a bad room and
    a damaged image are each refused with their own status and message."""
    alice = connect(server, name="alice")
    token = token_of(alice)
    assert post(server, png(), token=None)[0] == 401
    assert post(server, png(), token=token[:-2] + "00")[0] == 401
    status, answer = post(
        server, png(), token=token, headers={"Origin": "https://evil.example"}
    )
    assert (status, answer["error"]) == (403, "forbidden")
    status, answer = post(server, png(), token=token, room="no%20spaces")
    assert (status, answer["error"]) == (400, "bad_request")
    assert post(server, b"", token=token)[1]["message"] == "the file is empty"
    status, answer = post(server, png()[:300], token=token, name="broken.png")
    assert (status, answer["error"]) == (422, "bad_file")
    assert "cannot be read" in answer["message"]


def test_attachments_are_checked(server: ServerProcess) -> None:
    """Ensure only the uploader attaches an upload, in its room, once."""
    alice, bob = connect(server, name="alice"), connect(server, name="bob")
    answer = post(server, png(), token=token_of(alice))[1]
    bob.send(type="message", room="lobby", text="", attachment=answer["id"])
    assert bob.recv_until("error")["code"] == "bad_request"
    alice.send(type="join", room="dev")
    alice.recv_until("presence", lambda f: f["room"] == "dev")
    alice.send(type="message", room="dev", text="", attachment=answer["id"])
    assert alice.recv_until("error")["code"] == "bad_request"
    send_with(alice, answer["id"])
    alice.send(type="message", room="lobby", text="again", attachment=answer["id"])
    assert alice.recv_until("error")["code"] == "bad_request"
    alice.send(type="message", room="lobby", text="")
    assert alice.recv_until("error")["message"] == "the message is empty"


def test_private_room_files_are_hidden_from_non_members(server: ServerProcess) -> None:
    """Ensure a non-member gets the same 404 as for an unknown file, and may
    not upload to the room; a member added later may see it."""
    alice, bob = connect(server, name="alice"), connect(server, name="bob")
    alice.send(type="create", room="plans", private=True)
    alice.recv_until("presence", lambda f: f["room"] == "plans")
    status, answer = post(server, png(), token=token_of(alice), room="plans")
    assert status == 201
    url = send_with(alice, answer["id"], room="plans")["attachment"]["url"]
    bob_token = token_of(bob)
    as_bob = {"X-Upload-Token": bob_token}
    missing = http_get(server.http_url + "/files/" + "x" * 24 + "/a.png", as_bob)
    hidden = http_get(server.http_url + url, as_bob)
    assert hidden[0] == missing[0] == 404 and hidden[2] == missing[2]
    assert http_get(server.http_url + url)[0] == 404  # nobody, over HTTP
    status, _ = post(server, png(), token=bob_token, room="plans")
    assert status == 403
    cookie = {"Cookie": f"chat_upload={token_of(alice)}"}
    assert http_get(server.http_url + url, cookie)[0] == 200
    alice.send(type="add", room="plans", name="bob")
    bob.recv_until("room_added")
    assert http_get(server.http_url + url, as_bob)[0] == 200


def test_delete_removes_the_files_from_disk(
    server: ServerProcess, tmp_path: Path
) -> None:
    """Ensure deleting a message deletes its file and thumbnail."""
    alice = connect(server, name="alice")
    answer = post(server, png(), token=token_of(alice))[1]
    stored = upload_dir(tmp_path) / answer["id"]
    assert stored.exists() and stored.with_suffix(".thumb").exists()
    message = send_with(alice, answer["id"])
    alice.send(type="delete", room="lobby", id=message["id"])
    assert "attachment" not in alice.recv_until("deleted")
    assert not stored.exists() and not stored.with_suffix(".thumb").exists()
    assert http_get(server.http_url + message["attachment"]["url"])[0] == 404
    alice.send(type="history", room="lobby")
    page = alice.recv_until("history")
    assert all("attachment" not in m for m in page["messages"])


def test_max_upload_zero_turns_uploads_off(server_with: Start) -> None:
    """Ensure --max-upload 0 tells the page (welcome) and refuses uploads."""
    server = server_with("--max-upload", "0")
    alice = connect(server, name="alice")
    assert alice.welcome["limits"]["max_upload"] == 0
    alice.send(type="upload_token")
    assert alice.recv_until("error")["code"] == "forbidden"
    assert post(server, png(), token="x")[0] == 404


def test_head_answers_like_get(server: ServerProcess) -> None:
    """Ensure HEAD on a file gives its headers and length, no body."""
    alice = connect(server, name="alice")
    answer = post(server, png(), token=token_of(alice))[1]
    url = send_with(alice, answer["id"])["attachment"]["url"]
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request("HEAD", url)
    response = connection.getresponse()
    assert response.status == 200 and response.read() == b""
    assert response.getheader("Content-Length") == str(len(png()))
    connection.close()


@needs_redis
def test_two_processes_share_the_upload_dir(tmp_path: Path) -> None:
    """Ensure an upload to process 1, attached there, reaches a member on
    process 2 and is served by process 2; a delete on 2 removes the files."""
    shared = str(upload_dir(tmp_path))
    with (
        run_redis(tmp_path / "redis") as redis_server,
        run_server(
            "--redis", redis_server.url, "--upload-dir", shared, log_dir=tmp_path
        ) as one,
        run_server(
            "--redis", redis_server.url, "--upload-dir", shared, log_dir=tmp_path
        ) as two,
    ):
        alice, bob = connect(one, name="alice"), connect(two, name="bob")
        answer = post(one, png(), token=token_of(alice))[1]
        send_with(alice, answer["id"])
        seen = bob.recv_until("message", lambda f: "attachment" in f)
        status, _, body = http_get(
            two.http_url + seen["attachment"]["url"],
            {"X-Upload-Token": token_of(bob)},
        )
        assert (status, body) == (200, png())
        # A token from process 2 is good on process 1: one key in Redis.
        assert post(one, png(), token=token_of(bob))[0] == 201
        # Alice's tabs: one on each process; she deletes through 2.
        alice_two = connect(two, key=alice.welcome["key"])
        alice_two.send(type="delete", room="lobby", id=seen["id"])
        alice_two.recv_until("deleted")
        deadline = time.monotonic() + 5000 * MS
        while (Path(shared) / answer["id"]).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not (Path(shared) / answer["id"]).exists()
        assert http_get(one.http_url + seen["attachment"]["url"])[0] == 404


def test_accounts_upload_with_their_session(server_with: Start) -> None:
    """Ensure with --access invite the session names the uploader (no token
    needed), and without a session the gate refuses uploads and files."""
    server = server_with("--access", "invite")
    session = redeem(server, first_invite(server), "alice")
    alice = connect_as(server, session)
    status, answer = post(server, png(), token=None, headers=cookie_header(session))
    assert status == 201, answer
    url = send_with(alice, answer["id"])["attachment"]["url"]
    assert http_get(server.http_url + url, cookie_header(session))[0] == 200
    assert http_get(server.http_url + url)[0] == 401
    # A token is no way around the gate.
    assert post(server, png(), token=token_of(alice))[0] == 401


def test_transcripts_link_the_file(server: ServerProcess) -> None:
    """Ensure the transcript page and the text download name a message's file."""
    alice = connect(server, name="alice")
    answer = post(server, EVIL_HTML, token=token_of(alice), name="notes <b>.html")[1]
    url = send_with(alice, answer["id"], text="minutes")["attachment"]["url"]
    page = http_get(server.http_url + "/rooms/lobby")[2].decode()
    assert f'<a class="file" href="{url}">notes &lt;b&gt;.html</a>' in page
    text = http_get(server.http_url + "/rooms/lobby/transcript.txt")[2].decode()
    assert f"<alice> minutes [file: notes <b>.html {url}]" in text
