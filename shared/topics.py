"""The MQTT topic tree, built and parsed in one place.

Every topic ampmq publishes or subscribes to is built here; no other module spells a topic string.
The tree (``ampmq`` is the configurable root, ``<site>`` a site id)::

    ampmq/services/<service>/availability          retained  online|offline (Last Will)
    ampmq/<site>/measurement                        retained  SiteMeasurement      meter_bridge
    ampmq/<site>/meter/<source>/availability        retained  online|offline       meter_bridge
    ampmq/<site>/settings                           retained  SiteSettings         allocator
    ampmq/<site>/settings/set                       command   SiteSettingsSet      -> allocator
    ampmq/<site>/settings/set/<field>               command   one field, raw value -> allocator
    ampmq/<site>/decision                           retained  SiteDecision         allocator
    ampmq/<site>/calibration                        retained  Calibration          allocator
    ampmq/<site>/grid-limit                         retained  GridLimitState       allocator
    ampmq/<site>/grid-limit/set                     command   GridLimitSet         -> allocator
    ampmq/<site>/errors                             event     ErrorReport          any service
    ampmq/<site>/prices                             retained  PriceForecast        a tariff bridge
    ampmq/<site>/pv-forecast                        retained  PvForecast           a solar forecast bridge
    ampmq/<site>/load/<load>/state                  retained  LoadState            load_adapters
    ampmq/<site>/load/<load>/availability           retained  online|offline       load_adapters
    ampmq/<site>/load/<load>/setpoint               retained  Setpoint             allocator
    ampmq/<site>/load/<load>/settings               retained  LoadSettings         allocator
    ampmq/<site>/load/<load>/settings/set           command   LoadSettingsSet      -> allocator
    ampmq/<site>/load/<load>/settings/set/<field>   command   one field, raw value -> allocator
    ampmq/<site>/load/<load>/plan                   retained  LoadPlan             allocator
    ampmq/<site>/load/<load>/plan/set               command   PlanSet or null      -> allocator
    ampmq/<site>/load/<load>/session/event          event     SessionSummary       load_adapters
    ampmq/<site>/load/<load>/session/last           retained  SessionSummary       load_adapters
    ampmq/<site>/charger/<cp>/availability          retained  online|offline       ocpp_gateway
    ampmq/<site>/charger/<cp>/boot                  retained  ChargerBoot          ocpp_gateway
    ampmq/<site>/charger/<cp>/heartbeat             retained  ChargerHeartbeat     ocpp_gateway
    ampmq/<site>/charger/<cp>/connector/<n>/status  retained  ConnectorStatus      ocpp_gateway
    ampmq/<site>/charger/<cp>/connector/<n>/meter   retained  ConnectorMeter       ocpp_gateway
    ampmq/<site>/charger/<cp>/connector/<n>/transaction retained TransactionState ocpp_gateway
    ampmq/<site>/charger/<cp>/event/<name>          event     ChargerEvent         ocpp_gateway
    ampmq/<site>/charger/<cp>/cmd/<action>          command   OcppCommand          -> ocpp_gateway
    ampmq/<site>/charger/<cp>/result/<action>       event     OcppResult           ocpp_gateway

IDs are ``[a-z0-9-]`` (1-64 chars); ``services`` is reserved and cannot name a site.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

DEFAULT_ROOT = "ampmq"
SERVICES_SEGMENT = "services"
ID_PATTERN = r"[a-z0-9][a-z0-9-]{0,63}"
_ID_RE = re.compile(rf"^{ID_PATTERN}$")
_SLUG_RE = re.compile(r"[^a-z0-9-]+")


class TopicError(ValueError):
    """A topic or an id in it does not follow the contract."""


class Kind(StrEnum):
    """What a site-level topic is about (the third segment)."""

    MEASUREMENT = "measurement"
    METER = "meter"
    SETTINGS = "settings"
    DECISION = "decision"
    CALIBRATION = "calibration"
    GRID_LIMIT = "grid-limit"
    ERRORS = "errors"
    LOAD = "load"
    CHARGER = "charger"
    PRICES = "prices"
    PV_FORECAST = "pv-forecast"


class Leaf(StrEnum):
    """The last segments of an entity topic."""

    AVAILABILITY = "availability"
    STATE = "state"
    SETPOINT = "setpoint"
    SETTINGS = "settings"
    SETTINGS_SET = "settings/set"
    SET = "set"
    BOOT = "boot"
    HEARTBEAT = "heartbeat"
    STATUS = "status"
    METER = "meter"
    TRANSACTION = "transaction"
    EVENT = "event"
    CMD = "cmd"
    RESULT = "result"
    CONNECTOR = "connector"
    SESSION_EVENT = "session/event"
    SESSION_LAST = "session/last"
    PLAN = "plan"
    PLAN_SET = "plan/set"
    INSTANCES = "instances"
    ROLL_CALL = "roll-call"


def check_id(value: str, what: str = "id") -> str:
    """Return ``value`` if it is a valid topic id, else raise :class:`TopicError`."""
    if not _ID_RE.match(value):
        raise TopicError(f"{what} {value!r} must match {ID_PATTERN}")
    return value


def slugify(value: str) -> str:
    """Turn a free-form name (a charge point id such as ``CP_001``) into a topic id (``cp-001``)."""
    slug = _SLUG_RE.sub("-", value.strip().lower()).strip("-")[:64]
    if not slug:
        raise TopicError(f"{value!r} has no character usable in a topic id")
    return slug


@dataclass(frozen=True, slots=True)
class TopicRef:
    """A parsed topic: ``root/site/kind/id/leaf``; ``site`` is ``None`` for service topics."""

    root: str
    site: str | None
    kind: str
    id: str | None
    leaf: str


@dataclass(frozen=True, slots=True)
class Topics:
    """Builds and parses every topic under one root."""

    root: str = DEFAULT_ROOT

    def __post_init__(self) -> None:
        if not self.root or "+" in self.root or "#" in self.root or self.root.endswith("/"):
            raise TopicError(f"root {self.root!r} is not a valid topic prefix")

    # -- generic -----------------------------------------------------------------------------------
    def build(self, site: str | None, kind: str, id: str | None = None, leaf: str = "") -> str:
        """Build ``root/site/kind[/id][/leaf]``; ``+`` may stand for site or id in filters."""
        parts = [self.root]
        if site is None:
            parts.append(SERVICES_SEGMENT)
        else:
            if site != "+":
                check_id(site, "site")
                if site == SERVICES_SEGMENT:
                    raise TopicError(f"site id {SERVICES_SEGMENT!r} is reserved")
            parts.append(site)
        parts.append(kind)
        if id is not None:
            if id != "+":
                check_id(id)
            parts.append(id)
        if leaf:
            parts.append(leaf)
        return "/".join(parts)

    def parse(self, topic: str) -> TopicRef:
        """Parse a topic of this tree back into its parts; raise :class:`TopicError` otherwise."""
        prefix = self.root + "/"
        if not topic.startswith(prefix):
            raise TopicError(f"{topic!r} is not under root {self.root!r}")
        parts = topic[len(prefix) :].split("/")
        if parts[0] == SERVICES_SEGMENT:
            if len(parts) < 3:
                raise TopicError(f"{topic!r}: service topics are services/<service>/<leaf>")
            service = check_id(parts[1], "service")
            return TopicRef(self.root, None, SERVICES_SEGMENT, service, "/".join(parts[2:]))
        if len(parts) < 2:
            raise TopicError(f"{topic!r} names no kind")
        site = check_id(parts[0], "site")
        kind = parts[1]
        if kind in (Kind.LOAD, Kind.CHARGER, Kind.METER):
            if len(parts) < 4:
                raise TopicError(f"{topic!r}: {kind} topics are {kind}/<id>/<leaf>")
            return TopicRef(self.root, site, kind, check_id(parts[2]), "/".join(parts[3:]))
        if kind in (Kind.MEASUREMENT, Kind.SETTINGS, Kind.DECISION, Kind.ERRORS, Kind.CALIBRATION, Kind.GRID_LIMIT,
                    Kind.PRICES, Kind.PV_FORECAST):
            return TopicRef(self.root, site, kind, None, "/".join(parts[2:]))
        raise TopicError(f"{topic!r}: unknown kind {kind!r}")

    # -- services ----------------------------------------------------------------------------------
    def service_availability(self, service: str) -> str:
        return f"{self.root}/{SERVICES_SEGMENT}/{check_id(service, 'service')}/{Leaf.AVAILABILITY}"

    def service_instance(self, service: str, instance: str) -> str:
        """One running instance of a service (retained ``online``; cleared when it stops cleanly)."""
        return (f"{self.root}/{SERVICES_SEGMENT}/{check_id(service, 'service')}/{Leaf.INSTANCES}/"
                f"{check_id(instance, 'instance')}")

    def service_instances_filter(self, service: str) -> str:
        return f"{self.root}/{SERVICES_SEGMENT}/{check_id(service, 'service')}/{Leaf.INSTANCES}/+"

    def service_roll_call(self, service: str) -> str:
        """Not retained: every running instance of the service answers by saying its instance topic again."""
        return f"{self.root}/{SERVICES_SEGMENT}/{check_id(service, 'service')}/{Leaf.ROLL_CALL}"

    def service_errors(self, service: str) -> str:
        """Where a service reports an error that belongs to no site."""
        return f"{self.root}/{SERVICES_SEGMENT}/{check_id(service, 'service')}/{Kind.ERRORS}"

    # -- site --------------------------------------------------------------------------------------
    def measurement(self, site: str) -> str:
        return self.build(site, Kind.MEASUREMENT)

    def meter_availability(self, site: str, source: str) -> str:
        return self.build(site, Kind.METER, source, Leaf.AVAILABILITY)

    def site_settings(self, site: str) -> str:
        return self.build(site, Kind.SETTINGS)

    def site_settings_set(self, site: str) -> str:
        return self.build(site, Kind.SETTINGS, None, Leaf.SET)

    def site_settings_set_field(self, site: str, field: str) -> str:
        """``.../settings/set/<field>``: set one field with a bare value (``mosquitto_pub -m solar_only``)."""
        return f"{self.site_settings_set(site)}/{field}"

    def decision(self, site: str) -> str:
        return self.build(site, Kind.DECISION)

    def errors(self, site: str) -> str:
        return self.build(site, Kind.ERRORS)

    def calibration(self, site: str) -> str:
        """Detected phase mapping and polarity (``+`` for every site)."""
        return self.build(site, Kind.CALIBRATION)

    def prices(self, site: str) -> str:
        """The import price forecast (``+`` for every site)."""
        return self.build(site, Kind.PRICES)

    def pv_forecast(self, site: str) -> str:
        """The expected solar production (``+`` for every site)."""
        return self.build(site, Kind.PV_FORECAST)

    def grid_limit(self, site: str) -> str:
        """The grid-operator limit in force (``+`` for every site)."""
        return self.build(site, Kind.GRID_LIMIT)

    def grid_limit_set(self, site: str) -> str:
        """The grid operator's signal (``+`` for every site)."""
        return self.build(site, Kind.GRID_LIMIT, None, Leaf.SET)

    # -- loads -------------------------------------------------------------------------------------
    def load(self, site: str, load: str, leaf: Leaf) -> str:
        return self.build(site, Kind.LOAD, load, leaf)

    def load_state(self, site: str, load: str) -> str:
        return self.load(site, load, Leaf.STATE)

    def load_availability(self, site: str, load: str) -> str:
        return self.load(site, load, Leaf.AVAILABILITY)

    def setpoint(self, site: str, load: str) -> str:
        return self.load(site, load, Leaf.SETPOINT)

    def load_settings(self, site: str, load: str) -> str:
        return self.load(site, load, Leaf.SETTINGS)

    def load_settings_set(self, site: str, load: str) -> str:
        return self.load(site, load, Leaf.SETTINGS_SET)

    def load_settings_set_field(self, site: str, load: str, field: str) -> str:
        """``.../load/<load>/settings/set/<field>``: set one field with a bare value."""
        return f"{self.load_settings_set(site, load)}/{field}"

    def plan(self, site: str, load: str) -> str:
        """The load's departure plan as the allocator works it out (retained)."""
        return self.load(site, load, Leaf.PLAN)

    def plan_set(self, site: str, load: str) -> str:
        """Set (or, with ``null``, clear) the load's departure plan."""
        return self.load(site, load, Leaf.PLAN_SET)

    def session_event(self, site: str, load: str) -> str:
        """A charging session of the load ended (not retained)."""
        return self.load(site, load, Leaf.SESSION_EVENT)

    def session_last(self, site: str, load: str) -> str:
        """The load's last finished charging session (retained)."""
        return self.load(site, load, Leaf.SESSION_LAST)

    # -- chargers (OCPP gateway) ---------------------------------------------------------------------
    def charger(self, site: str, cp: str, leaf: str) -> str:
        return self.build(site, Kind.CHARGER, cp, leaf)

    def charger_availability(self, site: str, cp: str) -> str:
        return self.charger(site, cp, Leaf.AVAILABILITY)

    def charger_boot(self, site: str, cp: str) -> str:
        return self.charger(site, cp, Leaf.BOOT)

    def charger_heartbeat(self, site: str, cp: str) -> str:
        return self.charger(site, cp, Leaf.HEARTBEAT)

    def connector(self, site: str, cp: str, connector: int | str, leaf: Leaf) -> str:
        return self.charger(site, cp, f"{Leaf.CONNECTOR}/{connector}/{leaf}")

    def connector_status(self, site: str, cp: str, connector: int | str) -> str:
        return self.connector(site, cp, connector, Leaf.STATUS)

    def connector_meter(self, site: str, cp: str, connector: int | str) -> str:
        return self.connector(site, cp, connector, Leaf.METER)

    def connector_transaction(self, site: str, cp: str, connector: int | str) -> str:
        return self.connector(site, cp, connector, Leaf.TRANSACTION)

    def charger_event(self, site: str, cp: str, name: str) -> str:
        return self.charger(site, cp, f"{Leaf.EVENT}/{name}")

    def charger_command(self, site: str, cp: str, action: str) -> str:
        return self.charger(site, cp, f"{Leaf.CMD}/{action}")

    def charger_result(self, site: str, cp: str, action: str) -> str:
        return self.charger(site, cp, f"{Leaf.RESULT}/{action}")

    # -- filters -----------------------------------------------------------------------------------
    def all(self) -> str:
        return f"{self.root}/#"

    def site_all(self, site: str = "+") -> str:
        return self.build(site, "#")

    def measurement_filter(self) -> str:
        return self.measurement("+")

    def load_filter(self, leaf: Leaf) -> str:
        return self.load("+", "+", leaf)

    def charger_filter(self, leaf: str = "#", site: str = "+") -> str:
        return self.charger(site, "+", leaf)

    def site_settings_set_filter(self) -> str:
        return self.site_settings_set("+")

    def site_settings_filter(self) -> str:
        return self.site_settings("+")
