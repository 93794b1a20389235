"""The original's time format and cursor (api/pagination.py), written the way its clients read them."""

from datetime import UTC, datetime

from api.pagination import decode_cursor, encode_cursor, when


def test_times_are_written_as_the_original_writes_them_whatever_their_precision():
    assert when(datetime(2025, 1, 2, 3, 4, 5)) == "2025-01-02 03:04:05"
    assert when(datetime(2025, 1, 2, 3, 4, 5, 999999)) == "2025-01-02 03:04:05"  # (cut, not rounded)
    assert when(datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2025-01-02 03:04:05"  # (no offset)


def test_a_cursor_gives_back_the_row_it_was_made_from():
    assert decode_cursor(encode_cursor(datetime(2025, 1, 2, 3, 4, 5, 250), "abc")) == (datetime(2025, 1, 2, 3, 4, 5),
                                                                                         "abc")  # fmt: skip
