"""Boilers and heat pumps against real MQTT devices: relays, stages, % power, SG-Ready, thermostats."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.load_adapters.service import LoadAdaptersConfig
from shared.config import AmpmqConfig, ConfigError
from shared.models import LoadKind, LoadState, Phase, Reason
from shared.probe import Probe

from .conftest import FAST, T, running, setpoint
from .devices import PlainSwitch, ShellyPlug, ValueDevice


def switch(base: str) -> dict[str, Any]:
    return {"driver": "mqtt", "command_topic": f"{base}/set", "state_topic": f"{base}/state", "state_field": "state"}


async def test_boiler_must_run_idle_when_hot_and_back_on(mqtt_url: str, probe: Probe, site_id: str) -> None:
    prefix, temp = f"shelly-{site_id}", f"sensors/{site_id}/tank"
    await probe.subscribe(T.load_state(site_id, "boiler"))
    load = {"type": "boiler", "site": site_id, "id": "boiler", "control": "onoff", "rated_power": 3000.0,
            "relay": {"driver": "shelly", "prefix": prefix}, "temperature": {"topic": temp, "field": "tC"},
            "min_temp": 45.0, "max_temp": 65.0, "hysteresis": 2.0, **FAST}

    def state(m: Any) -> dict[str, Any]:
        return dict(m.json())

    async with ShellyPlug(mqtt_url, prefix, load_w=3000.0) as relay, running(mqtt_url, [load]):
        await probe.publish(temp, {"tC": 40.0})
        cold = await probe.expect(T.load_state(site_id, "boiler"),
                                  where=lambda m: state(m)["must_run"] and state(m)["status"] != "unavailable")
        parsed = cold.model(LoadState)
        assert parsed.kind is LoadKind.ONOFF and parsed.status.value == "active" and parsed.soc == 0.0
        await probe.publish(T.setpoint(site_id, "boiler"),
                            setpoint(site_id, "boiler", on=True, reason=Reason.MUST_RUN), retain=True)
        await relay.wait_for(lambda: relay.output)
        await probe.publish(temp, {"tC": 46.0})  # above the minimum, within the hysteresis: still must run
        await probe.publish(temp, {"tC": 66.0})
        # hot: idle, and the heater goes off although the setpoint still allows it
        hot = await probe.expect(T.load_state(site_id, "boiler"), where=lambda m: state(m)["status"] == "idle")
        assert hot.json()["must_run"] is False and hot.json()["soc"] == 100.0
        await relay.wait_for(lambda: not relay.output)
        await probe.publish(temp, {"tC": 64.0})  # within the hysteresis: stays off
        await asyncio.sleep(0.4)
        assert not relay.output
        await probe.publish(temp, {"tC": 60.0})
        await relay.wait_for(lambda: relay.output)
    assert relay.sets[relay.sets.index(True):] == [True, False, True]  # (an "off" may come first: the safe state)


async def test_stepped_boiler_picks_the_highest_step_it_covers(mqtt_url: str, probe: Probe, site_id: str) -> None:
    base = f"boiler/{site_id}"
    await probe.subscribe(T.load_state(site_id, "tank"))
    load = {"type": "boiler", "site": site_id, "id": "tank", "control": "stepped",
            "temperature": {"topic": f"{base}/temp"},
            "stages": [{"relay": switch(f"{base}/s1"), "power": 1150.0},
                       {"relay": switch(f"{base}/s2"), "power": 2300.0}], **FAST}
    async with PlainSwitch(mqtt_url, f"{base}/s1", load_w=1150.0) as s1, \
            PlainSwitch(mqtt_url, f"{base}/s2", load_w=2300.0) as s2, running(mqtt_url, [load]):
        await probe.publish(f"{base}/temp", "50.5")
        first = await probe.expect(T.load_state(site_id, "tank"), where=lambda m: m.json()["details"]["temperature"])
        parsed = first.model(LoadState)
        assert parsed.kind is LoadKind.STEPPED
        assert parsed.steps == [5.0, 15.0]
        await probe.publish(T.setpoint(site_id, "tank"), setpoint(site_id, "tank", current=12.0))
        await s1.wait_for(lambda: s1.output)
        await asyncio.sleep(0.3)
        assert not s2.output
        await probe.publish(T.setpoint(site_id, "tank"), setpoint(site_id, "tank", current=15.0))
        await s2.wait_for(lambda: s2.output)
        state = await probe.expect(T.load_state(site_id, "tank"), where=lambda m: m.json()["details"]["stage"] == 2
                                   and m.json()["draw"].get("A") == 15.0)
        assert state.model(LoadState).draw == {Phase.A: 15.0}
        await probe.publish(T.setpoint(site_id, "tank"), setpoint(site_id, "tank", current=3.0))
        await s1.wait_for(lambda: not s1.output and not s2.output)


async def test_continuous_boiler_power_command_confirmed_or_retried(
    mqtt_url: str, probe: Probe, site_id: str
) -> None:
    base = f"boiler/{site_id}/power"
    await probe.subscribe(T.errors(site_id))
    await probe.subscribe(T.load_state(site_id, "tank"))
    load = {"type": "boiler", "site": site_id, "id": "tank", "control": "continuous", "max_power": 3000.0,
            "min_power": 500.0, "temperature": {"topic": f"boiler/{site_id}/temp"},
            "power_command": {"topic": f"{base}/set", "template": '{"value": {value}}',
                              "state": {"topic": f"{base}/state", "field": "value"}}, **FAST}
    async with ValueDevice(mqtt_url, base) as device, running(mqtt_url, [load]):
        state = (await probe.expect(T.load_state(site_id, "tank"))).model(LoadState)
        assert state.kind is LoadKind.CONTINUOUS
        assert (state.min_current, state.max_current) == (2.174, 13.043)
        await device.wait_for(lambda: device.commands == [0.0])  # no setpoint yet: the safe state, 0 %
        device.refuse = 1
        await probe.publish(T.setpoint(site_id, "tank"), setpoint(site_id, "tank", current=10.0))
        await device.wait_for(lambda: device.value == 76.7)  # 10 A x 230 V = 2300 W of 3000 W
        report = await probe.expect(T.errors(site_id), where=lambda m: m.json()["error"] == "command_not_confirmed")
        assert report.json()["topic"] == f"{base}/set"
        await probe.publish(T.setpoint(site_id, "tank"), setpoint(site_id, "tank", current=1.0))  # below min_power
        await device.wait_for(lambda: device.value == 0.0)
    assert device.commands[:3] == [0.0, 76.7, 76.7]  # refused once, sent again


async def test_sg_ready_boiler_and_fallback(mqtt_url: str, probe: Probe, site_id: str) -> None:
    base = f"sg/{site_id}"
    load = {"type": "boiler", "site": site_id, "id": "tank", "control": "sg_ready", "rated_power": 2000.0,
            "temperature": {"topic": f"{base}/temp"},
            "sg_ready": {"relay1": switch(f"{base}/r1"), "relay2": switch(f"{base}/r2")}, **FAST}
    async with PlainSwitch(mqtt_url, f"{base}/r1") as r1, PlainSwitch(mqtt_url, f"{base}/r2") as r2, \
            running(mqtt_url, [load]):
        await probe.publish(T.setpoint(site_id, "tank"), setpoint(site_id, "tank", on=True, seconds=1.5))
        await r2.wait_for(lambda: r2.output)  # state 3: recommended on
        assert not r1.output
        await r2.wait_for(lambda: not r2.output, timeout=5)  # the setpoint expired: state 2, normal
        assert not r1.output


async def test_heat_pump_thermostat_boost_within_comfort_band(mqtt_url: str, probe: Probe, site_id: str) -> None:
    base = f"hvac/{site_id}/target"
    await probe.subscribe(T.load_state(site_id, "hp"))
    load = {"type": "heat_pump", "site": site_id, "id": "hp", "control": "thermostat", "rated_power": 2500.0,
            "thermostat": {"target": {"topic": f"{base}/set", "state": {"topic": f"{base}/state", "field": "value"}},
                           "base_temperature": 21.0, "boost_offset": 3.0, "comfort_min": 19.0, "comfort_max": 22.5},
            "min_on": 30.0, "min_off": 0.0, **FAST}
    async with ValueDevice(mqtt_url, base, initial=20.0) as thermostat, running(mqtt_url, [load]):
        await thermostat.wait_for(lambda: thermostat.value == 21.0)  # no setpoint yet: the base temperature
        await probe.publish(T.setpoint(site_id, "hp"), setpoint(site_id, "hp", on=True))
        await thermostat.wait_for(lambda: thermostat.value == 22.5)  # 21 + 3, held to the comfort band
        await probe.publish(T.setpoint(site_id, "hp"), setpoint(site_id, "hp", on=False, reason=Reason.NO_EXCESS))
        held = await probe.expect(T.load_state(site_id, "hp"),
                                  where=lambda m: m.json()["details"]["boost"] and m.json()["details"]["hold_s"] > 0
                                  and m.json()["details"]["target"] == 22.5)
        assert held.json()["status"] == "active"
        await asyncio.sleep(0.3)
        assert thermostat.value == 22.5  # minimum on time
        # a safety cut does not wait for the minimum on time, and goes to the bottom of the comfort band
        await probe.publish(T.setpoint(site_id, "hp"), setpoint(site_id, "hp", on=False, reason=Reason.FUSE_LIMIT))
        await thermostat.wait_for(lambda: thermostat.value == 19.0)
        await probe.publish(T.setpoint(site_id, "hp"), setpoint(site_id, "hp", on=False, reason=Reason.NO_EXCESS))
        await thermostat.wait_for(lambda: thermostat.value == 21.0)


async def test_heat_pump_sg_ready_minimum_off_time(mqtt_url: str, probe: Probe, site_id: str) -> None:
    base = f"sg/{site_id}"
    load = {"type": "heat_pump", "site": site_id, "id": "hp", "control": "sg_ready", "rated_power": 3000.0,
            "sg_ready": {"relay1": switch(f"{base}/r1"), "relay2": switch(f"{base}/r2"), "on_state": 4},
            "min_on": 0.0, "min_off": 30.0, **FAST}
    async with PlainSwitch(mqtt_url, f"{base}/r1") as r1, PlainSwitch(mqtt_url, f"{base}/r2") as r2, \
            running(mqtt_url, [load]):
        await probe.publish(T.setpoint(site_id, "hp"), setpoint(site_id, "hp", on=True))
        await r1.wait_for(lambda: r1.output and r2.output)  # state 4: forced on
        await probe.publish(T.setpoint(site_id, "hp"), setpoint(site_id, "hp", on=False))
        await r1.wait_for(lambda: not r1.output and not r2.output)
        await probe.publish(T.setpoint(site_id, "hp"), setpoint(site_id, "hp", on=True))
        await asyncio.sleep(0.5)
        assert not r1.output and not r2.output  # the minimum off time holds it
        # a safety cut blocks it (state 1): in normal operation it would go on drawing on its own
        await probe.publish(T.setpoint(site_id, "hp"), setpoint(site_id, "hp", on=False, reason=Reason.FUSE_LIMIT))
        await r1.wait_for(lambda: r1.output and not r2.output)


@pytest.mark.parametrize(("load", "field"), [
    ({"type": "boiler", "site": "home", "id": "b", "control": "onoff", "temperature": {"topic": "t"}}, "relay"),
    ({"type": "kettle", "site": "home", "id": "b"}, "type"),
    ({"type": "shelly_plug", "site": "home", "id": "p", "prefix": "x/#"}, "prefix"),
    ({"type": "ocpp_charger", "site": "home", "id": "c", "charger": "cp", "stack_level": 1}, "stack_level"),
    ({"type": "tasmota_plug", "site": "home", "id": "p", "topic": "t", "colour": "red"}, "colour"),
])
def test_bad_config_names_the_field(load: dict[str, Any], field: str) -> None:
    config = AmpmqConfig(load_adapters={"loads": [load]})
    with pytest.raises(ConfigError, match=field):
        config.section("load_adapters", LoadAdaptersConfig)


def test_a_load_configured_twice_is_refused() -> None:
    plug = {"type": "tasmota_plug", "site": "home", "id": "p", "topic": "t"}
    with pytest.raises(ConfigError, match="configured twice"):
        AmpmqConfig(load_adapters={"loads": [plug, plug]}).section("load_adapters", LoadAdaptersConfig)
