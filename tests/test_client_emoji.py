"""The page's emoji check agrees with the server's.

The reaction field checks what is typed (static/js/reactions.js) so that it can
say at once that "ab" is not an emoji; the server's rule
(chatcore/reactions.py) is the one that counts. This runs the client's module
in Node on the samples of tests/test_reacting.py and more, and compares.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from chatcore.reactions import emoji_problem
from tests.support import ROOT
from tests.test_reacting import NOT_ONE_EMOJI, ONE_EMOJI

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")

VERDICTS = """
import { emojiProblem } from './static/js/reactions.js';
const samples = JSON.parse(process.argv[1]);
process.stdout.write(JSON.stringify(samples.map((s) => emojiProblem(s) === null)));
"""

MORE = [
    "©",
    "™",
    "↔️",
    "☺",
    "✌🏿",
    "🧑‍🤝‍🧑",
    "🫠",
    "*️⃣",
    "🇺🇳",
    "🇿",
    "👍\ufe0e",
    "a\u20e3",
    "👍a",
    "a👍",
    "\ufe0f",
    "🏻",
    "\u200d👍",
    " ",
    "\n",
    "👍\u200d",
]
SAMPLES = ONE_EMOJI + NOT_ONE_EMOJI + MORE


def test_the_page_and_the_server_agree_on_what_one_emoji_is() -> None:
    done = subprocess.run(
        [NODE, "--input-type=module", "-e", VERDICTS, json.dumps(SAMPLES)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    client = json.loads(done.stdout)
    server = [emoji_problem(sample) is None for sample in SAMPLES]
    differ = [
        (sample, c, s)
        for sample, c, s in zip(SAMPLES, client, server, strict=True)
        if c != s
    ]
    assert differ == []
