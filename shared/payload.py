"""Untrusted JSON, parsed within bounds: a payload is judged before it can trip the parser.

Everything that reaches a service from the broker or a device is untrusted. Python's ``json`` module
recurses once per nesting level (100 000 ``[`` raise ``RecursionError``), turns a 400-digit number into an
``int`` that later overflows a ``float``, and reads ``NaN`` and ``1e999`` as numbers. :func:`parse_json`
checks size and nesting before parsing and refuses what no device or person sends, with a sentence:

* at most :data:`MAX_BYTES` bytes, nested at most :data:`MAX_DEPTH` deep;
* integers of at most :data:`MAX_INT_DIGITS` digits, finite numbers only (no ``NaN``, ``Infinity``, or a
  float that overflows to infinity).

:func:`check_bounds` is the same size and nesting check without parsing, for payloads another parser
(pydantic's) reads next; :func:`transaction_of` finds a request's ``transaction`` id for its error report.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

#: The largest payload any route takes (a site's settings with schedules, a charger's MeterValues).
MAX_BYTES = 256 * 1024
#: The deepest nesting any contract payload or supported device uses, with room to spare.
MAX_DEPTH = 32
#: Digits of the longest integer accepted (a 64-bit counter has 20).
MAX_INT_DIGITS = 24

#: Inside a string a backslash escapes the next character; outside, brackets nest and quotes open strings.
_STRUCTURE = re.compile(rb'\\.|["\[\]{}]', re.DOTALL)


class PayloadError(ValueError):
    """A payload refused before or while parsing; the message says what was wrong."""


def _depth(data: bytes) -> int:
    """The deepest nesting of arrays and objects in ``data``, brackets inside strings not counted."""
    depth = deepest = 0
    in_string = False
    for match in _STRUCTURE.finditer(data):
        token = match.group()
        if token == b'"':
            in_string = not in_string
        elif in_string or len(token) == 2:
            continue
        elif token in b"[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_DEPTH:
                    return deepest  # enough to refuse it: no need to read the rest
        else:
            depth -= 1
    return deepest


def check_bounds(payload: bytes | str) -> None:
    """Raise :class:`PayloadError` when ``payload`` is larger or nested deeper than any route takes."""
    data = payload.encode() if isinstance(payload, str) else payload
    if len(data) > MAX_BYTES:
        raise PayloadError(f"payload of {len(data)} bytes is larger than the {MAX_BYTES} accepted")
    # Fast path: a payload with no more brackets than the depth allowed cannot be nested deeper.
    if data.count(b"[") + data.count(b"{") <= MAX_DEPTH:
        return
    if _depth(data) > MAX_DEPTH:
        raise PayloadError(f"payload nested more than {MAX_DEPTH} levels deep")


def _integer(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise PayloadError(f"an integer of {digits} digits (at most {MAX_INT_DIGITS} accepted)")
    return int(text)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise PayloadError(f"number {text[:40]} is out of range")
    return value


def _constant(text: str) -> float:
    raise PayloadError(f"{text} is not a number a payload may carry")


def parse_json(payload: bytes | str) -> Any:
    """The JSON value in ``payload``, or :class:`PayloadError` saying why it is refused."""
    check_bounds(payload)
    try:
        return json.loads(payload, parse_int=_integer, parse_float=_finite, parse_constant=_constant)
    except PayloadError:
        raise
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(f"not JSON: {exc}") from exc


def transaction_of(payload: bytes | str) -> str | None:
    """The ``transaction`` id a JSON-object payload carries (a string of at most 64 characters), else None:
    what an error report echoes so a client can match it to its request."""
    if payload.lstrip()[:1] not in (b"{", "{"):
        return None
    try:
        value = parse_json(payload)
    except PayloadError:
        return None
    found = value.get("transaction") if isinstance(value, dict) else None
    return found if isinstance(found, str) and len(found) <= 64 else None


__all__ = ["MAX_BYTES", "MAX_DEPTH", "MAX_INT_DIGITS", "PayloadError", "check_bounds", "parse_json", "transaction_of"]
