"""The documentation matches the code: every setting and error code is described."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chatcore import protocol
from chatcore.config import markdown_table
from chatcore.frames import CloseCode
from chatcore.protocol import ErrorCode

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
PROTOCOL = (ROOT / "docs" / "protocol.md").read_text()


def test_readme_configuration_table_is_current() -> None:
    """Ensure the README's configuration table is the one the settings generate."""
    assert markdown_table() in README


@pytest.mark.parametrize("code", list(ErrorCode), ids=lambda c: c.value)
def test_protocol_doc_describes_every_error_code(code: ErrorCode) -> None:
    """Ensure docs/protocol.md explains each error code the server can send."""
    assert f"| `{code.value}`" in PROTOCOL


@pytest.mark.parametrize("code", list(CloseCode), ids=lambda c: c.name)
def test_protocol_doc_describes_every_close_code(code: CloseCode) -> None:
    """Ensure docs/protocol.md explains each close code the server sends."""
    assert f"| {int(code)} |" in PROTOCOL


def test_readme_test_command_is_what_ci_runs() -> None:
    """Ensure .ci/run calls the test command the README gives."""
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci.strip() in README


CLIENT_TABLE = PROTOCOL.split("## Client → server", 1)[1].split("## Server", 1)[0]
SERVER_TABLE = PROTOCOL.split("## Server → client", 1)[1].split("### Error codes", 1)[0]


@pytest.mark.parametrize("kind", sorted(protocol._DECODERS))
def test_protocol_doc_lists_every_client_frame_type(kind: str) -> None:
    """Ensure every frame type the server decodes is in the client table."""
    assert f"| `{kind}` |" in CLIENT_TABLE


def _server_frame_types() -> set[str]:
    """Every frame type the server encodes: the first argument of each
    ``protocol.encode("...")`` (or ``encode("...")``) call in chatcore."""
    pattern = re.compile(r'(?:protocol\.|(?<![.\w]))encode\(\s*"([a-z_]+)"')
    found: set[str] = set()
    for path in (ROOT / "chatcore").rglob("*.py"):
        found |= set(pattern.findall(path.read_text()))
    return found


def test_server_frame_types_are_found() -> None:
    """Ensure the scan below finds the frames (a broken pattern finds none)."""
    assert {"welcome", "message", "presence", "error", "reset"} <= _server_frame_types()


@pytest.mark.parametrize("kind", sorted(_server_frame_types()))
def test_protocol_doc_lists_every_server_frame_type(kind: str) -> None:
    """Ensure every frame type the server sends is in the server table."""
    assert f"| `{kind}`" in SERVER_TABLE
