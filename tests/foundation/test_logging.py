"""Structured logs: one JSON object per line when stdout is not a terminal."""

from __future__ import annotations

import json
import logging

from shared.logsetup import JsonFormatter


def test_json_lines_carry_level_logger_message_and_extras() -> None:
    record = logging.LogRecord("ampmq.allocator", logging.WARNING, __file__, 1, "rejected %s", ("x/y",), None)
    record.site = "home"
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "warning" and line["logger"] == "ampmq.allocator"
    assert line["msg"] == "rejected x/y" and line["site"] == "home" and line["ts"].endswith("+00:00")


def test_exceptions_are_kept() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("a", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    assert "ValueError: boom" in json.loads(JsonFormatter().format(record))["exc"]


def test_the_handler_follows_stdout_when_it_is_swapped() -> None:
    import io
    import sys

    from shared.logsetup import StdoutHandler

    handler = StdoutHandler()
    first, second = io.StringIO(), io.StringIO()
    sys_stdout = sys.stdout
    try:
        sys.stdout = first
        handler.emit(logging.LogRecord("a", logging.INFO, __file__, 1, "one", (), None))
        first.close()  # a harness closed the stdout the handler saw first
        sys.stdout = second
        handler.emit(logging.LogRecord("a", logging.INFO, __file__, 1, "two", (), None))
    finally:
        sys.stdout = sys_stdout
    assert second.getvalue().strip() == "two"
