"""Transcripts of edited and deleted messages, through the page app in process."""

from __future__ import annotations

import json

from chatcore.history import Draft
from tests.test_pages import Pages

TS = 1_700_000_000_000  # 2023-11-14 22:13:20 UTC


def pages_with_changes() -> Pages:
    """A room with a plain, an edited and a deleted message (ids 1..3;
    the edit took id 4 and the delete id 5)."""
    pages = Pages()
    history = pages.chat.history
    plain, typo, secret = (
        history.append(Draft("lobby", "u1", "alice", "#c0392b", text, TS, None))
        for text in ("plain words", "helo", "secret words")
    )
    history.change(typo, "hello", TS + 60_000)
    history.change(secret, None, TS + 120_000)
    history.flush()
    return pages


def test_the_page_marks_edits_and_shows_tombstones() -> None:
    """Ensure the transcript page marks an edit with its time and shows a
    deleted message as 'message deleted', never its text."""
    page = pages_with_changes().get("/rooms/lobby")
    assert page.status == 200
    assert "plain words" in page.body
    assert "hello" in page.body
    assert 'title="edited 2023-11-14 22:14:20 UTC">(edited)' in page.body
    assert '<span class="text deleted">message deleted</span>' in page.body
    assert "secret" not in page.body
    assert "Newer" not in page.body  # the ids after the last message are revisions


def test_the_downloads_mark_edits_and_show_tombstones() -> None:
    """Ensure .txt and .jsonl carry the edit and the tombstone, not the text."""
    pages = pages_with_changes()
    text = pages.get("/rooms/lobby/transcript.txt").body
    lines = text.splitlines()
    assert lines[1].endswith("<alice> hello (edited 2023-11-14 22:14:20 UTC)")
    assert lines[2].endswith("#3 <alice> (message deleted)")
    jsonl = pages.get("/rooms/lobby/transcript.jsonl").body
    rows = [json.loads(line) for line in jsonl.splitlines()]
    assert [(r["id"], r.get("edited"), r.get("deleted")) for r in rows] == [
        (1, None, None),
        (2, TS + 60_000, None),
        (3, None, True),
    ]
    assert rows[2]["text"] == ""
    assert "secret" not in text + jsonl
