"""Home Assistant MQTT discovery: the config messages that make a site and its loads appear in Home
Assistant as devices with sensors and controls, all pointing at ampmq's own topics.

Pure: :meth:`Discovery.site_entities` and :meth:`Discovery.load_entities` return ``(topic, config)`` pairs;
the allocator publishes them (retained), withdraws those of removed loads and sites (an empty retained
payload), and sends them again whenever ``homeassistant/status`` goes ``online``. docs/home-assistant.md
shows what a user sees.

What the configs promise Home Assistant:

* One device per site and one per load, the load's linked to its site (``via_device``).
* Controls (mode, priority, fuse limit, ...) are ``entity_category: config``; why-figures (reason, stale
  data, the last error) are ``diagnostic``.
* No template ever fails on a payload: every value is looked up key by key and renders ``None`` (HA shows
  *unknown*) when a key is missing, and every sensor whose value can be absent (a phase the meter lost, a
  site without solar, a car that reports no SoC) has an availability entry on its own state topic that
  turns it *unavailable* instead; the site's measurement sensors are also unavailable while the site
  decision says the reading is ``stale`` (a silent meter's last reading stays retained). Numbers are rounded
  in the template and carry a display precision.
* Energy sensors are in kWh, ``state_class: total_increasing``: HA's Energy dashboard takes them as they are.
  The site's (grid import, grid export, solar) come from the meters' own registers in the measurement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .models import LoadKind, Mode, Phase, Strategy
from .topics import Topics

DEFAULT_PREFIX = "homeassistant"
Entities = list[tuple[str, dict[str, Any]]]

#: A device's ``model`` in Home Assistant, by load kind.
KIND_MODELS = {LoadKind.EVSE: "EV charger", LoadKind.ONOFF: "switched load", LoadKind.STEPPED: "stepped load",
               LoadKind.CONTINUOUS: "continuous load"}


def lookup(path: str) -> str:
    """Jinja that walks ``value_json`` along the dotted ``path`` into ``v.x``, leaving ``none`` where a key is
    missing, a value is not an object, or the payload is not JSON at all (never an undefined-variable error)."""
    keys = path.split(".")
    return ("{% set v = namespace(x=value_json if value_json is defined else none) %}"
            f"{{% for k in {keys!r} %}}{{% set v.x = v.x[k] if v.x is mapping and k in v.x else none %}}{{% endfor %}}")


def number(path: str, digits: int, per: int = 1) -> str:
    """The number at ``path`` (divided by ``per``: Wh per kWh, s per min), rounded to ``digits`` (a whole
    number for 0); ``None`` when absent."""
    scaled = "v.x" if per == 1 else f"(v.x / {per})"
    rounded = f"({scaled}) | round({digits})" + (" | int" if digits == 0 else "")
    return lookup(path) + f"{{{{ {rounded} if v.x is number else none }}}}"


def text(path: str) -> str:
    """The string at ``path``; ``None`` when absent."""
    return lookup(path) + "{{ v.x if v.x is string else none }}"


def present(path: str) -> str:
    """An availability template: ``online`` while ``path`` holds a number, a string or a non-empty object,
    else ``offline``."""
    return lookup(path) + "{{ 'online' if v.x is number or v.x is string or (v.x is mapping and v.x) else 'offline' }}"


#: An availability template on the site decision: ``offline`` while the allocator finds the grid reading stale.
FRESH = lookup("stale") + "{{ 'offline' if v.x is sameas true else 'online' }}"


@dataclass(frozen=True, slots=True)
class Discovery:
    topics: Topics
    prefix: str = DEFAULT_PREFIX
    service: str = "allocator"

    @property
    def status_topic(self) -> str:
        """Home Assistant announces ``online`` here when it (re)starts: discovery is then re-sent."""
        return f"{self.prefix}/status"

    @property
    def config_filter(self) -> str:
        """Every discovery config under the prefix (read back at start to withdraw those of removed loads)."""
        return f"{self.prefix}/+/+/+/config"

    @staticmethod
    def site_node(site: str) -> str:
        return f"ampmq-{site}"

    @staticmethod
    def load_node(site: str, load: str) -> str:
        return f"ampmq-{site}-{load}"

    def is_ours(self, topic: str) -> bool:
        """Whether ``topic`` is a discovery config topic of an ampmq node under this prefix."""
        parts = topic.split("/")
        return (len(parts) == 5 and parts[0] == self.prefix and parts[4] == "config"
                and parts[2].startswith("ampmq-"))

    def _config_topic(self, component: str, node: str, object_id: str) -> str:
        return f"{self.prefix}/{component}/{node}/{object_id}/config"

    def _availability(self, *topics: str, when: tuple[str, str] | None = None) -> dict[str, Any]:
        """Available while the allocator (and each of ``topics``) is online, and — ``when`` = (state topic,
        path) — while the payload on that topic holds a value at ``path``."""
        entries: list[dict[str, Any]] = [{"topic": t} for t in (self.topics.service_availability(self.service),
                                                                  *topics)]
        if when is not None:
            entries.append({"topic": when[0], "value_template": present(when[1])})
        return {"availability": entries, "availability_mode": "all"}

    # -- a site --------------------------------------------------------------------------------------
    def site_entities(self, site: str) -> Entities:
        node = self.site_node(site)
        device = {"identifiers": [node], "name": f"ampmq {site}", "manufacturer": "ampmq", "model": "site"}
        settings, set_topic = self.topics.site_settings(site), self.topics.site_settings_set(site)
        measurement, decision = self.topics.measurement(site), self.topics.decision(site)
        common = {"device": device, **self._availability()}
        config = {**common, "entity_category": "config", "state_topic": settings, "command_topic": set_topic}

        def sensor(object_id: str, name: str, topic: str, path: str, **extra: Any) -> tuple[str, dict[str, Any]]:
            availability = self._availability(when=(topic, path))
            if topic == measurement:
                # a meter that went silent leaves its last reading retained: unavailable once it is stale
                availability["availability"].append({"topic": decision, "value_template": FRESH})
            return (self._config_topic("sensor", node, object_id), {
                "device": device, **availability, "name": name,
                "unique_id": f"{node}-{object_id.replace('_', '-')}", "state_topic": topic, **extra})

        def amps(path: str) -> dict[str, Any]:
            return {"value_template": number(path, 2), "unit_of_measurement": "A", "device_class": "current",
                    "state_class": "measurement", "suggested_display_precision": 1}

        def watts(path: str, **extra: Any) -> dict[str, Any]:
            return {"value_template": number(path, 0), "unit_of_measurement": "W", "device_class": "power",
                    "state_class": "measurement", "suggested_display_precision": 0, **extra}

        out: Entities = [
            (self._config_topic("select", node, "mode"), {
                **config, "name": "Mode", "unique_id": f"{node}-mode", "value_template": text("mode"),
                "command_template": '{"mode": "{{ value }}"}', "options": [m.value for m in Mode]}),
            (self._config_topic("select", node, "strategy"), {
                **config, "name": "Distribution strategy", "unique_id": f"{node}-strategy",
                "value_template": text("strategy"), "command_template": '{"strategy": "{{ value }}"}',
                "options": [s.value for s in Strategy]}),
            (self._config_topic("number", node, "fuse_limit"), {
                **config, "name": "Fuse limit", "unique_id": f"{node}-fuse-limit",
                "value_template": number("fuse_limit", 1), "command_template": '{"fuse_limit": {{ value | float }}}',
                "min": 6, "max": 250, "step": 1, "unit_of_measurement": "A", "device_class": "current"}),
            (self._config_topic("switch", node, "allow_grid_charging"), {
                **config, "name": "Charge from the grid", "unique_id": f"{node}-allow-grid-charging",
                "value_template": lookup("allow_grid_charging") + "{{ 'ON' if v.x is sameas true else 'OFF' }}",
                "payload_on": '{"allow_grid_charging": true}', "payload_off": '{"allow_grid_charging": false}',
                "state_on": "ON", "state_off": "OFF"}),
        ]
        for phase in Phase:
            key = phase.value.lower()
            out.append(sensor(f"grid_current_{key}", f"Grid current {phase.value}", measurement,
                              f"grid_current.{phase.value}.value", **amps(f"grid_current.{phase.value}.value")))
            out.append(sensor(f"headroom_{key}", f"Headroom {phase.value}", decision, f"headroom.{phase.value}",
                              **amps(f"headroom.{phase.value}")))
        def kwh(path: str) -> dict[str, Any]:
            return {"value_template": number(path, 3, per=1000), "unit_of_measurement": "kWh",
                    "device_class": "energy", "state_class": "total_increasing", "suggested_display_precision": 2}

        out += [
            sensor("grid_power", "Grid power", measurement, "grid_power.value", **watts("grid_power.value")),
            sensor("solar_power", "Solar power", measurement, "solar_power.value", **watts("solar_power.value")),
            sensor("battery_power", "Battery power", measurement, "battery_power.value",
                   **watts("battery_power.value")),
            sensor("battery_soc", "Battery", measurement, "battery_soc.value",
                   value_template=number("battery_soc.value", 0), unit_of_measurement="%", device_class="battery",
                   state_class="measurement", suggested_display_precision=0),
            # the meters' own registers, for the Energy dashboard (docs/home-assistant.md)
            sensor("grid_import_energy", "Grid import energy", measurement, "grid_import_energy.value",
                   **kwh("grid_import_energy.value")),
            sensor("grid_export_energy", "Grid export energy", measurement, "grid_export_energy.value",
                   **kwh("grid_export_energy.value")),
            sensor("solar_energy", "Solar energy", measurement, "solar_energy.value", **kwh("solar_energy.value")),
            (self._config_topic("binary_sensor", node, "stale"), {
                **common, "name": "Meter data stale", "unique_id": f"{node}-stale", "state_topic": decision,
                "value_template": lookup("stale") + "{{ 'ON' if v.x is sameas true else 'OFF' }}",
                "device_class": "problem", "entity_category": "diagnostic"}),
            (self._config_topic("binary_sensor", node, "grid_operator_limit"), {
                **common, "name": "Grid operator limit", "unique_id": f"{node}-grid-operator-limit",
                "state_topic": self.topics.grid_limit(site),
                "value_template": lookup("in_force") + "{{ 'ON' if v.x is sameas true else 'OFF' }}",
                "json_attributes_topic": self.topics.grid_limit(site), "entity_category": "diagnostic"}),
            (self._config_topic("sensor", node, "last_error"), {
                **common, "name": "Last error", "unique_id": f"{node}-last-error",
                "state_topic": self.topics.errors(site), "value_template": text("error"),
                "json_attributes_topic": self.topics.errors(site), "entity_category": "diagnostic"}),
        ]
        return out

    # -- a load --------------------------------------------------------------------------------------
    def load_entities(self, site: str, load: str, name: str = "", kind: LoadKind | None = None) -> Entities:
        """The entities of one load; ``kind`` adds the charger's (status, vehicle SoC, the charging session)
        for an EVSE."""
        node = self.load_node(site, load)
        device = {"identifiers": [node], "name": name or load, "manufacturer": "ampmq",
                  "model": KIND_MODELS.get(kind, "load") if kind is not None else "load",
                  "via_device": self.site_node(site)}
        settings, set_topic = self.topics.load_settings(site, load), self.topics.load_settings_set(site, load)
        setpoint, state = self.topics.setpoint(site, load), self.topics.load_state(site, load)
        online = self.topics.load_availability(site, load)
        last = self.topics.session_last(site, load)
        plan = self.topics.plan(site, load)
        common = {"device": device, **self._availability(online)}
        config = {**common, "entity_category": "config", "state_topic": settings, "command_topic": set_topic}

        def sensor(object_id: str, name: str, topic: str, path: str, **extra: Any) -> tuple[str, dict[str, Any]]:
            return (self._config_topic("sensor", node, object_id), {
                "device": device, **self._availability(online, when=(topic, path)), "name": name,
                "unique_id": f"{node}-{object_id.replace('_', '-')}", "state_topic": topic, **extra})

        out: Entities = [
            (self._config_topic("select", node, "mode"), {
                **config, "name": "Mode", "unique_id": f"{node}-mode",
                "value_template": lookup("mode") + "{{ v.x if v.x is string else 'site' }}",
                "command_template": '{"mode": {{ "null" if value == "site" else \'"\' ~ value ~ \'"\' }}}',
                "options": ["site", *(m.value for m in Mode)]}),
            (self._config_topic("number", node, "priority"), {
                **config, "name": "Priority", "unique_id": f"{node}-priority", "value_template": number("priority", 0),
                "command_template": '{"priority": {{ value | int }}}', "min": 1, "max": 99, "step": 1}),
            (self._config_topic("switch", node, "enabled"), {
                **config, "name": "Enabled", "unique_id": f"{node}-enabled",
                "value_template": lookup("enabled") + "{{ 'ON' if v.x is sameas true else 'OFF' }}",
                "payload_on": '{"enabled": true}', "payload_off": '{"enabled": false}',
                "state_on": "ON", "state_off": "OFF"}),
            sensor("setpoint", "Allowed current", setpoint, "current", value_template=number("current", 2),
                   unit_of_measurement="A", device_class="current", state_class="measurement",
                   suggested_display_precision=1, json_attributes_topic=setpoint),
            sensor("reason", "Reason", setpoint, "reason", value_template=text("reason"), entity_category="diagnostic"),
            sensor("status", "Status", state, "status", value_template=text("status")),
            sensor("current", "Current", state, "draw",
                   value_template=lookup("draw") + "{{ (v.x.values() | max) | round(2) "
                                                   "if v.x is mapping and v.x else none }}",
                   unit_of_measurement="A", device_class="current", state_class="measurement",
                   suggested_display_precision=1),
            sensor("power", "Power", state, "power", value_template=number("power", 0), unit_of_measurement="W",
                   device_class="power", state_class="measurement", suggested_display_precision=0),
            sensor("energy", "Energy", state, "energy", value_template=number("energy", 3, per=1000),
                   unit_of_measurement="kWh", device_class="energy", state_class="total_increasing",
                   suggested_display_precision=2),
        ]
        if kind is LoadKind.EVSE:
            out += [
                sensor("charger_status", "Charger status", state, "details.ocpp_status",
                       value_template=text("details.ocpp_status")),
                sensor("charging_state", "Charging state", state, "details.charging_state",
                       value_template=text("details.charging_state"), entity_category="diagnostic"),
                sensor("vehicle_soc", "Vehicle battery", state, "soc", value_template=number("soc", 0),
                       unit_of_measurement="%", device_class="battery", state_class="measurement",
                       suggested_display_precision=0),
                sensor("session_energy", "Session energy", state, "details.session_energy_wh",
                       value_template=number("details.session_energy_wh", 3, per=1000),
                       unit_of_measurement="kWh", device_class="energy", state_class="total_increasing",
                       suggested_display_precision=2),
                sensor("session_started", "Session started", state, "details.session_started",
                       value_template=text("details.session_started"), device_class="timestamp"),
                sensor("session_duration", "Session duration", state, "details.session_seconds",
                       value_template=number("details.session_seconds", 1, per=60),
                       unit_of_measurement="min", device_class="duration", suggested_display_precision=0),
                # the last finished session (retained on session/last), the rest of it as attributes
                sensor("last_session_energy", "Last session energy", last, "energy_wh",
                       value_template=number("energy_wh", 3, per=1000), unit_of_measurement="kWh",
                       device_class="energy", suggested_display_precision=2, json_attributes_topic=last),
                sensor("last_session_solar", "Last session solar share", last, "solar_share",
                       value_template=number("solar_share", 1), unit_of_measurement="%",
                       suggested_display_precision=0, icon="mdi:solar-power"),
                sensor("last_session_ended", "Last session ended", last, "ended",
                       value_template=text("ended"), device_class="timestamp"),
                # the departure plan (retained on plan, docs/plans.md): its slots and sentence as attributes
                sensor("plan", "Departure plan", plan, "deadline",
                       value_template=lookup("feasible") + "{{ 'on track' if v.x is sameas true else "
                                                           "('cannot be reached' if v.x is sameas false else none) }}",
                       json_attributes_topic=plan, icon="mdi:calendar-clock"),
                sensor("plan_finish", "Plan finish", plan, "expected_finish",
                       value_template=text("expected_finish"), device_class="timestamp"),
                sensor("plan_cost", "Plan cost", plan, "expected_cost", value_template=number("expected_cost", 2),
                       suggested_display_precision=2, icon="mdi:cash"),
            ]
        return out
