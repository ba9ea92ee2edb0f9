"""Error reports: what a service rejected, published on the site's (or the service's) errors topic."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, Strict

from .base import Message, Text


class ErrorReport(Message):
    """A payload or event a service could not apply, and why. Published, never retained."""

    service: Annotated[str, Strict(), Field(max_length=64)]
    topic: Annotated[str, Strict(), Field(max_length=512)]
    #: Short machine-readable code: ``invalid_json``, ``validation``, ``unknown_topic``, ``stale``, ...
    error: Annotated[str, Strict(), Field(max_length=64)]
    message: Text
    #: The first bytes of the offending payload, for a person to look at.
    payload: Annotated[str, Field(max_length=512)] = ""
    #: The ``transaction`` id of the request that caused the report (a ``/set`` or command carrying one), so a
    #: client can match a rejection to its request.
    transaction: Annotated[str, Strict(), Field(max_length=64)] | None = None
