# mypy: disable-error-code="import-untyped,untyped-decorator,misc"
"""Commands that reach the charger: after a gateway restart, while one is still on its way, and across
broker restarts (issues 13.6 and 16.1). The real gateway, Mosquitto and OCPP charge points throughout."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from ocpp.routing import on
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from websockets.asyncio.client import connect

from services.load_adapters.adapter import SERVICE
from services.load_adapters.service import LoadAdapters, LoadAdaptersConfig
from services.ocpp_gateway.config import GatewayConfig
from services.ocpp_gateway.gateway import Gateway
from shared.broker import Mosquitto
from shared.mqtt import Runtime, serving
from shared.probe import Probe
from tests.charge_point_loop import reading

from .chargers import Charger16, charge_point
from .conftest import FAST_CHARGER, T, ocpp_gateway, running, setpoint
from .test_ocpp_charger import ALL, limit16, live16


def load(site: str, **extra: Any) -> dict[str, Any]:
    return {"type": "ocpp_charger", "site": site, "id": "carport", "charger": "cp-a", **FAST_CHARGER,
            "rate_unit": "A", "lifetime": 90.0, "renew_every": 30.0, **extra}


async def test_a_charger_back_after_a_gateway_restart_gets_its_profiles_at_once(
    mqtt_url: str, probe: Probe, site_id: str
) -> None:
    """Issue 13.6: a killed gateway left the charger retained online. The adapter's commands to it were
    answered offline and its retry backed off (here 30 s); when the charger came back its baseline waited
    for that. Now the restarted gateway says offline, and the charger's return installs it at once."""
    await probe.publish(T.charger_availability(site_id, "cp-a"), "online", retain=True)  # left by kill -9
    await probe.subscribe(T.charger_result(site_id, "cp-a", "+"))
    await probe.publish(T.charger_boot(site_id, "cp-a"), {
        "site": site_id, "charger": "cp-a", "ocpp_id": "CP-A", "ocpp_version": "1.6", "vendor": "Test",
        "model": "Wallbox-16", "ts": "2026-12-01T00:00:00Z"}, retain=True)
    slow_retry = load(site_id, retry_initial=30.0, retry_max=60.0)
    async with ocpp_gateway(mqtt_url, site_id, ["CP-A"]) as gw, running(mqtt_url, [slow_retry]):
        await asyncio.sleep(1.0)  # the charger is not back yet
        async with charge_point(gw.url, "CP-A") as cp:  # reconnected, not rebooted: no BootNotification
            baseline = await cp.wait_call("SetChargingProfile")
            assert baseline["csChargingProfiles"]["chargingProfileId"] == 10
    for topic in (T.charger_availability(site_id, "cp-a"), T.charger_boot(site_id, "cp-a")):
        await probe.publish(topic, "", retain=True)


async def test_a_charger_that_reconnects_gets_its_profiles_without_waiting_out_the_backoff(
    mqtt_url: str, probe: Probe, site_id: str
) -> None:
    """Issue 13.6: the retry backoff of a failed profile outlived the charger's reconnect when its
    availability never went offline (a new socket replacing the old one; a gateway restart that left it
    online). The charger refuses its baseline once; the retry would come 30 s later. It reconnects and gets
    the baseline at once."""
    slow_retry = load(site_id, retry_initial=30.0, retry_max=60.0)
    await probe.subscribe(T.errors(site_id))
    async with (
        ocpp_gateway(mqtt_url, site_id, ["CP-A"]) as gw,
        running(mqtt_url, [slow_retry]),
        charge_point(gw.url, "CP-A") as first,
    ):
        first.reject_profiles = 1
        await first.boot()
        await first.wait_call("SetChargingProfile")
        await probe.expect(T.errors(site_id), where=lambda m: m.json()["error"] == "command_failed")
        # a new connection while the old one is still open: it replaces it, availability stays online
        # (no BootNotification: a charger sends one after it boots, not on every reconnect)
        async with charge_point(gw.url, "CP-A") as second:
            baseline = await second.wait_call("SetChargingProfile")
            assert baseline["csChargingProfiles"]["chargingProfileId"] == 10


class HoldsLiveAnswers(Charger16):
    """Answers a live profile only when the test lets it (a slow charger, within the standard)."""

    def __init__(self, cp_id: str, connection: Any) -> None:
        super().__init__(cp_id, connection)
        self.release = asyncio.Event()

    @on(Action16.set_charging_profile)
    async def on_set_charging_profile(self, **kw: Any) -> result16.SetChargingProfile:
        if kw["cs_charging_profiles"]["charging_profile_id"] == 11:
            await self.release.wait()
        return result16.SetChargingProfile(status="Accepted")


async def test_a_newer_limit_is_not_held_back_by_one_still_on_its_way(
    mqtt_url: str, probe: Probe, site_id: str
) -> None:
    """Issue 16.1: while a live profile waited for its answer, the adapter sent no newer limit. Now the cut
    to 6 A is published at once, before the 10 A is answered, and it is what the charger ends with."""
    command = T.charger_command(site_id, "cp-a", "SetChargingProfile")
    result = T.charger_result(site_id, "cp-a", "SetChargingProfile")
    await probe.subscribe(command)
    await probe.subscribe(result)
    async with ocpp_gateway(mqtt_url, site_id, ["CP-A"]) as gw, running(mqtt_url, [load(site_id)]):
        ws = await connect(f"{gw.url}/CP-A", subprotocols=["ocpp1.6"], open_timeout=5)  # type: ignore[list-item]
        cp = HoldsLiveAnswers("CP-A", ws)
        async with reading(cp, ws):
            await cp.boot()
            await cp.wait_call("SetChargingProfile")  # the baseline
            await probe.publish(T.setpoint(site_id, "carport"), setpoint(site_id, "carport", current=10.0, phases=ALL))
            await cp.wait_call("SetChargingProfile", where=live16)  # arrived; its answer is held
            mark = probe.mark()
            await probe.publish(T.setpoint(site_id, "carport"), setpoint(site_id, "carport", current=6.0, phases=ALL))
            await probe.expect(command, after=mark, where=lambda m: m.json()["request_id"].startswith("carport-live")
                               and limit16(m.json()["payload"]) == 6.0)
            answered = [m.json()["request_id"] for m in probe.on(result)[mark:] if "live" in m.json()["request_id"]]
            assert not [m for m in probe.messages[mark:] if m.topic == result and "live" in m.json()["request_id"]], \
                f"the cut was published before the 10 A was answered, not after ({answered})"
            cp.release.set()
            await cp.wait_call("SetChargingProfile", where=lambda p: live16(p) and limit16(p) == 6.0)
            lives = [limit16(p) for p in cp.of("SetChargingProfile") if live16(p)]
            assert lives[-1] == 6.0


@contextlib.asynccontextmanager
async def gateway_on(url: str, site: str, backoff_initial: float) -> AsyncIterator[Gateway]:
    config = GatewayConfig.model_validate({"host": "127.0.0.1", "port": 0, "default_site": site,
                                           "chargers": {"CP-A": {"site": site, "auth": "none"}}})
    runtime = Runtime("ocpp-gateway", url, T, backoff_initial=backoff_initial)
    gateway = Gateway(config, runtime)
    async with serving(runtime), gateway.running():
        yield gateway


async def test_a_setpoint_published_as_the_broker_returns_reaches_the_charger(
    own_mosquitto: type[Mosquitto]
) -> None:
    """Issue 16.1: after a broker kill -9 and restart the adapter reconnected first and published its profile before
    the gateway had subscribed again: the command was gone, and held as pending for 25 s. Here the gateway
    is the slower one every time (its first retry comes after 1-2 s); the new limit, published the moment
    the adapter is back, reaches the charger on each of three restarts once the gateway's online says it is
    listening again."""
    broker = own_mosquitto().start()
    site = "home"
    config = LoadAdaptersConfig.model_validate({"loads": [load(site, command_timeout=20.0)]})
    runtime = Runtime(SERVICE, broker.url, T)
    adapters = LoadAdapters(config, runtime)
    async with gateway_on(broker.url, site, backoff_initial=2.0) as gw, serving(runtime), \
            charge_point(gw.url, "CP-A") as cp:
        try:
            await cp.boot()
            await cp.wait_call("SetChargingProfile")  # the baseline
            for amps in (7.0, 8.0, 9.0):
                broker.kill()  # kill -9: no Last Will tells the adapter that the gateway is gone
                broker.start()
                while runtime.connected:
                    await asyncio.sleep(0.01)
                await runtime.wait_connected(10)
                mark = cp.mark()
                async with Probe(broker.url) as probe:
                    await probe.publish(T.setpoint(site, "carport"),
                                        setpoint(site, "carport", current=amps, phases=ALL), retain=True)
                assert not gw.runtime.connected, "the case under test: the gateway is not subscribed yet"
                await cp.wait_call("SetChargingProfile", after=mark,
                                   where=lambda p, a=amps: live16(p) and limit16(p) == a)
        finally:
            await adapters.stop()
