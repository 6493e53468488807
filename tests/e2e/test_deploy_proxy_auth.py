"""--access proxy behind the shipped nginx site, with an authentication service.

deploy/nginx/chat.conf is rendered as in test_deploy_nginx.py, with its
commented ``include`` lines for proxy mode switched on and pointed at the
shipped snippets (chat-auth.conf, chat-auth-check.conf), whose only change is
the check endpoint's address: a stand-in service (auth_backend.py) that
signs people in with HTTP Basic and names them in ``Remote-User``, as
Authelia does.
"""

from __future__ import annotations

import base64
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import websocket

from tests.e2e.test_deploy_nginx import (
    ROOT,
    Deployment,
    make_certificate,
    needs_nginx,
    render_site,
    run_nginx,
    write_nginx_conf,
)
from tests.support import (
    MS,
    Client,
    free_port,
    http_get,
    run_server,
    this_machines_outside_address,
    wait_for,
)

SNIPPETS = ROOT / "deploy" / "nginx"
CHECK_URL = "proxy_pass http://127.0.0.1:9091/api/verify;"


def basic(login: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()


ANN = {"Authorization": basic("ann", "ann-password")}


def render_with_auth(site: str, tmp: Path, backend_port: int) -> str:
    """The site with the proxy-mode includes on, pointing at copies of the
    shipped snippets in ``tmp`` (the check address swapped for the stand-in)."""
    check = (SNIPPETS / "chat-auth-check.conf").read_text()
    assert check.count(CHECK_URL) == 1
    (tmp / "chat-auth-check.conf").write_text(
        check.replace(CHECK_URL, f"proxy_pass http://127.0.0.1:{backend_port}/check;")
    )
    (tmp / "chat-auth.conf").write_text((SNIPPETS / "chat-auth.conf").read_text())
    for name, count in (("chat-auth-check.conf", 1), ("chat-auth.conf", 2)):
        line = f"# include /etc/nginx/snippets/{name};"
        assert site.count(line) == count, f"chat.conf should have {line!r} {count}x"
        site = site.replace(line, f"include {tmp / name};")
    return site


def answers(url: str) -> bool:
    try:
        return http_get(url)[0] == 401
    except OSError:
        return False


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """The chat in proxy mode behind nginx and the stand-in auth service."""
    tmp = tmp_path_factory.mktemp("nginx-auth")
    cert = make_certificate(tmp / "tls")
    backend_port = free_port()
    backend = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("auth_backend.py")),
            str(backend_port),
        ]
    )
    outside = this_machines_outside_address()
    try:
        wait_for(
            lambda: answers(f"http://127.0.0.1:{backend_port}/check"),
            what="the auth backend to answer",
        )
        with run_server(
            "--access",
            "proxy",
            "--trusted-proxy",
            "127.0.0.1",
            "--max-conn-per-ip",
            "0",
            "--host",
            "0.0.0.0" if outside else "127.0.0.1",
            log_dir=tmp,
        ) as chat:
            http_port, https_port = free_port(), free_port()
            site = render_site(chat.port, http_port, https_port, cert.parent)
            conf = write_nginx_conf(tmp, render_with_auth(site, tmp, backend_port))
            with run_nginx(conf, tmp, https_port):
                yield Deployment(chat, http_port, https_port, cert, tmp)
    finally:
        backend.kill()
        backend.wait()


def welcome_through(deployment: Deployment, headers: dict[str, str]) -> dict:
    ws = deployment.open_ws(
        "/ws?room=lobby",
        origin=deployment.origin,
        header=[f"{k}: {v}" for k, v in headers.items()],
    )
    client = Client(ws)
    try:
        welcome = client.recv()
        assert welcome["type"] == "welcome", welcome
        return welcome
    finally:
        ws.close()


@needs_nginx
def test_nobody_gets_in_without_the_auth_service(deployment: Deployment) -> None:
    """Ensure the page and the WebSocket are refused before sign-in."""
    assert deployment.https_get("/")[0] == 401
    assert deployment.https_get("/rooms")[0] == 401
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        deployment.open_ws("/ws", origin=deployment.origin)
    assert refused.value.status_code == 401
    wrong = {"Authorization": basic("ann", "guess")}
    assert deployment.https_get("/", headers=wrong)[0] == 401


@needs_nginx
def test_the_signed_in_person_is_who_the_service_says(deployment: Deployment) -> None:
    """Ensure the page opens and the chat names the person the service named,
    whatever Remote-User the browser itself sends."""
    status, _, body = deployment.https_get("/", headers=ANN)
    assert status == 200 and b"<html" in body.lower()

    first = welcome_through(deployment, ANN)
    assert first["user"]["name"] == "ann"
    forged = welcome_through(deployment, {**ANN, "Remote-User": "ben"})
    assert forged["user"] == first["user"]  # nginx replaced the header
    ben = welcome_through(deployment, {"Authorization": basic("ben", "ben-password")})
    assert ben["user"]["name"] == "ben" and ben["user"]["id"] != first["user"]["id"]


@needs_nginx
def test_the_header_is_believed_from_the_proxy_only(deployment: Deployment) -> None:
    """Ensure a request that names itself in Remote-User without passing
    through the proxy is refused (403), on the page and the WebSocket."""
    outside = this_machines_outside_address()
    if outside is None:
        pytest.skip("this machine has no address but loopback to come from")
    direct = f"http://{outside}:{deployment.chat.port}"
    status, _, body = http_get(direct + "/", headers={"Remote-User": "ann"})
    assert status == 403, body
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(
            f"ws://{outside}:{deployment.chat.port}/ws",
            header=["Remote-User: ann"],
            origin=direct,
            timeout=5000 * MS,
        )
    assert refused.value.status_code == 403
