"""Schedule windows → the mode in force now, for the site and for each load (pure, no clock reads).

A window runs on its days from ``start`` (inclusive) to ``end`` (exclusive) in its own time zone; an
``end`` before ``start`` runs past midnight into the next day (the day listed is the day it starts);
``start == end`` covers the whole day. Where windows overlap, the first in the list wins.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.models import LoadSettings, Mode, Schedule, SiteSettings
from shared.models.settings import Weekday

_WEEKDAYS = list(Weekday)  # Monday first, as datetime.weekday()


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def is_active(schedule: Schedule, now: datetime) -> bool:
    """Whether ``now`` (timezone-aware) falls inside the schedule's window."""
    local = now.astimezone(_zone(schedule.tz))
    today = _WEEKDAYS[local.weekday()]
    yesterday = _WEEKDAYS[(local - timedelta(days=1)).weekday()]
    clock = local.time().replace(tzinfo=None)
    start, end = schedule.start, schedule.end
    if start == end:
        return today in schedule.days
    if start < end:
        return today in schedule.days and start <= clock < end
    # past midnight: the evening part belongs to today's window, the morning part to yesterday's
    return (today in schedule.days and clock >= start) or (yesterday in schedule.days and clock < end)


@dataclass(frozen=True, slots=True)
class ActiveModes:
    """The modes schedules impose now: on the site's default, and per load."""

    site: Mode | None = None
    loads: dict[str, Mode] = field(default_factory=dict)


def active_modes(schedules: Iterable[Schedule], now: datetime) -> ActiveModes:
    site: Mode | None = None
    loads: dict[str, Mode] = {}
    for schedule in schedules:
        try:
            if not is_active(schedule, now):
                continue
        except (ZoneInfoNotFoundError, ValueError):
            continue  # an unknown time zone (from retained settings; a /set with one is rejected) never opens

        if schedule.load is None:
            if site is None:
                site = schedule.mode
        else:
            loads.setdefault(schedule.load, schedule.mode)
    return ActiveModes(site, loads)


def site_in_force(settings: SiteSettings, modes: ActiveModes) -> SiteSettings:
    """The site settings with the scheduled site mode in place of the configured one."""
    if modes.site is None or modes.site == settings.mode:
        return settings
    return settings.model_copy(update={"mode": modes.site})


def load_in_force(site: str, load: str, settings: LoadSettings | None, modes: ActiveModes) -> LoadSettings | None:
    """A load's settings with its scheduled mode, if a window for it is open."""
    mode = modes.loads.get(load)
    if mode is None:
        return settings
    if settings is None:
        return LoadSettings(site=site, load=load, mode=mode)
    return settings.model_copy(update={"mode": mode})

