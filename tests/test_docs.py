"""The documentation matches the code: every setting and error code is described."""

from __future__ import annotations

from pathlib import Path

import pytest

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
