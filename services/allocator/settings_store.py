"""Applying a ``/set`` command to the current settings: a merge, then the whole result validated again.

Only the fields a command gives are changed. Nested objects (``timers``, ``battery``, ``inverter``) are
merged field by field, lists (``phases``, ``circuits``, ``schedules``) are replaced whole, and an explicit
``null`` clears an optional field. A merge whose result breaks a rule of the settings (target SOC below the
minimum, a circuit naming an unknown parent, an unknown time zone) raises :class:`SettingsRejected` and
nothing is applied.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ValidationError

from shared.models import LoadSettings, LoadSettingsSet, SiteSettings, SiteSettingsSet


class SettingsRejected(ValueError):
    """A command is well-formed but its result is not valid settings; the message says why."""


def changes(command: BaseModel) -> dict[str, Any]:
    """The fields a command sets (nested: only the nested fields it gives), without its transaction id."""
    fields = command.model_dump(exclude_unset=True)
    fields.pop("transaction", None)
    return fields


def _deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def describe(exc: ValidationError) -> str:
    """One line naming each field that was wrong and why."""
    parts = []
    for err in exc.errors(include_url=False)[:8]:
        where = ".".join(str(p) for p in err["loc"]) or "settings"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def _validated(model: type[SiteSettings] | type[LoadSettings], data: dict[str, Any]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise SettingsRejected(describe(exc)) from None


def check_time_zones(settings: SiteSettings) -> None:
    for schedule in settings.schedules:
        try:
            ZoneInfo(schedule.tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsRejected(f"schedule time zone {schedule.tz!r} is unknown") from None


def merge_site(current: SiteSettings, command: SiteSettingsSet, now: datetime) -> SiteSettings:
    """``current`` with the command applied, stamped ``now`` and carrying the command's transaction id."""
    data = _deep_merge(current.model_dump(), changes(command))
    data.update(ts=now, transaction=command.transaction)
    merged: SiteSettings = _validated(SiteSettings, data)
    check_time_zones(merged)
    return merged


def merge_load(current: LoadSettings, command: LoadSettingsSet, now: datetime) -> LoadSettings:
    """``current`` with the command applied; min above max is rejected."""
    data = _deep_merge(current.model_dump(), changes(command))
    data.update(ts=now, transaction=command.transaction)
    merged: LoadSettings = _validated(LoadSettings, data)
    if merged.min_current is not None and merged.max_current is not None and merged.max_current < merged.min_current:
        raise SettingsRejected(f"max_current {merged.max_current} A is below min_current {merged.min_current} A")
    return merged
