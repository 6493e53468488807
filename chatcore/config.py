"""Every setting of the chat server, its default, and how it is read.

Settings come from three places, highest priority first: a command-line flag
(``--port 9000``), a ``CHAT_*`` environment variable (``CHAT_PORT=9000``), and
the default written here. Nothing else in the project reads ``os.environ``.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

ENV_PREFIX = "CHAT_"
ACCESS_MODES = ("open", "invite", "proxy")


class ConfigError(ValueError):
    """A setting has a value that cannot be used; the message names it."""


def _integer(text: str) -> int:
    """``text`` as an integer; the error says what was expected."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        float(text)
    except ValueError:
        raise ValueError("must be a number") from None
    raise ValueError("must be a whole number")


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError("must be a number") from None


def _positive_int(text: str) -> int:
    value = _integer(text)
    if value <= 0:
        raise ValueError("must be a positive integer")
    return value


def _non_negative_int(text: str) -> int:
    value = _integer(text)
    if value < 0:
        raise ValueError("must be 0 or a positive integer")
    return value


_SIZE_UNITS = {"": 1, "B": 1, "K": 1 << 10, "KB": 1 << 10, "M": 1 << 20, "MB": 1 << 20}
_SIZE_UNITS |= {"G": 1 << 30, "GB": 1 << 30}


def _size(text: str) -> int:
    """A size in bytes: ``10485760``, ``512K``, ``10MB`` or ``1G`` (binary units)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([A-Za-z]*)\s*", text)
    unit = match.group(2).upper() if match else ""
    if match is None or unit not in _SIZE_UNITS:
        raise ValueError("must be a number of bytes, or one with a unit: 512K, 10MB")
    if "." in match.group(1):
        raise ValueError("must be a whole number of bytes (or of K, MB...)")
    return int(match.group(1)) * _SIZE_UNITS[unit]


def _origins(text: str) -> tuple[str, ...]:
    origins = tuple(part.strip() for part in text.split(",") if part.strip())
    for origin in origins:
        if not origin.startswith(("http://", "https://")):
            raise ValueError(
                "must be origins like https://chat.example.org, comma-separated"
            )
    return origins


def _log_format(text: str) -> str:
    value = text.lower()
    if value not in {"text", "json"}:
        raise ValueError("must be text or json")
    return value


def _slow_mode(text: str) -> tuple[tuple[str, float], ...]:
    rooms: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        room, sep, seconds = part.partition("=")
        try:
            value = float(seconds)
        except ValueError:
            value = -1.0
        if not sep or not room.strip() or not 0 < value < float("inf"):
            raise ValueError(
                "must be room=seconds pairs, comma-separated: lobby=10,news=60"
            )
        rooms[room.strip()] = value
    return tuple(sorted(rooms.items()))


def _addresses(text: str) -> tuple[str, ...]:
    addresses = tuple(part.strip() for part in text.split(",") if part.strip())
    for address in addresses:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise ValueError("must be IP addresses, comma-separated") from None
    return addresses


def _access(text: str) -> str:
    value = text.strip().lower()
    if value not in ACCESS_MODES:
        raise ValueError("must be open, invite or proxy")
    return value


def _header_name(text: str) -> str:
    value = text.strip()
    if not value or not all(c.isalnum() or c == "-" for c in value):
        raise ValueError("must be an HTTP header name like Remote-User")
    return value


def _public_url(text: str) -> str:
    value = text.strip().rstrip("/")
    if value and not value.startswith(("http://", "https://")):
        raise ValueError(
            "must be the address people open, like https://chat.example.org"
        )
    return value


def _port(text: str) -> int:
    value = _integer(text)
    if not 0 <= value <= 65535:
        raise ValueError("must be between 0 and 65535")
    return value


def _positive_float(text: str) -> float:
    value = _number(text)
    if not 0 < value < float("inf"):
        raise ValueError("must be a positive number")
    return value


def _log_level(text: str) -> str:
    value = text.upper()
    if value not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ValueError("must be one of debug, info, warning, error")
    return value


def _redis_url(text: str) -> str:
    value = text.strip()
    if value and not value.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("must be a Redis URL like redis://127.0.0.1:6379/0")
    return value


def _option(
    default: Any,
    help: str,
    parse: Callable[[str], Any] = str,
    flag: str | None = None,
) -> Any:
    metadata = {"help": help, "parse": parse}
    if flag is not None:  # a flag shorter than the one the name gives
        metadata["flag"] = flag
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Settings:
    """Every setting of the server, with its default. Immutable once read."""

    host: str = _option("0.0.0.0", "address to listen on")
    port: int = _option(8000, "port for the page and the WebSocket", _port)
    max_text: int = _option(2000, "longest message text, in characters", _positive_int)
    rate: float = _option(
        5.0,
        "messages per second a connection may send, sustained",
        _positive_float,
    )
    burst: int = _option(
        10,
        "messages a connection may send at once before the rate applies",
        _positive_int,
    )
    max_frame: int = _option(
        65536,
        "largest WebSocket frame or message in bytes; bigger ones close with 1009",
        _positive_int,
    )
    db: str = _option(
        "chat.db", "SQLite file for history; :memory: keeps it in memory only"
    )
    history_max: int = _option(
        10000,
        "ids kept per room (edits and deletes take one each); "
        "older messages are trimmed",
        _positive_int,
    )
    search_scan_max: int = _option(
        10000,
        "messages one search looks at, newest first, with :memory: or --redis "
        "(SQLite searches its full-text index instead)",
        _positive_int,
    )
    outbox_max: int = _option(
        1 << 20,
        "bytes queued for one slow client before it is disconnected (1008)",
        _positive_int,
    )
    close_timeout: float = _option(
        2.0,
        "seconds to wait for a closing client before dropping it",
        _positive_float,
    )
    typing_timeout: float = _option(
        8.0, "seconds after which a typing indicator expires", _positive_float
    )
    presence_max: int = _option(
        100,
        "members above which a room is big: its snapshot lists a first page "
        "and the count, joins, leaves and typing go out as counts once per tick",
        _positive_int,
    )
    presence_tick: float = _option(
        0.25,
        "seconds between the count frames of a big room whose members changed",
        _positive_float,
    )
    handshake_timeout: float = _option(
        10.0,
        "seconds a client has to send its request headers (slow clients are cut)",
        _positive_float,
    )
    max_header: int = _option(
        16384, "largest request header block in bytes (431 above)", _positive_int
    )
    max_connections: int = _option(
        100000,
        "open connections the server holds in all (503 above); each takes a "
        "file descriptor, so the open-file limit caps it too (see docs/deploy.md)",
        _positive_int,
    )
    max_conn_per_ip: int = _option(
        100,
        "open connections allowed from one address; 0 for no limit "
        "(behind a reverse proxy every client has the proxy's address)",
        _non_negative_int,
    )
    trusted_proxy: tuple[str, ...] = _option(
        (),
        "addresses of reverse proxies whose X-Forwarded-For names the client "
        "(used in logs), comma-separated, e.g. 127.0.0.1",
        _addresses,
    )
    allow_origin: tuple[str, ...] = _option(
        (),
        "other page origins allowed to open the WebSocket, comma-separated "
        "(the page's own origin is always allowed)",
        _origins,
    )
    name_ttl: float = _option(
        30 * 24 * 3600.0,
        "seconds an unused display name stays reserved for its owner's browser",
        _positive_float,
    )
    slow_mode: tuple[tuple[str, float], ...] = _option(
        (),
        "rooms where each user may post once per N seconds: lobby=10,news=60",
        _slow_mode,
    )
    ping_interval: float = _option(
        25.0,
        "seconds of silence after which the server pings a client",
        _positive_float,
    )
    ping_timeout: float = _option(
        20.0,
        "seconds a client has to answer a ping before it is dropped",
        _positive_float,
    )
    shutdown_timeout: float = _option(
        10.0, "seconds to wait for clients to close on shutdown", _positive_float
    )
    log_level: str = _option("INFO", "debug, info, warning or error", _log_level)
    log_format: str = _option("text", "text or json (one object per line)", _log_format)
    api_token: str = _option(
        "", "bearer token for the bot API (/api/...); the API is off without one"
    )
    redis_url: str = _option(
        "",
        "Redis to share rooms, history and presence between several chat "
        "processes, e.g. redis://127.0.0.1:6379/0 (history then lives in Redis "
        "and --db is not used); empty: this process alone",
        _redis_url,
        flag="--redis",
    )
    access: str = _option(
        "open",
        "who may enter: open (anyone who reaches the address), invite (people "
        "with an invite from `chat.py invite`) or proxy (the identity an "
        "authentication proxy sends in --auth-header)",
        _access,
    )
    auth_header: str = _option(
        "Remote-User",
        "with --access proxy: the request header that names the signed-in person; "
        "believed only from --trusted-proxy addresses",
        _header_name,
    )
    public_url: str = _option(
        "",
        "the address people open the chat at, for invite links "
        "(default: http://localhost:PORT)",
        _public_url,
    )
    metrics_token: str = _option(
        "",
        "bearer token that may read /metrics from any address "
        "(without it only requests from this machine may, directly or "
        "through a --trusted-proxy)",
    )
    upload_dir: str = _option(
        "",
        "directory for uploaded files; every process of one chat must share it "
        "(default: next to --db, as <db>.uploads; with --db :memory: a "
        "temporary directory removed at exit)",
    )
    max_upload: int = _option(
        10 << 20,
        "largest file one upload may be, in bytes (or 512K, 10MB); 0 turns uploads off",
        _size,
    )
    upload_quota: int = _option(
        200 << 20,
        "bytes of uploads one person may keep (or 500MB); deleting the "
        "messages frees them",
        _size,
    )
    dm_per_hour: int = _option(
        60,
        "direct conversations one user may open in an hour (finding one that "
        "exists is never refused)",
        _positive_int,
    )
    dm_max: int = _option(
        500,
        "direct conversations one user may be in; past it, nobody may open a "
        "new one with them",
        _positive_int,
    )
    redis_heartbeat: float = _option(
        5.0,
        "seconds between a process's presence heartbeats in Redis; the users of "
        "a process that stops beating leave after 3 of them",
        _positive_float,
    )

    @classmethod
    def options(cls) -> list[dataclasses.Field[Any]]:
        return list(dataclasses.fields(cls))

    @staticmethod
    def flag_for(name: str) -> str:
        override = _FIELDS[name].metadata.get("flag") if name in _FIELDS else None
        return override or "--" + name.replace("_", "-")

    @staticmethod
    def env_for(name: str) -> str:
        return ENV_PREFIX + name.upper()


_FIELDS = {option.name: option for option in dataclasses.fields(Settings)}


def build_parser(prog: str = "chat.py") -> argparse.ArgumentParser:
    """The command-line parser; ``--help`` lists every setting."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="A small self-hosted realtime chat server.",
        epilog="Every flag can also be set as the environment variable shown.",
    )
    for option in Settings.options():
        default = option.default if option.default not in ((), "") else "none"
        parser.add_argument(
            Settings.flag_for(option.name),
            dest=option.name,
            metavar=option.name.upper(),
            default=None,
            help=(
                f"{option.metadata['help']} "
                f"(env {Settings.env_for(option.name)}, "
                f"default {default})"
            ),
        )
    return parser


def from_sources(
    argv: Sequence[str], environ: Mapping[str, str], prog: str = "chat.py"
) -> Settings:
    """Read settings from argv, then the environment, then the defaults.

    Raises:
        ConfigError: a value does not parse; the message names the flag, the
            environment variable and the value.
        SystemExit: argparse's own exit for ``--help`` or an unknown flag.
    """
    namespace = build_parser(prog).parse_args(list(argv))
    values: dict[str, Any] = {}
    for option in Settings.options():
        flag = Settings.flag_for(option.name)
        env = Settings.env_for(option.name)
        raw = getattr(namespace, option.name)
        source = flag
        if raw is None and env in environ:
            raw, source = environ[env], env
        if raw is None:
            continue
        try:
            values[option.name] = option.metadata["parse"](raw)
        except ValueError as exc:
            reason = str(exc) if "must" in str(exc) else "not a valid value"
            raise ConfigError(
                f"{flag} / {env} has value {raw!r} (from {source}): {reason}"
            ) from None
    settings = Settings(**values)
    if settings.access == "proxy" and not settings.trusted_proxy:
        raise ConfigError(
            "--access proxy needs --trusted-proxy: the addresses of the "
            "authentication proxy whose --auth-header is believed"
        )
    return settings


def markdown_table() -> str:
    """The README's configuration table, generated so it cannot drift."""
    rows = ["| flag | variable | default | meaning |", "|---|---|---|---|"]
    for option in Settings.options():
        default = option.default if option.default not in ((), "") else "(none)"
        rows.append(
            f"| `{Settings.flag_for(option.name)}` | `{Settings.env_for(option.name)}` "
            f"| `{default}` | {option.metadata['help']} |"
        )
    return "\n".join(rows) + "\n"
