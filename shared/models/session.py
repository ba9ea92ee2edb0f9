"""A finished charging session, as the load adapter reports it for people (evcc's session list)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, Field, Strict

from .base import LoadAmps, Message, Percent, Seconds, TopicId, WattHours

ShortText = Annotated[str, Strict(), Field(max_length=128)]


class SessionSummary(Message):
    """A charging session that ended: an event on ``<site>/load/<load>/session/event``, and retained on
    ``<site>/load/<load>/session/last`` until the next one ends.

    ``energy_wh`` is the connector's register from the transaction's start reading to its stop reading (or
    the last reading when the car was unplugged without a StopTransaction). ``solar_share`` is the
    energy-weighted share of it the site's solar covered: at each meter reading of the connector, what the
    solar production left after the rest of the site (grid import and battery discharge count as not solar),
    from the site's measurement; ``None`` when no fresh measurement covered the session.
    """

    site: TopicId
    load: TopicId
    charger: TopicId | None = None
    connector: Annotated[int, Strict(), Field(ge=0, le=64)] | None = None
    transaction_id: ShortText | None = None
    #: The id tag (1.6 idTag, 2.0.1 idToken) the transaction was started with, when the charger gave one.
    id_tag: ShortText | None = None
    #: When the transaction started (None when the adapter first heard of it while it ran).
    started: AwareDatetime | None = None
    ended: AwareDatetime
    duration: Seconds | None = None
    energy_wh: WattHours | None = None
    #: Percent (0-100) of ``energy_wh`` that came from the site's solar production.
    solar_share: Percent | None = None
    solar_energy_wh: WattHours | None = None
    #: The highest current drawn on any leg during the session (A).
    peak_current: LoadAmps | None = None
    #: Why it ended: the charger's reason (1.6 StopTransaction / 2.0.1 stoppedReason), or ``unplugged`` when
    #: the connector went Available with no transaction end.
    reason: ShortText | None = None
