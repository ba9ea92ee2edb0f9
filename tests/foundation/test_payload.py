"""Untrusted JSON is judged before it can trip the parser (shared.payload)."""

from __future__ import annotations

import json

import pytest

from shared.payload import MAX_BYTES, MAX_DEPTH, PayloadError, check_bounds, parse_json, transaction_of


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ("[" * 100_000, "nested more than"),
        ('{"a":' * 40 + "1" + "}" * 40, "nested more than"),
        ("1" * 400, "digits"),
        ('{"a_current": ' + "9" * 400 + "}", "digits"),
        ("NaN", "not a number"),
        ('{"x": -Infinity}', "not a number"),
        ("1e999", "out of range"),
        ("[1, 2", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (" " * (MAX_BYTES + 1), "larger than"),
    ],
)
def test_refused_payloads_say_why(payload: str | bytes, why: str) -> None:
    with pytest.raises(PayloadError, match=why):
        parse_json(payload)


def test_what_devices_and_people_send_parses_as_json_does() -> None:
    samples = [
        '{"id":0,"a_current":1.5,"a_act_power":-230.0,"total_act_power":12}',
        '{"transaction": "42", "mode": "solar_only", "timers": {"min_run": 120.0}}',
        "16",
        '"eco"',
        "null",
        "[" * MAX_DEPTH + "]" * MAX_DEPTH,
        '{"deep": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\"]]]"}',
        "-" + "9" * 20,
    ]
    for text in samples:
        assert parse_json(text) == json.loads(text)


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = json.dumps({"note": "[" * 10_000 + '\\"{' * 100})
    check_bounds(text)
    assert parse_json(text)["note"].startswith("[[[")


def test_depth_is_counted_not_guessed_when_brackets_are_many() -> None:
    wide = "[" + ",".join(["[]"] * 5_000) + "]"  # 5 001 brackets, two levels deep
    check_bounds(wide)
    with pytest.raises(PayloadError):
        check_bounds("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))


@pytest.mark.parametrize(("payload", "transaction"), [
    (b'{"priority": 0, "transaction": "nr-17"}', "nr-17"),
    ('  {"transaction": "42"}', "42"),
    (b'{"transaction": 42}', None),  # not a string: not an id a client gave
    ('{"transaction": "' + "x" * 65 + '"}', None),  # longer than any Command accepts
    (b'[{"transaction": "a"}]', None),
    (b"not json", None),
    (b'{"transaction": "a", ' + b"[" * (MAX_DEPTH + 5), None),  # refused by the bounds, never tripped over
    (b"", None),
])
def test_an_error_report_finds_the_requests_transaction(payload: bytes | str, transaction: str | None) -> None:
    assert transaction_of(payload) == transaction
