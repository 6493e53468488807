"""The pure core imports no I/O machinery: checked in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PURE_MODULES = [
    "chatcore.protocol",
    "chatcore.hub",
    "chatcore.delivery",
    "chatcore.users",
    "chatcore.rooms",
    "chatcore.typists",
    "chatcore.posting",
    "chatcore.editing",
    "chatcore.reactions",
    "chatcore.reacting",
    "chatcore.replay",
    "chatcore.cluster",
    "chatcore.remote",
    "chatcore.limits",
    "chatcore.identity",
    "chatcore.config",
    "chatcore.frames",
    "chatcore.reader",
    "chatcore.peers",
    "chatcore.http11",
    "chatcore.history",
    "chatcore.history.memory",
    "chatcore.fanout",
    "chatcore.fanout.local",
    "chatcore.moderating",
    "chatcore.moderation",
    "chatcore.moderation.rules",
    "chatcore.moderation.memory",
    "chatcore.accounts",
    "chatcore.accounts.memory",
    "chatcore.accounts.names",
    "chatcore.account_commands",
    "chatcore.access",
    "chatcore.replies",
    "chatcore.search",
    "chatcore.search.scan",
    "chatcore.searching",
    "chatcore.uploading",
    "chatcore.uploads",
    "chatcore.uploads.memory",
    "chatcore.reading",
    "chatcore.reads",
    "chatcore.reads.memory",
    "chatcore.big_rooms",
    "chatcore.direct_messages",
]
FORBIDDEN = [
    "gevent",
    "geventwebsocket",
    "socket",
    "sqlite3",
    "redis",
    "select",
    "ssl",
    "PIL",
]

PROBE = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps(sorted(sys.modules)))
"""


def test_pure_modules_import_no_io() -> None:
    """Ensure the pure core pulls in no network, event loop or database module."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *PURE_MODULES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    loaded = set(json.loads(result.stdout))
    assert set(PURE_MODULES) <= loaded
    offenders = sorted(
        name
        for name in loaded
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN)
    )
    assert offenders == []
