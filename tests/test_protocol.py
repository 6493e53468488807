"""Unit tests of chatcore.protocol: decoding client frames, encoding server frames."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chatcore import protocol
from chatcore.protocol import (
    INT_MAX,
    ErrorCode as E,
    History,
    Join,
    Leave,
    Nick,
    Ping,
    ProtocolError,
    SendMessage,
    Typing,
)


def frame(**fields: Any) -> str:
    """One client frame as JSON text."""
    return json.dumps(fields)


def decode_error(text: str) -> ProtocolError:
    """Decode ``text`` expecting a refusal; return the error."""
    with pytest.raises(ProtocolError) as info:
        protocol.decode(text)
    return info.value


# -- valid frames --------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"type": "message", "text": "hi"}, SendMessage("hi")),
        (
            {"type": "message", "text": "hi", "room": "dev", "client_id": "c1"},
            SendMessage("hi", room="dev", client_id="c1"),
        ),
        ({"type": "message", "text": "hi", "room": None}, SendMessage("hi")),
        (
            {"type": "message", "text": "x", "client_id": "c" * 64},
            SendMessage("x", client_id="c" * 64),
        ),
        ({"type": "join", "room": "lobby"}, Join("lobby")),
        ({"type": "join", "room": "lobby", "since": 0}, Join("lobby", since=0)),
        ({"type": "join", "room": "lobby", "since": 42}, Join("lobby", since=42)),
        ({"type": "leave", "room": "dev"}, Leave("dev")),
        ({"type": "typing", "room": "dev", "active": True}, Typing("dev", True)),
        ({"type": "typing", "room": "dev", "active": False}, Typing("dev", False)),
        ({"type": "nick", "name": "Zoë"}, Nick("Zoë")),
        ({"type": "history", "room": "dev"}, History("dev", None, 50)),
        (
            {"type": "history", "room": "dev", "before": 0, "limit": 1},
            History("dev", 0, 1),
        ),
        (
            {"type": "history", "room": "dev", "before": 7, "limit": 100},
            History("dev", 7, 100),
        ),
        ({"type": "ping"}, Ping(None)),
        ({"type": "ping", "t": 12.5}, Ping(12.5)),
        ({"type": "ping", "t": {"a": [1, "b"]}}, Ping({"a": [1, "b"]})),
        ({"type": "ping", "t": "x", "extra": 1}, Ping("x")),
    ],
    ids=lambda value: value.get("type", "") if isinstance(value, dict) else "",
)
def test_decode_valid_frames(fields: dict[str, Any], expected: Any) -> None:
    """Ensure every client type decodes into its command with the given fields."""
    assert protocol.decode(frame(**fields)) == expected


def test_decode_history_limit_is_capped_at_page_max() -> None:
    """Ensure a history limit above 100 is capped at 100, not refused."""
    command = protocol.decode(frame(type="history", room="dev", limit=1000))
    assert command == History("dev", None, protocol.HISTORY_PAGE_MAX)
    assert protocol.HISTORY_PAGE_MAX == 100


def test_decode_history_limit_defaults_to_50() -> None:
    """Ensure a history frame without limit (or with null) asks for 50."""
    assert protocol.decode(frame(type="history", room="a")).limit == 50
    assert protocol.decode(frame(type="history", room="a", limit=None)).limit == 50
    assert protocol.HISTORY_PAGE_DEFAULT == 50


def test_decode_keeps_message_text_as_given() -> None:
    """Ensure the text is relayed as given: no trimming, HTML left alone."""
    text = "  <b>bold</b> & ünïcödé 😀\n"
    command = protocol.decode(frame(type="message", text=text))
    assert isinstance(command, SendMessage)
    assert command.text == text


# -- refused frames ------------------------------------------------------------


@pytest.mark.parametrize("text", ["not json", "", "{", "{'type': 'ping'}", "\x00"])
def test_decode_non_json_is_bad_json(text: str) -> None:
    """Ensure text that is not JSON is refused with bad_json and no ref."""
    error = decode_error(text)
    assert error.code is E.BAD_JSON
    assert error.ref is None


@pytest.mark.parametrize("text", ["[]", "[1]", '"ping"', "42", "null", "true"])
def test_decode_non_object_is_bad_request(text: str) -> None:
    """Ensure JSON that is not an object is refused with bad_request."""
    error = decode_error(text)
    assert error.code is E.BAD_REQUEST
    assert error.ref is None


@pytest.mark.parametrize(
    "fields",
    [{}, {"type": None}, {"type": 5}, {"type": True}, {"type": ["message"]}],
    ids=["missing", "null", "int", "bool", "list"],
)
def test_decode_without_string_type_is_bad_request(fields: dict[str, Any]) -> None:
    """Ensure a frame without a string type is refused with bad_request."""
    error = decode_error(json.dumps(fields))
    assert error.code is E.BAD_REQUEST
    assert "type" in error.message


@pytest.mark.parametrize(
    ("fields", "missing"),
    [
        ({"type": "message"}, "text"),
        ({"type": "message", "text": None}, "text"),
        ({"type": "message", "room": "dev"}, "text"),
        ({"type": "join"}, "room"),
        ({"type": "join", "since": 3}, "room"),
        ({"type": "leave"}, "room"),
        ({"type": "typing", "active": True}, "room"),
        ({"type": "typing", "room": "dev"}, "active"),
        ({"type": "typing", "room": "dev", "active": None}, "active"),
        ({"type": "nick"}, "name"),
        ({"type": "history"}, "room"),
        ({"type": "history", "limit": 5}, "room"),
    ],
    ids=lambda value: str(value) if isinstance(value, str) else value["type"],
)
def test_decode_missing_field_is_bad_request(
    fields: dict[str, Any], missing: str
) -> None:
    """Ensure a missing required field is refused with bad_request and ref."""
    error = decode_error(json.dumps(fields))
    assert error.code is E.BAD_REQUEST
    assert error.ref == fields["type"]
    assert missing in error.message


@pytest.mark.parametrize(
    "fields",
    [
        {"type": "message", "text": 5},
        {"type": "message", "text": ["hi"]},
        {"type": "message", "text": "hi", "room": 1},
        {"type": "message", "text": "hi", "client_id": 7},
        {"type": "join", "room": 1},
        {"type": "join", "room": "a", "since": "1"},
        {"type": "join", "room": "a", "since": True},
        {"type": "join", "room": "a", "since": False},
        {"type": "join", "room": "a", "since": 1.5},
        {"type": "leave", "room": ["a"]},
        {"type": "typing", "room": "a", "active": 1},
        {"type": "typing", "room": "a", "active": "true"},
        {"type": "typing", "room": 3, "active": True},
        {"type": "nick", "name": 1},
        {"type": "nick", "name": {"first": "a"}},
        {"type": "history", "room": 1},
        {"type": "history", "room": "a", "before": True},
        {"type": "history", "room": "a", "before": "3"},
        {"type": "history", "room": "a", "limit": True},
        {"type": "history", "room": "a", "limit": "10"},
        {"type": "history", "room": "a", "limit": 10.0},
    ],
    ids=lambda fields: "-".join(f"{k}={v!r}" for k, v in fields.items()),
)
def test_decode_wrong_field_type_is_bad_request(fields: dict[str, Any]) -> None:
    """Ensure a field of the wrong type (booleans for ints too) is bad_request."""
    error = decode_error(json.dumps(fields))
    assert error.code is E.BAD_REQUEST
    assert error.ref == fields["type"]


@pytest.mark.parametrize(
    "fields",
    [
        {"type": "join", "room": "a", "since": -1},
        {"type": "history", "room": "a", "before": -1},
        {"type": "history", "room": "a", "limit": 0},
        {"type": "history", "room": "a", "limit": -5},
        {"type": "join", "room": "a", "since": 2**53},
        {"type": "history", "room": "a", "before": 10**30},
        {"type": "history", "room": "a", "limit": 2**53},
        {"type": "ping", "t": 10**30},
        {"type": "ping", "t": {"nested": [1, -(2**64)]}},
    ],
    ids=[
        "since<0",
        "before<0",
        "limit=0",
        "limit<0",
        "since=2**53",
        "before=10**30",
        "limit=2**53",
        "ping-t=10**30",
        "ping-t-nested",
    ],
)
def test_decode_out_of_range_number_is_bad_request(fields: dict[str, Any]) -> None:
    """Ensure negative since/before, a limit below 1 and integers beyond
    2**53-1 (anywhere, the echoed ping payload too) are bad_request."""
    error = decode_error(json.dumps(fields))
    assert error.code is E.BAD_REQUEST
    assert error.ref == fields["type"]


def test_decode_takes_the_largest_exact_integer() -> None:
    """Ensure 2**53-1 itself is a valid id."""
    assert protocol.decode(
        json.dumps({"type": "join", "room": "a", "since": INT_MAX})
    ) == (Join("a", INT_MAX))
    assert protocol.decode(json.dumps({"type": "ping", "t": [-INT_MAX]})) == Ping(
        [-INT_MAX]
    )


def test_decode_client_id_too_long_is_bad_request() -> None:
    """Ensure a client_id longer than 64 characters is bad_request."""
    error = decode_error(frame(type="message", text="hi", client_id="c" * 65))
    assert error.code is E.BAD_REQUEST
    assert error.ref == "message"
    assert "client_id" in error.message


@pytest.mark.parametrize("kind", ["shout", "MESSAGE", "welcome", "error", ""])
def test_decode_unknown_type_has_ref(kind: str) -> None:
    """Ensure an unknown type is unknown_type with the type as ref."""
    error = decode_error(frame(type=kind))
    assert error.code is E.UNKNOWN_TYPE
    assert error.ref == kind


def test_decode_unknown_type_ref_is_truncated() -> None:
    """Ensure a huge unknown type is not echoed back whole."""
    error = decode_error(frame(type="x" * 10_000))
    assert error.code is E.UNKNOWN_TYPE
    assert error.ref is not None and len(error.ref) <= 40
    assert len(error.message) < 200


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_decode_non_json_number_literals_are_bad_json(literal: str) -> None:
    """Ensure NaN/Infinity, which are not JSON, are refused with bad_json."""
    error = decode_error('{"type":"ping","t":' + literal + "}")
    assert error.code is E.BAD_JSON


def test_decode_deeply_nested_garbage_is_bad_json() -> None:
    """Ensure an unterminated, deeply nested frame is bad_json, not a crash."""
    error = decode_error("[" * 100_000)
    assert error.code is E.BAD_JSON


def test_decode_lone_surrogate_is_refused() -> None:
    """Ensure a string holding a lone surrogate escape is refused."""
    error = decode_error('{"type":"message","text":"a\\ud800b"}')
    assert error.code in {E.BAD_JSON, E.BAD_REQUEST}


# -- encoding ----------------------------------------------------------------


def test_encode_puts_type_first_and_is_compact() -> None:
    """Ensure encode writes type first and no whitespace between tokens."""
    text = protocol.encode("presence", room="a b", count=2, users=[{"x": 1}])
    assert text == '{"type":"presence","room":"a b","count":2,"users":[{"x":1}]}'
    assert next(iter(json.loads(text))) == "type"


def test_encode_keeps_non_ascii_as_is() -> None:
    """Ensure non-ASCII text is written as UTF-8 characters, not escapes."""
    text = protocol.encode("message", text="héllo 😀 中文")
    assert "héllo 😀 中文" in text
    assert "\\u" not in text


def test_encode_escapes_what_json_requires() -> None:
    """Ensure quotes, backslashes and control characters stay valid JSON."""
    tricky = 'a"b\\c\nd\x00</script>'
    assert json.loads(protocol.encode("message", text=tricky))["text"] == tricky


def test_encode_error_with_ref() -> None:
    """Ensure encode_error includes ref when the error has one."""
    error = ProtocolError(E.NOT_IN_ROOM, "you are not in 'x'", "message")
    assert json.loads(protocol.encode_error(error)) == {
        "type": "error",
        "code": "not_in_room",
        "message": "you are not in 'x'",
        "ref": "message",
    }


def test_encode_error_without_ref() -> None:
    """Ensure encode_error leaves ref out entirely when there is none."""
    text = protocol.encode_error(ProtocolError(E.BAD_JSON, "not JSON"))
    assert text == '{"type":"error","code":"bad_json","message":"not JSON"}'


def test_error_codes_match_the_contract() -> None:
    """Ensure the error codes are exactly those of docs/protocol.md."""
    assert {code.value for code in E} == {
        "bad_json",
        "bad_request",
        "unknown_type",
        "too_large",
        "rate_limited",
        "name_taken",
        "forbidden",
        "room_exists",
        "no_such_room",
        "not_in_room",
        "internal",
        "no_such_message",
        "no_such_user",
    }


# -- edit and delete -----------------------------------------------------------


def test_edit_and_delete_decode() -> None:
    """Ensure edit and delete frames become their commands."""
    assert protocol.decode(frame(type="edit", room="r", id=3, text="x")) == (
        protocol.Edit("r", 3, "x")
    )
    assert protocol.decode(frame(type="delete", room="r", id=3)) == (
        protocol.Delete("r", 3)
    )


@pytest.mark.parametrize(
    "fields",
    [
        {"type": "edit", "room": "r", "id": 3},
        {"type": "edit", "room": "r", "text": "x"},
        {"type": "edit", "id": 3, "text": "x"},
        {"type": "edit", "room": "r", "id": "3", "text": "x"},
        {"type": "edit", "room": "r", "id": True, "text": "x"},
        {"type": "edit", "room": "r", "id": 0, "text": "x"},
        {"type": "delete", "room": "r", "id": -1},
        {"type": "delete", "room": "r", "id": INT_MAX + 1},
        {"type": "delete", "room": "r"},
        {"type": "delete", "room": 5, "id": 1},
    ],
)
def test_bad_edit_and_delete_frames(fields: dict[str, Any]) -> None:
    """Ensure an edit or delete without a valid room, id or text is refused."""
    error = decode_error(frame(**fields))
    assert (error.code, error.ref) == (E.BAD_REQUEST, fields["type"])
