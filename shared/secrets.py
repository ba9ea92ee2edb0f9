"""Secrets never printed: credentials in URLs are masked wherever text leaves the process.

A broker URL carries its password (``mqtt://allocator:S3cret@broker``), and so may an OCPP or HTTP URL.
:func:`redact` masks the password of every URL in a text; the log formatters (:mod:`shared.logsetup`) pass
every line through it, and error messages that quote a URL use it too.
"""

from __future__ import annotations

import re

#: ``scheme://user:password@`` — the password ends at the last ``@`` before the host part.
_CREDENTIALS = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]*:)(?P<secret>[^\s]*)@(?=[^\s@/]*(?:[/\s:?#]|$))")
MASK = "***"


def redact(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``."""
    if "://" not in text:
        return text
    return _CREDENTIALS.sub(lambda m: f"{m.group('head')}{MASK}@", text)


__all__ = ["MASK", "redact"]
