"""Smart plugs against real MQTT devices: Shelly Gen2 RPC, Tasmota and a plain MQTT switch."""

from __future__ import annotations

import asyncio

import pytest

from services.load_adapters import adapter as adapter_module
from shared.models import ErrorReport, LoadKind, LoadState, LoadStatus, Phase, Reason
from shared.probe import Probe

from .conftest import FAST, T, running, setpoint
from .devices import PlainSwitch, ShellyPlug, TasmotaPlug


def shelly(site: str, prefix: str, **extra: object) -> dict[str, object]:
    return {"type": "shelly_plug", "site": site, "id": "plug", "prefix": prefix, **FAST, **extra}


async def test_shelly_on_off_and_measured_power(mqtt_url: str, probe: Probe, site_id: str) -> None:
    prefix = f"shellyplusplugs-{site_id}"
    await probe.subscribe(T.site_all(site_id))
    async with ShellyPlug(mqtt_url, prefix, load_w=1150.0) as plug, running(mqtt_url, [shelly(site_id, prefix)]):
        await probe.publish(T.setpoint(site_id, "plug"), setpoint(site_id, "plug", on=True), retain=True)
        await plug.wait_for(lambda: plug.output)
        msg = await probe.expect(T.load_state(site_id, "plug"),
                                 where=lambda m: m.json()["details"]["output"] is True and m.json()["power"] > 0)
        state = msg.model(LoadState)
        assert state.kind is LoadKind.ONOFF
        assert state.status is LoadStatus.ACTIVE
        assert state.power == 1150.0
        assert state.rated_power == 1150.0  # measured while on: no rated power configured
        assert state.draw == {Phase.A: 5.0}  # the plug's own current reading, on L1 -> A
        await probe.expect(T.load_availability(site_id, "plug"), where=lambda m: m.text == "online")

        mark = probe.mark()
        await probe.publish(T.setpoint(site_id, "plug"), setpoint(site_id, "plug", on=False), retain=True)
        await plug.wait_for(lambda: not plug.output)
        off = (await probe.expect(T.load_state(site_id, "plug"), after=mark,
                                  where=lambda m: m.json()["details"]["output"] is False)).model(LoadState)
        assert off.draw == {Phase.A: 0.0}
        assert off.rated_power == 1150.0  # the measured power is remembered while off
    assert plug.sets == [True, False]


async def test_expired_setpoint_falls_back_to_off(mqtt_url: str, probe: Probe, site_id: str) -> None:
    prefix = f"shelly-{site_id}"
    await probe.subscribe(T.errors(site_id))
    async with ShellyPlug(mqtt_url, prefix) as plug, running(mqtt_url, [shelly(site_id, prefix)]):
        await probe.publish(T.setpoint(site_id, "plug"), setpoint(site_id, "plug", on=True, seconds=1.0))
        await plug.wait_for(lambda: plug.output)
        # nobody renews the setpoint: the adapter switches the plug off on its own
        await plug.wait_for(lambda: not plug.output, timeout=5)
        report = (await probe.expect(T.errors(site_id), where=lambda m: m.json()["error"] == "setpoint_expired"))
        assert report.model(ErrorReport).service == "load-adapters"


async def test_setpoint_already_expired_is_refused(mqtt_url: str, probe: Probe, site_id: str) -> None:
    prefix = f"shelly-{site_id}"
    await probe.subscribe(T.errors(site_id))
    async with ShellyPlug(mqtt_url, prefix) as plug, running(mqtt_url, [shelly(site_id, prefix, fallback_on=False)]):
        await probe.publish(T.setpoint(site_id, "plug"), setpoint(site_id, "plug", on=True, seconds=-5))
        await probe.expect(T.errors(site_id), where=lambda m: m.json()["error"] == "stale")
        await asyncio.sleep(0.5)
        assert True not in plug.sets


async def test_rejected_command_is_reported_and_retried(mqtt_url: str, probe: Probe, site_id: str) -> None:
    prefix = f"shelly-{site_id}"
    await probe.subscribe(T.errors(site_id))
    async with ShellyPlug(mqtt_url, prefix) as plug, running(mqtt_url, [shelly(site_id, prefix)]):
        plug.reject_sets = 2
        await probe.publish(T.setpoint(site_id, "plug"), setpoint(site_id, "plug", on=True))
        await plug.wait_for(lambda: plug.output, timeout=8)
        reports = probe.on(T.errors(site_id))
        rejected = [r.model(ErrorReport) for r in reports if r.json()["error"] == "command_rejected"]
        assert len(rejected) == 2
        assert "Overpower" in rejected[0].message
        assert rejected[0].topic == f"{prefix}/rpc"
        assert plug.sets == [True, True, True]


async def test_plug_switched_off_by_hand_is_switched_back_on(mqtt_url: str, probe: Probe, site_id: str) -> None:
    prefix = f"shelly-{site_id}"
    async with ShellyPlug(mqtt_url, prefix) as plug, running(mqtt_url, [shelly(site_id, prefix, min_off=0.5)]):
        await probe.publish(T.setpoint(site_id, "plug"), setpoint(site_id, "plug", on=True))
        await plug.wait_for(lambda: plug.output)
        await plug.switch_by_hand(False)
        await plug.wait_for(lambda: plug.output, timeout=5)
    assert plug.sets == [True, True]


async def test_minimum_on_time_holds_but_a_safety_cut_does_not_wait(
    mqtt_url: str, probe: Probe, site_id: str
) -> None:
    prefix = f"shelly-{site_id}"
    await probe.subscribe(T.load_state(site_id, "plug"))
    async with ShellyPlug(mqtt_url, prefix) as plug, running(mqtt_url, [shelly(site_id, prefix, min_on=30)]):
        await probe.publish(T.setpoint(site_id, "plug"), setpoint(site_id, "plug", on=True))
        await plug.wait_for(lambda: plug.output)
        # switched by hand, then a comfort "off": the minimum on time counts from the last change
        await plug.switch_by_hand(False)
        await plug.wait_for(lambda: plug.output)
        mark = probe.mark()
        await probe.publish(T.setpoint(site_id, "plug"), setpoint(site_id, "plug", on=False, reason=Reason.OFF))
        held = await probe.expect(T.load_state(site_id, "plug"), after=mark,
                                  where=lambda m: m.json()["details"]["wanted"] is False)
        assert held.json()["details"]["hold_s"] > 0
        assert held.json()["details"]["output"] is True
        await probe.publish(T.setpoint(site_id, "plug"),
                            setpoint(site_id, "plug", on=False, reason=Reason.FUSE_LIMIT))
        await plug.wait_for(lambda: not plug.output)
    assert plug.sets[-1] is False


async def test_silent_device_makes_the_load_unavailable(mqtt_url: str, probe: Probe, site_id: str) -> None:
    prefix = f"shelly-{site_id}"
    await probe.subscribe(T.site_all(site_id))
    loads = [shelly(site_id, prefix, silent_after=1.0, poll_interval=0.3)]
    async with running(mqtt_url, loads):
        async with ShellyPlug(mqtt_url, prefix):
            await probe.expect(T.load_state(site_id, "plug"), where=lambda m: m.json()["status"] == "active")
            mark = probe.mark()
        # the device is gone: polls go unanswered
        state = await probe.expect(T.load_state(site_id, "plug"), after=mark,
                                   where=lambda m: m.json()["status"] == "unavailable")
        assert state.json()["draw"] == {}
        await probe.expect(T.load_availability(site_id, "plug"), after=mark, where=lambda m: m.text == "offline")
        mark = probe.mark()
        async with ShellyPlug(mqtt_url, prefix):
            await probe.expect(T.load_state(site_id, "plug"), after=mark,
                               where=lambda m: m.json()["status"] == "active")
            await probe.expect(T.load_availability(site_id, "plug"), after=mark, where=lambda m: m.text == "online")


async def test_tasmota_plug(mqtt_url: str, probe: Probe, site_id: str) -> None:
    topic = f"tasmota-{site_id}"
    await probe.subscribe(T.site_all(site_id))
    loads = [{"type": "tasmota_plug", "site": site_id, "id": "heater", "topic": topic, "rated_power": 800.0, **FAST}]
    async with TasmotaPlug(mqtt_url, topic, load_w=790.0) as plug, running(mqtt_url, loads):
        plug.reject = 1
        await probe.publish(T.setpoint(site_id, "heater"), setpoint(site_id, "heater", on=True))
        await plug.wait_for(lambda: plug.output, timeout=5)
        await probe.expect(T.errors(site_id), where=lambda m: m.json()["error"] == "command_rejected")
        state = (await probe.expect(T.load_state(site_id, "heater"),
                                    where=lambda m: m.json()["power"] == 790.0)).model(LoadState)
        assert state.rated_power == 800.0  # configured rated power wins over the reading
        assert state.energy == 12300.0
        assert plug.commands == ["ON", "ON"]
        await plug.go_offline()
        await probe.expect(T.load_state(site_id, "heater"), where=lambda m: m.json()["status"] == "unavailable")


async def test_plain_mqtt_switch_with_json_state(mqtt_url: str, probe: Probe, site_id: str) -> None:
    base = f"garage/{site_id}/pump"
    await probe.subscribe(T.load_state(site_id, "pump"))
    loads = [{"type": "mqtt_switch", "site": site_id, "id": "pump", "command_topic": f"{base}/set",
              "state_topic": f"{base}/state", "state_field": "state",
              "power": {"topic": f"{base}/state", "field": "power"}, "phases": ["L2"], **FAST}]
    async with PlainSwitch(mqtt_url, base, load_w=2300.0) as switch, running(mqtt_url, loads):
        await probe.publish(T.setpoint(site_id, "pump"), setpoint(site_id, "pump", on=True))
        await switch.wait_for(lambda: switch.output)
        state = (await probe.expect(T.load_state(site_id, "pump"),
                                    where=lambda m: m.json()["power"] == 2300.0)).model(LoadState)
        assert state.draw == {Phase.B: 10.0}  # 2300 W / 230 V on L2 -> B
        assert state.max_current == 10.0


async def test_malformed_device_payload_is_reported(mqtt_url: str, probe: Probe, site_id: str) -> None:
    prefix = f"shelly-{site_id}"
    await probe.subscribe(T.errors(site_id))
    async with running(mqtt_url, [shelly(site_id, prefix)]):
        await probe.publish(f"{prefix}/status/switch:0", "{not json")
        report = await probe.expect(T.errors(site_id), where=lambda m: m.json()["error"] == "device_payload")
        assert report.json()["topic"] == f"{prefix}/status/switch:0"
        await probe.publish(T.setpoint(site_id, "plug"), '{"site": "x"}')
        await probe.expect(T.errors(site_id), where=lambda m: m.json()["error"] == "validation")


async def test_a_device_sending_garbage_is_reported_in_moderation(
        mqtt_url: str, probe: Probe, site_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plug whose every event fails to parse: the first ``REPORTS_PER_LOAD`` are reported one by one, the
    rest counted and summed up once with the next report after the window; the plug is still served."""
    monkeypatch.setattr(adapter_module, "REPORT_WINDOW", 2.0)  # (10 s in service)
    prefix = f"shelly-{site_id}"
    extra = 7
    await probe.subscribe(T.errors(site_id))
    async with ShellyPlug(mqtt_url, prefix) as plug, running(mqtt_url, [shelly(site_id, prefix)]):
        mark = probe.mark()
        for n in range(adapter_module.REPORTS_PER_LOAD + extra):
            await probe.publish(f"{prefix}/events/rpc", f"{{not json {n}")  # an event topic: none replaced
        await probe.expect(T.errors(site_id), after=mark,
                           where=lambda m: m.json()["payload"] == f"{{not json {adapter_module.REPORTS_PER_LOAD - 1}")
        await asyncio.sleep(2.0)  # the window rolls over
        await probe.publish(f"{prefix}/events/rpc", "{not json, later")
        summary = await probe.expect(T.errors(site_id), after=mark,
                                     where=lambda m: m.json()["error"] == "reports_suppressed")
        assert f"{extra} more problems" in summary.json()["message"]
        await probe.expect(T.errors(site_id), after=mark, where=lambda m: m.json()["payload"] == "{not json, later")
        reported = [m.json()["payload"] for m in probe.on(T.errors(site_id), after=mark)
                    if m.json()["error"] == "device_payload"]
        assert reported == [f"{{not json {n}" for n in range(adapter_module.REPORTS_PER_LOAD)] + ["{not json, later"]
        await probe.publish(T.setpoint(site_id, "plug"), setpoint(site_id, "plug", on=True))
        await plug.wait_for(lambda: plug.output)


async def test_serve_runs_the_configured_loads(mqtt_url: str, probe: Probe, site_id: str) -> None:
    import contextlib

    from services.load_adapters.service import serve
    from shared.config import AmpmqConfig

    topic = f"tasmota-{site_id}"
    await probe.subscribe(T.site_all(site_id))
    config = AmpmqConfig(mqtt_url=mqtt_url, load_adapters={"loads": [
        {"type": "tasmota_plug", "site": site_id, "id": "lamp", "topic": topic, "rated_power": 60.0, **FAST}]})
    async with TasmotaPlug(mqtt_url, topic, load_w=58.0) as plug:
        task = asyncio.get_running_loop().create_task(serve(config))
        try:
            await probe.publish(T.setpoint(site_id, "lamp"), setpoint(site_id, "lamp", on=True), retain=True)
            await plug.wait_for(lambda: plug.output)
            await probe.expect(T.load_state(site_id, "lamp"), where=lambda m: m.json()["power"] == 58.0)
            # a setpoint naming another load on this load's topic is rejected, not applied
            await probe.publish(T.setpoint(site_id, "lamp"), setpoint(site_id, "other", on=False))
            report = await probe.expect(T.errors(site_id), where=lambda m: m.json()["error"] == "rejected")
            assert "other" in report.json()["message"]
            assert plug.output
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_shelly_notify_status_event_is_heard(mqtt_url: str, probe: Probe, site_id: str) -> None:
    prefix = f"shelly-{site_id}"
    await probe.subscribe(T.load_state(site_id, "plug"))
    async with running(mqtt_url, [shelly(site_id, prefix, poll_interval=600.0)]):
        await probe.publish(f"{prefix}/events/rpc", {"src": prefix, "dst": f"{prefix}/events", "method": "NotifyStatus",
                                                     "params": {"ts": 1.0, "switch:0": {"id": 0, "apower": 460.0,
                                                                                        "output": True}}})
        state = await probe.expect(T.load_state(site_id, "plug"), where=lambda m: m.json()["power"] == 460.0)
        assert state.json()["details"]["output"] is True
        assert state.json()["status"] == "active"
        assert state.model(LoadState).draw == {Phase.A: 2.0}  # 460 W / 230 V


async def test_fire_and_forget_switch_and_fallback_on(mqtt_url: str, probe: Probe, site_id: str) -> None:
    command = f"garage/{site_id}/fan/set"
    await probe.subscribe(command)
    await probe.subscribe(T.load_state(site_id, "fan"))
    loads = [{"type": "mqtt_switch", "site": site_id, "id": "fan", "command_topic": command, "rated_power": 50.0,
              "fallback_on": True, **FAST}]
    async with running(mqtt_url, loads):
        # no setpoint at all: the configured fallback (on) after the startup grace
        await probe.expect(command, where=lambda m: m.text == "ON")
        mark = probe.mark()
        await probe.publish(T.setpoint(site_id, "fan"), setpoint(site_id, "fan", on=False))
        await probe.expect(command, after=mark, where=lambda m: m.text == "OFF")
        # a switch that reports nothing is never "silent": it is as available as the broker
        state = await probe.expect(T.load_state(site_id, "fan"), after=mark,
                                   where=lambda m: m.json()["details"]["output"] is False)
        assert state.json()["status"] == "active"
        assert state.json()["rated_power"] == 50.0


async def test_switch_without_power_reading_reports_its_draw_as_power(mqtt_url: str, probe: Probe,
                                                                      site_id: str) -> None:
    """A plug that reports its relay but no power (issue 17: "a plug drawing 4.3 A shows 0 W") reports the power
    of what it draws, so Home Assistant's power sensor shows it instead of nothing."""
    base = f"garage/{site_id}/heater"
    await probe.subscribe(T.load_state(site_id, "heater"))
    loads = [{"type": "mqtt_switch", "site": site_id, "id": "heater", "command_topic": f"{base}/set",
              "state_topic": f"{base}/state", "state_field": "state", "rated_power": 989.0, **FAST}]
    async with PlainSwitch(mqtt_url, base) as switch, running(mqtt_url, loads):
        await probe.publish(T.setpoint(site_id, "heater"), setpoint(site_id, "heater", on=True))
        await switch.wait_for(lambda: switch.output)
        on = (await probe.expect(T.load_state(site_id, "heater"),
                                 where=lambda m: m.json()["details"]["output"] is True)).model(LoadState)
        assert on.draw == {Phase.A: 4.3}
        assert on.power == 989.0
        mark = probe.mark()
        await probe.publish(T.setpoint(site_id, "heater"), setpoint(site_id, "heater", on=False))
        off = (await probe.expect(T.load_state(site_id, "heater"), after=mark,
                                  where=lambda m: m.json()["details"]["output"] is False)).model(LoadState)
        assert off.power == 0.0
