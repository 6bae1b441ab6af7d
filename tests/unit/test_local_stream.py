"""The local change stream's PutRecords batching and capture reading (pure: no stream is created)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tenant_analytics.errors import InvalidInput
from tenant_analytics.local.stream import (
    MAX_PUT_BYTES,
    MAX_PUT_RECORDS,
    MAX_RECORD_BYTES,
    PARTITION_KEY,
    Line,
    put_batches,
    read_capture,
    record_bytes,
)

KEY_BYTES = len(PARTITION_KEY)


def test_small_records_are_put_500_to_a_request() -> None:
    # Given 1201 small records
    records = [f"r{i}".encode() for i in range(1201)]

    # When they are split into PutRecords requests
    batches = put_batches(records)

    # Then the requests hold 500, 500 and 201 records, in the file's order
    assert [len(b) for b in batches] == [500, 500, 201]
    assert [r for b in batches for r in b] == records


def test_large_records_are_split_by_the_5_mib_limit_counting_partition_keys() -> None:
    # Given 60 records of 100 KB (6 MB in all: more than one request may carry)
    records = [bytes([i]) * 100_000 for i in range(60)]

    # When they are split
    batches = put_batches(records)

    # Then no request exceeds 5 MiB with its partition keys, each is as full as it can be, and the order is kept
    sizes = [sum(record_bytes(r) for r in b) for b in batches]
    assert all(size <= MAX_PUT_BYTES for size in sizes)
    assert [len(b) for b in batches] == [52, 8]  # 52 * 100_006 <= 5 MiB < 53 * 100_006
    assert [r for b in batches for r in b] == records


def test_a_request_ends_where_the_partition_keys_would_push_it_over_5_mib() -> None:
    # Given ten records whose data alone fills 5 MiB exactly
    records = [b"x" * (MAX_PUT_BYTES // 10)] * 10

    # When they are split, then the partition keys push the tenth into a request of its own
    assert [len(b) for b in put_batches(records)] == [9, 1]


def test_a_record_of_1_mib_with_its_partition_key_fits_and_one_byte_more_does_not() -> None:
    largest = b"x" * (MAX_RECORD_BYTES - KEY_BYTES)
    assert [len(b) for b in put_batches([largest] * 6)] == [5, 1]  # five fill 5 MiB exactly
    with pytest.raises(ValueError, match="does not fit a Kinesis record"):
        put_batches([largest + b"x"])


def test_count_and_size_limits_apply_together() -> None:
    # Given 500 tiny records followed by five of 1 MiB
    records = [b"a"] * MAX_PUT_RECORDS + [b"x" * (MAX_RECORD_BYTES - KEY_BYTES)] * 5

    # When split, then the tiny ones fill one request, and the large ones share the next as far as 5 MiB allows
    assert [len(b) for b in put_batches(records)] == [500, 5]
    assert put_batches([]) == []


def test_a_kpl_line_that_is_not_base64_is_named_by_file_and_line(tmp_path: Path) -> None:
    # Given a --kpl capture whose third line (after a blank one) is not base64
    capture = tmp_path / "capture.b64"
    capture.write_text(base64.b64encode(b'{"a": 1}').decode() + "\n\nnot base64!\n")

    # When it is read, then the error names the file and line and what a line must be
    with pytest.raises(InvalidInput, match=rf"^{capture}:3: with --kpl each line must be the base64 data") as err:
        read_capture(capture, kpl=True)
    assert err.value.field == "file"


def test_lines_keep_their_numbers_across_blank_lines(tmp_path: Path) -> None:
    capture = tmp_path / "capture.jsonl"
    capture.write_bytes(b'{"a": 1}\n\n  \n{"b": 2}\r\n')
    assert read_capture(capture, kpl=False) == [Line(1, b'{"a": 1}'), Line(4, b'{"b": 2}')]
    encoded = tmp_path / "capture.b64"
    encoded.write_text(base64.b64encode(b"one").decode() + "\n\n" + base64.b64encode(b"two").decode() + "\n")
    assert read_capture(encoded, kpl=True) == [Line(1, b"one"), Line(3, b"two")]
