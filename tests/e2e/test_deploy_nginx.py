"""The shipped deployment works: the chat behind nginx with TLS, end to end.

The nginx tests render deploy/nginx/chat.conf into a throw-away nginx
configuration by substitution only (the upstream port, the listen ports, the
certificate paths; IPv6 listens dropped), so every location and proxy
directive under test is the shipped one. A self-signed certificate for
127.0.0.1 is made with openssl at test time, and nginx runs as the current
user with every path under the test's temporary directory.

The other tests check that the shipped files agree with each other and with
the server's settings: the systemd unit starts what nginx proxies to, and its
settings parse.
"""

from __future__ import annotations

import configparser
import contextlib
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import websocket

from chatcore.config import Settings, from_sources
from tests.support import MS, Client, ServerProcess, free_port, run_server

ROOT = Path(__file__).resolve().parents[2]
SITE_CONF = ROOT / "deploy" / "nginx" / "chat.conf"
UNIT_FILE = ROOT / "deploy" / "systemd" / "chat.service"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"

NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
OPENSSL = shutil.which("openssl")
MISSING = [name for name, path in (("nginx", NGINX), ("openssl", OPENSSL)) if not path]
needs_nginx = pytest.mark.skipif(
    bool(MISSING),
    reason=f"{' and '.join(MISSING) or 'nothing'} not installed: "
    "the deployment test runs the real nginx (apt-get install nginx openssl)",
)

EVIL_ORIGIN = "https://evil.example"
API_TOKEN = "deploy-test-token"

# Wraps the rendered site the way Debian's /etc/nginx/nginx.conf does
# (`include` inside `http`), with every file nginx writes under {tmp}.
NGINX_WRAPPER = """\
{user}daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{
    worker_connections 256;
}}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {site};
}}
"""


# -- rendering the shipped files ----------------------------------------------------


def substitute(text: str, old: str, new: str) -> str:
    """Replace the one occurrence of ``old``; fail loudly if the file changed."""
    found = text.count(old)
    assert found == 1, (
        f"{SITE_CONF.relative_to(ROOT)} should contain {old!r} exactly once "
        f"(found {found}): update the substitutions in this test"
    )
    return text.replace(old, new)


def render_site(upstream_port: int, http_port: int, https_port: int, tls: Path) -> str:
    """The shipped site, pointed at a test chat, test ports and a test cert."""
    text = SITE_CONF.read_text()
    for old, new in [
        ("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream_port};"),
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("listen [::]:80;", "# (IPv6 listen dropped by the test)"),
        ("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;"),
        ("listen [::]:443 ssl http2;", "# (IPv6 listen dropped by the test)"),
        ("/etc/ssl/chat/fullchain.pem", str(tls / "cert.pem")),
        ("/etc/ssl/chat/privkey.pem", str(tls / "key.pem")),
    ]:
        text = substitute(text, old, new)
    return text


def write_nginx_conf(tmp: Path, site: str) -> Path:
    """Write the rendered site and its wrapper under ``tmp``; return nginx.conf."""
    (tmp / "chat.conf").write_text(site)
    # As root, nginx's workers would switch to "nobody", who cannot read the
    # private key in the (0700) temporary directory.
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_WRAPPER.format(user=user, tmp=tmp, site=tmp / "chat.conf"))
    return conf


def nginx_cmd(tmp: Path, conf: Path, *extra: str) -> list[str]:
    assert NGINX is not None
    return [
        NGINX,
        "-p",
        f"{tmp}/",
        "-c",
        str(conf),
        "-e",
        str(tmp / "error.log"),
        *extra,
    ]


def make_certificate(directory: Path) -> Path:
    """A self-signed certificate for 127.0.0.1 and localhost, valid one day."""
    assert OPENSSL is not None
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            OPENSSL,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(directory / "key.pem"),
            "-out",
            str(directory / "cert.pem"),
        ],
        check=True,
        capture_output=True,
        timeout=30000 * MS,
    )
    return directory / "cert.pem"


def location_block(site: str, prefix: str) -> str:
    """The text of ``location <prefix> { ... }`` (no nested blocks inside)."""
    match = re.search(
        r"^\s*location " + re.escape(prefix) + r" \{(.*?)^\s*\}", site, re.M | re.S
    )
    assert match, f"no `location {prefix}` in {SITE_CONF.relative_to(ROOT)}"
    return match.group(1)


def upstream_block(site: str) -> str:
    """The text of ``upstream chat { ... }``."""
    match = re.search(r"^upstream chat \{(.*?)^\}", site, re.M | re.S)
    assert match, f"no `upstream chat` in {SITE_CONF.relative_to(ROOT)}"
    return match.group(1)


def directive(block: str, name: str) -> str:
    """The value of an uncommented directive in ``block``."""
    match = re.search(r"^\s*" + re.escape(name) + r"\s+([^;]*);", block, re.M)
    assert match, f"no {name} directive"
    return match.group(1).strip()


def seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)(ms|s|m)?", value)
    assert match, value
    return int(match.group(1)) * {"ms": 0.001, "s": 1, "m": 60, None: 1}[match[2]]


def unit_service_section() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT_FILE.read_text())
    return parser["Service"]


def unit_environment() -> dict[str, str]:
    """The CHAT_* variables of the unit's (uncommented) Environment= lines."""
    env = {}
    for line in UNIT_FILE.read_text().splitlines():
        if line.startswith("Environment="):
            name, _, value = line.removeprefix("Environment=").partition("=")
            env[name] = value
    return env


def unit_exec_args() -> list[str]:
    """ExecStart's arguments after ``chat.py``."""
    argv = shlex.split(unit_service_section()["ExecStart"])
    assert argv[1] == "chat.py", argv
    return argv[2:]


# -- a running deployment -------------------------------------------------------------


@dataclass
class Deployment:
    chat: ServerProcess
    http_port: int
    https_port: int
    cert: Path
    tmp: Path

    @property
    def origin(self) -> str:
        """The page's own origin, as a browser on https://127.0.0.1:<port>/ sends it."""
        return f"https://127.0.0.1:{self.https_port}"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))

    def https_get(
        self,
        path: str,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """GET (or POST ``data``) through nginx; also for 4xx/5xx answers."""
        request = urllib.request.Request(self.origin + path, data, headers or {})
        try:
            with urllib.request.urlopen(
                request, timeout=5000 * MS, context=self.ssl_context()
            ) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def open_ws(self, path: str = "/ws", **options: object) -> websocket.WebSocket:
        return websocket.create_connection(
            f"wss://127.0.0.1:{self.https_port}{path}",
            timeout=5000 * MS,
            sslopt={"ca_certs": str(self.cert)},
            **options,
        )

    def connect(self, name: str, room: str = "lobby") -> Client:
        """A browser-like client: the page's Origin, welcome and snapshot read."""
        ws = self.open_ws(f"/ws?name={name}&room={room}", origin=self.origin)
        client = Client(ws)
        client.welcome = client.recv()
        assert client.welcome["type"] == "welcome", client.welcome
        client.recv_until("presence", lambda f: f["event"] == "snapshot")
        return client


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGQUIT (graceful), then SIGTERM (fast), then SIGKILL to nginx's group."""
    for sig in (signal.SIGQUIT, signal.SIGTERM):
        if proc.poll() is not None:
            return
        proc.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5000 * MS)
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextlib.contextmanager
def run_nginx(conf: Path, tmp: Path, https_port: int) -> Iterator[None]:
    """Run nginx in the foreground until the block ends; wait for its https port."""
    check = subprocess.run(
        nginx_cmd(tmp, conf, "-t"), capture_output=True, timeout=10000 * MS
    )
    assert check.returncode == 0, check.stderr.decode(errors="replace")
    output = open(tmp / "nginx.out", "wb")  # closed in the finally below
    proc = subprocess.Popen(
        nginx_cmd(tmp, conf),
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own group: workers are stopped with it
    )
    try:
        deadline = time.monotonic() + 10000 * MS
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"nginx exited with {proc.returncode}:\n"
                    + (tmp / "nginx.out").read_text(errors="replace")
                    + (tmp / "error.log").read_text(errors="replace")
                )
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", https_port), 0.2).close()
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not listen on {https_port}")
            time.sleep(0.05)
        yield
    finally:
        _stop(proc)
        output.close()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """The chat as the unit runs it (but pinging every second), behind nginx."""
    tmp = tmp_path_factory.mktemp("nginx")
    cert = make_certificate(tmp / "tls")
    with run_server(
        "--max-conn-per-ip",
        "0",
        "--ping-interval",
        "1",
        "--api-token",
        API_TOKEN,
        # As the unit says: nginx's X-Forwarded-For names the client.
        "--trusted-proxy",
        unit_environment()["CHAT_TRUSTED_PROXY"],
        log_dir=tmp,
    ) as chat:
        http_port, https_port = free_port(), free_port()
        conf = write_nginx_conf(
            tmp, render_site(chat.port, http_port, https_port, cert.parent)
        )
        with run_nginx(conf, tmp, https_port):
            yield Deployment(chat, http_port, https_port, cert, tmp)


# -- through nginx ----------------------------------------------------------------


@needs_nginx
def test_page_and_health_over_https(deployment: Deployment) -> None:
    """Ensure the chat page and /healthz are served over https through nginx."""
    status, headers, body = deployment.https_get("/")
    assert status == 200, body
    assert headers["Content-Type"].startswith("text/html")
    assert b'data-ws-path="/ws"' in body
    assert b'<script type="module" src="/static/js/main.js"></script>' in body
    # The chat's own security headers pass through; nginx adds HSTS.
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert headers["Strict-Transport-Security"].startswith("max-age=")
    assert "nginx/" not in headers.get("Server", "")  # server_tokens off

    status, headers, body = deployment.https_get("/healthz")
    assert status == 200, body
    assert headers["Content-Type"].startswith("application/json")
    assert json.loads(body)["status"] == "ok"

    status, _, body = deployment.https_get("/readyz")
    assert status == 200, body
    assert json.loads(body)["ready"] is True
    # /metrics is only for this machine; the test client is on it.
    status, _, body = deployment.https_get("/metrics")
    assert status == 200, body
    assert b"chat_connections" in body


@needs_nginx
def test_bot_api_post_through_nginx(deployment: Deployment) -> None:
    """Ensure the bot API works through nginx: the Authorization header and
    a JSON body of several KiB pass, the message reaches a wss member."""
    member = deployment.connect("Reader", room="api")
    try:
        text = "é" * 1000 + " from the deploy bot"  # 2 KiB on the wire
        body = json.dumps({"text": text, "name": "deploybot"}).encode()
        status, _, answer = deployment.https_get(
            "/api/rooms/api/messages",
            data=body,
            headers={
                "Authorization": f"Bearer {API_TOKEN}",
                "Content-Type": "application/json",
            },
        )
        assert status == 201, answer
        got = member.recv_until("message")
        assert got["text"] == text
        assert got["user"]["name"] == "deploybot"
    finally:
        member.close()


@needs_nginx
def test_plain_http_redirects_to_https(deployment: Deployment) -> None:
    """Ensure http:// answers with a permanent redirect to the same path on https."""

    conn = http.client.HTTPConnection(
        "127.0.0.1", deployment.http_port, timeout=5000 * MS
    )
    try:
        conn.request("GET", "/rooms?x=1")
        response = conn.getresponse()
        response.read()
    finally:
        conn.close()
    assert response.status == 301
    # $host has no port: in production both sides are on the standard ports.
    assert response.headers["Location"] == "https://127.0.0.1/rooms?x=1"


@needs_nginx
def test_chat_over_wss_through_nginx(deployment: Deployment) -> None:
    """Ensure two browser-like clients chat over wss:// through nginx."""
    ada = deployment.connect("Ada", room="deploy")
    try:
        bob = deployment.connect("Bob", room="deploy")
        try:
            joined = ada.recv_until(
                "presence", lambda f: f["event"] == "join" and f["room"] == "deploy"
            )
            assert joined["user"]["name"] == "Bob"
            assert joined["count"] == 2

            bob.send(type="message", room="deploy", text="hello via nginx")
            for client in (ada, bob):
                got = client.recv_until("message")
                assert got["text"] == "hello via nginx"
                assert got["user"]["name"] == "Bob"
        finally:
            bob.close()
        left = ada.recv_until("presence", lambda f: f["event"] == "leave")
        assert left["user"]["name"] == "Bob"
        assert left["count"] == 1
    finally:
        ada.close()


@needs_nginx
def test_server_pings_cross_nginx_and_keep_idle_connection(
    deployment: Deployment,
) -> None:
    """Ensure the chat's keep-alive pings reach an idle client through nginx,
    its pongs reach the chat, and the connection still works afterwards.

    nginx cuts a WebSocket after proxy_read_timeout without upstream data;
    these pings are that data (test_read_timeout_outlasts_ping_interval checks
    the numbers). The chat runs with --ping-interval 1 here, so the test does
    not wait for a real timeout.
    """
    client = deployment.connect("Idle", room="idle")
    try:
        pings = 0
        deadline = time.monotonic() + 8000 * MS
        while pings < 2:  # a second ping proves the chat got the first pong
            left = deadline - time.monotonic()
            assert left > 0, f"saw {pings} ping(s) through nginx"
            client.ws.settimeout(left)
            opcode, frame = client.ws.recv_data_frame(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_PING:
                pings += 1  # websocket-client answers with a pong by itself
                assert frame.data == b"keepalive"
        client.send(type="ping", t="still here")
        assert client.recv_until("pong")["t"] == "still here"
    finally:
        client.close()


@needs_nginx
def test_cross_site_origin_refused_through_nginx(deployment: Deployment) -> None:
    """Ensure the chat's Origin check still works behind nginx: another
    site's page gets 403 (from the chat, passed on), a non-browser client
    without Origin is let in."""
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        deployment.open_ws(origin=EVIL_ORIGIN)
    assert refused.value.status_code == 403
    assert b"not allowed" in (refused.value.resp_body or b"")

    # No Origin at all: a bot or a script, which no web page can drive.
    ws = deployment.open_ws(suppress_origin=True)
    try:
        ws.settimeout(5000 * MS)
        assert json.loads(ws.recv())["type"] == "welcome"
    finally:
        ws.close()


@needs_nginx
def test_websocket_path_without_upgrade_through_nginx(
    deployment: Deployment,
) -> None:
    """Ensure a plain GET of /ws through nginx gets the chat's 400 explanation."""
    status, _, body = deployment.https_get("/ws")
    assert status == 400
    assert b"WebSocket endpoint" in body


# -- the shipped files agree -----------------------------------------------------------


def test_read_timeout_outlasts_ping_interval() -> None:
    """Ensure nginx keeps an idle WebSocket open: the chat pings a quiet
    connection after --ping-interval (checked every interval/4), well within
    the /ws location's proxy_read_timeout, under the unit's settings too."""
    ws_location = location_block(SITE_CONF.read_text(), "/ws")
    read_timeout = seconds(directive(ws_location, "proxy_read_timeout"))
    for settings in (Settings(), from_sources(unit_exec_args(), unit_environment())):
        tick = min(settings.ping_interval, settings.ping_timeout) / 4
        longest_silence = settings.ping_interval + tick
        assert read_timeout >= 2 * longest_silence, (read_timeout, settings)
    assert read_timeout > 60, "should be above nginx's default of 60 s"


def test_unit_runs_what_nginx_proxies_to() -> None:
    """Ensure the unit's settings parse and match the nginx upstream: loopback
    port 8000, no per-address cap, the history in the state directory, and a
    stop timeout above the chat's own shutdown timeout."""
    settings = from_sources(unit_exec_args(), unit_environment())
    upstream = upstream_block(SITE_CONF.read_text())
    assert directive(upstream, "server") == f"{settings.host}:{settings.port}"
    assert settings.max_conn_per_ip == 0
    service = unit_service_section()
    assert settings.db.startswith(f"/var/lib/{service['StateDirectory']}/")
    assert seconds(service["TimeoutStopSec"]) > settings.shutdown_timeout + 5


def test_upstream_keepalive_ends_before_the_chat_drops_it() -> None:
    """Ensure nginx closes an idle keep-alive connection to the chat before
    the chat's --handshake-timeout would (it drops a connection that sends no
    request in time, idle keep-alive ones included), so that nginx never
    reuses a connection the chat is closing."""
    keepalive = seconds(
        directive(upstream_block(SITE_CONF.read_text()), "keepalive_timeout")
    )
    for settings in (Settings(), from_sources(unit_exec_args(), unit_environment())):
        assert keepalive < settings.handshake_timeout, (keepalive, settings)


def test_deploy_doc_quotes_the_shipped_files() -> None:
    """Ensure every nginx directive, unit setting and certificate path that
    docs/deploy.md quotes inline is in the shipped file it comes from."""
    spans = re.findall(r"`([^`\n]+)`", DEPLOY_DOC.read_text())
    site, unit = SITE_CONF.read_text(), UNIT_FILE.read_text()
    nginx_words = (
        "proxy_",
        "keepalive",
        "client_max_body_size",
        "allow ",
        "deny ",
        "listen ",
        "server ",
        "location ",
        "upstream ",
        "limit_conn",
        "/etc/ssl/",
        "/var/www/",
    )
    from_site = [span for span in spans if span.startswith(nginx_words)]
    from_unit = [
        span for span in spans if re.fullmatch(r"[A-Z][A-Za-z]+=[^*\s][^*]*", span)
    ]
    missing = [q for q in from_site if q not in site] + [
        q for q in from_unit if q not in unit
    ]
    assert not missing, f"{DEPLOY_DOC.relative_to(ROOT)} quotes what the files lack"
    assert len(from_site) >= 10 and len(from_unit) >= 8, (from_site, from_unit)


@needs_nginx
def test_commented_examples_are_valid(tmp_path: Path) -> None:
    """Ensure the optional examples in chat.conf (limit_conn, /healthz
    restricted) are valid nginx once uncommented."""
    cert = make_certificate(tmp_path / "tls")
    site = render_site(free_port(), free_port(), free_port(), cert.parent)
    example = re.compile(
        r"^(\s*)#\s+((limit_conn\w*|location|allow|deny|proxy_\w+) .*[;{]|\})$"
    )
    uncommented = [example.sub(r"\1\2", line) for line in site.splitlines()]
    changed = sum(a != b for a, b in zip(site.splitlines(), uncommented, strict=True))
    assert changed == 12, f"found {changed} example lines, expected 12"
    conf = write_nginx_conf(tmp_path, "\n".join(uncommented) + "\n")
    check = subprocess.run(
        nginx_cmd(tmp_path, conf, "-t"), capture_output=True, timeout=10000 * MS
    )
    assert check.returncode == 0, check.stderr.decode(errors="replace")
