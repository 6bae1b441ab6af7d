from __future__ import annotations

import base64

import pytest

from tenant_analytics.sources.server import BadRequest, Position, decode_cursor, encode_cursor, parse_start_time


@pytest.mark.parametrize("position", [Position(1_709_280_000, 42), Position(0, None), Position(5, 0)])
def test_cursor_round_trips_and_is_url_safe(position: Position) -> None:
    # Given a position in the (updated_at, id) order
    # When it is encoded and decoded
    cursor = encode_cursor(position)
    # Then the same position comes back and the cursor needs no URL escaping
    assert decode_cursor(cursor) == position
    assert all(ch.isalnum() or ch in "-_" for ch in cursor)


@pytest.mark.parametrize(
    "cursor",
    [
        "zz",
        "!!!",
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        base64.urlsafe_b64encode(b'{"updated_at": "x", "id": 1}').decode(),
        base64.urlsafe_b64encode(b'{"updated_at": 1, "id": true}').decode(),
    ],
)
def test_foreign_cursor_is_a_bad_request(cursor: str) -> None:
    # Given a string this server never issued
    # When it is decoded, Then it is refused naming the cursor
    with pytest.raises(BadRequest, match="is not a cursor this source issued"):
        decode_cursor(cursor)


def test_start_time_must_be_a_minute_old_whole_number() -> None:
    # Given the server clock at 10_000
    # Then 9_940 is accepted as "at or after 9_940", later or non-numeric values are refused
    assert parse_start_time("9940", 10_000) == Position(9_940, None)
    with pytest.raises(BadRequest, match="too recent"):
        parse_start_time("9941", 10_000)
    for text in ("-5", "1.5", "soon", ""):
        with pytest.raises(BadRequest, match="non-negative integer"):
            parse_start_time(text, 10_000)
