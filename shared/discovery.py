"""Home Assistant MQTT discovery: the config messages that make a site and its loads appear in Home
Assistant as devices with sensors and controls, all pointing at ampmq's own topics.

Pure: :func:`site_entities` and :func:`load_entities` return ``(topic, config)`` pairs; the allocator
publishes them (retained) when it first sees a site or load and again whenever ``homeassistant/status``
goes ``online``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .models import Mode, Phase, Strategy
from .topics import Topics

DEFAULT_PREFIX = "homeassistant"


@dataclass(frozen=True, slots=True)
class Discovery:
    topics: Topics
    prefix: str = DEFAULT_PREFIX
    service: str = "allocator"

    @property
    def status_topic(self) -> str:
        """Home Assistant announces ``online`` here when it (re)starts: discovery is then re-sent."""
        return f"{self.prefix}/status"

    def _config_topic(self, component: str, node: str, object_id: str) -> str:
        return f"{self.prefix}/{component}/{node}/{object_id}/config"

    def _availability(self, *topics: str) -> dict[str, Any]:
        return {"availability": [{"topic": t} for t in (self.topics.service_availability(self.service), *topics)],
                "availability_mode": "all"}

    def site_entities(self, site: str) -> list[tuple[str, dict[str, Any]]]:
        node = f"ampmq-{site}"
        device = {"identifiers": [node], "name": f"ampmq {site}", "manufacturer": "ampmq", "model": "site"}
        settings, set_topic = self.topics.site_settings(site), self.topics.site_settings_set(site)
        common = {"device": device, **self._availability()}
        out: list[tuple[str, dict[str, Any]]] = [
            (self._config_topic("select", node, "mode"), {
                **common, "name": "Mode", "unique_id": f"{node}-mode", "state_topic": settings,
                "value_template": "{{ value_json.mode }}", "command_topic": set_topic,
                "command_template": '{"mode": "{{ value }}"}', "options": [m.value for m in Mode]}),
            (self._config_topic("select", node, "strategy"), {
                **common, "name": "Distribution strategy", "unique_id": f"{node}-strategy", "state_topic": settings,
                "value_template": "{{ value_json.strategy }}", "command_topic": set_topic,
                "command_template": '{"strategy": "{{ value }}"}', "options": [s.value for s in Strategy]}),
            (self._config_topic("number", node, "fuse_limit"), {
                **common, "name": "Fuse limit", "unique_id": f"{node}-fuse-limit", "state_topic": settings,
                "value_template": "{{ value_json.fuse_limit }}", "command_topic": set_topic,
                "command_template": '{"fuse_limit": {{ value | float }}}', "min": 6, "max": 250, "step": 1,
                "unit_of_measurement": "A", "device_class": "current"}),
        ]
        for phase in Phase:
            key = phase.value.lower()
            out.append((self._config_topic("sensor", node, f"grid_current_{key}"), {
                **common, "name": f"Grid current {phase.value}", "unique_id": f"{node}-grid-current-{key}",
                "state_topic": self.topics.measurement(site),
                "value_template": f"{{{{ value_json.grid_current.{phase.value}.value }}}}",
                "unit_of_measurement": "A", "device_class": "current", "state_class": "measurement"}))
            out.append((self._config_topic("sensor", node, f"headroom_{key}"), {
                **common, "name": f"Headroom {phase.value}", "unique_id": f"{node}-headroom-{key}",
                "state_topic": self.topics.decision(site),
                "value_template": f"{{{{ value_json.headroom.{phase.value} }}}}",
                "unit_of_measurement": "A", "device_class": "current", "state_class": "measurement"}))
        return out

    def load_entities(self, site: str, load: str, name: str = "") -> list[tuple[str, dict[str, Any]]]:
        node = f"ampmq-{site}-{load}"
        device = {"identifiers": [node], "name": name or load, "manufacturer": "ampmq", "model": "load",
                  "via_device": f"ampmq-{site}"}
        settings, set_topic = self.topics.load_settings(site, load), self.topics.load_settings_set(site, load)
        setpoint, state = self.topics.setpoint(site, load), self.topics.load_state(site, load)
        common = {"device": device, **self._availability(self.topics.load_availability(site, load))}
        return [
            (self._config_topic("select", node, "mode"), {
                **common, "name": "Mode", "unique_id": f"{node}-mode", "state_topic": settings,
                "value_template": "{{ value_json.mode or 'site' }}", "command_topic": set_topic,
                "command_template": '{"mode": {{ "null" if value == "site" else \'"\' ~ value ~ \'"\' }}}',
                "options": ["site", *(m.value for m in Mode)]}),
            (self._config_topic("number", node, "priority"), {
                **common, "name": "Priority", "unique_id": f"{node}-priority", "state_topic": settings,
                "value_template": "{{ value_json.priority }}", "command_topic": set_topic,
                "command_template": '{"priority": {{ value | int }}}', "min": 1, "max": 99, "step": 1}),
            (self._config_topic("switch", node, "enabled"), {
                **common, "name": "Enabled", "unique_id": f"{node}-enabled", "state_topic": settings,
                "value_template": "{{ 'ON' if value_json.enabled else 'OFF' }}", "command_topic": set_topic,
                "payload_on": '{"enabled": true}', "payload_off": '{"enabled": false}',
                "state_on": "ON", "state_off": "OFF"}),
            (self._config_topic("sensor", node, "setpoint"), {
                **common, "name": "Setpoint", "unique_id": f"{node}-setpoint", "state_topic": setpoint,
                "value_template": "{{ value_json.current }}", "unit_of_measurement": "A", "device_class": "current",
                "json_attributes_topic": setpoint}),
            (self._config_topic("sensor", node, "reason"), {
                **common, "name": "Reason", "unique_id": f"{node}-reason", "state_topic": setpoint,
                "value_template": "{{ value_json.reason }}"}),
            (self._config_topic("sensor", node, "power"), {
                **common, "name": "Power", "unique_id": f"{node}-power", "state_topic": state,
                "value_template": "{{ value_json.power or 0 }}", "unit_of_measurement": "W", "device_class": "power",
                "state_class": "measurement"}),
        ]
