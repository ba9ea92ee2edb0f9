# mypy: disable-error-code="import-untyped,untyped-decorator,misc"
"""The handshake: allowlist, HTTP Basic auth against stored hashes, subprotocol choice, setup mode."""

from __future__ import annotations

import pytest
from ocpp.v16 import call as call16
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from services.ocpp_gateway.handshake import REFUSAL_REPORTS, REFUSAL_WINDOW
from services.ocpp_gateway.passwords import hash_password
from shared.models import ChargerBoot, ErrorReport
from shared.probe import Probe
from shared.topics import Topics

from .conftest import GatewayFactory, SteppedClock, basic_auth, charger

CHEAP = {"n": 2**10}  # a cheap hash keeps the suite fast; production hashes use the default cost


async def _refused(url: str, **kwargs: object) -> int:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, open_timeout=5, **kwargs):  # type: ignore[arg-type]
            pass
    return refused.value.response.status_code


async def test_unknown_id_is_refused_and_reported(
    run_gateway: GatewayFactory, probe: Probe, site_id: str, topics: Topics
) -> None:
    await probe.subscribe(topics.all())
    async with run_gateway(chargers={"CP1": {"site": site_id}}) as gateway:
        mark = probe.mark()
        assert await _refused(f"{gateway.url}/ocpp/INTRUDER", subprotocols=["ocpp1.6"]) == 404
        report = await probe.expect(topics.service_errors("ocpp-gateway"), after=mark,
                                    where=lambda m: "INTRUDER" in m.json()["message"])
        assert report.model(ErrorReport).error == "unknown_charger"
        assert await _refused(f"{gateway.url}/", subprotocols=["ocpp1.6"]) == 404
        assert gateway.handshake.refused == 2


async def test_a_flood_of_refusals_is_reported_in_moderation(
    run_gateway: GatewayFactory, probe: Probe, topics: Topics
) -> None:
    await probe.subscribe(topics.service_errors("ocpp-gateway"))
    clock = SteppedClock()
    async with run_gateway(clock=clock) as gateway:
        mark = probe.mark()
        for i in range(REFUSAL_REPORTS + 10):
            assert await _refused(f"{gateway.url}/SCANNER-{i}", subprotocols=["ocpp1.6"]) == 404
        assert (gateway.handshake.refused, gateway.handshake.suppressed) == (REFUSAL_REPORTS + 10, 10)
        await probe.expect(topics.service_errors("ocpp-gateway"), after=mark,
                           where=lambda m: f"SCANNER-{REFUSAL_REPORTS - 1}'" in m.json()["message"])
        clock.seconds += REFUSAL_WINDOW  # the next window: a summary, then reports one by one again
        assert await _refused(f"{gateway.url}/LATECOMER", subprotocols=["ocpp1.6"]) == 404
        summary = await probe.expect(topics.service_errors("ocpp-gateway"), after=mark,
                                     where=lambda m: m.json()["error"] == "refusals_suppressed")
        assert summary.json()["message"].startswith("10 more")
        await probe.expect(topics.service_errors("ocpp-gateway"), after=mark,
                           where=lambda m: "LATECOMER" in m.json()["message"])
        reported = [m for m in probe.on(topics.service_errors("ocpp-gateway"), after=mark)
                    if "SCANNER" in m.json()["message"]]
        assert len(reported) == REFUSAL_REPORTS


async def test_password_checked_against_the_stored_hash(
    run_gateway: GatewayFactory, probe: Probe, site_id: str, topics: Topics
) -> None:
    await probe.subscribe(topics.site_all(site_id))
    chargers = {"CP1": {"site": site_id, "password_hash": hash_password("right horse", **CHEAP)}}
    async with run_gateway(chargers=chargers, require_password=True) as gateway:
        url = f"{gateway.url}/CP1"
        assert await _refused(url, subprotocols=["ocpp1.6"]) == 401
        assert await _refused(url, subprotocols=["ocpp1.6"], additional_headers=basic_auth("CP1", "wrong")) == 401
        assert await _refused(url, subprotocols=["ocpp1.6"], additional_headers=basic_auth("CP2", "right horse")) \
            == 401
        report = await probe.expect(topics.errors(site_id), where=lambda m: m.json()["error"] == "unauthorized")
        assert "CP1" in report.model(ErrorReport).message
        for _ in range(2):  # the second time the verified password comes from the cache
            async with charger(gateway, "CP1", password="right horse") as cp:
                answer = await cp.call(call16.BootNotification(charge_point_vendor="A", charge_point_model="B"))
                assert answer.status == "Accepted"


async def test_subprotocols(run_gateway: GatewayFactory, probe: Probe, site_id: str, topics: Topics) -> None:
    await probe.subscribe(topics.site_all(site_id))
    async with run_gateway(chargers={"OLD": {"site": site_id}, "NEW": {"site": site_id}}) as gateway:
        # no subprotocol offered: a field quirk, treated as 1.6
        async with charger(gateway, "OLD", "1.6", subprotocols=[]) as cp:
            assert cp._connection.subprotocol is None
            await cp.call(call16.BootNotification(charge_point_vendor="A", charge_point_model="B"))
            boot = (await probe.expect(topics.charger_boot(site_id, "old"))).model(ChargerBoot)
            assert boot.ocpp_version == "1.6"
        # offering both: the gateway prefers 2.0.1
        async with connect(f"{gateway.url}/NEW", subprotocols=["ocpp1.6", "ocpp2.0.1"]) as ws:  # type: ignore[list-item]
            assert ws.subprotocol == "ocpp2.0.1"
        # only versions we do not speak: refused
        mark = probe.mark()
        assert await _refused(f"{gateway.url}/NEW", subprotocols=["ocpp2.1", "ocpp1.5"]) == 400
        report = await probe.expect(topics.errors(site_id), after=mark)
        assert report.model(ErrorReport).error == "unsupported_subprotocol"


async def test_setup_mode_holds_unknown_chargers_pending(
    run_gateway: GatewayFactory, probe: Probe, site_id: str, topics: Topics
) -> None:
    await probe.subscribe(topics.site_all(site_id))
    async with run_gateway(default_site=site_id, allow_unknown="pending", chargers={"CP_1": {}}) as gateway:
        async with charger(gateway, "NEWBIE") as cp:
            answer = await cp.call(call16.BootNotification(charge_point_vendor="A", charge_point_model="B"))
            assert answer.status == "Pending"
            boot = (await probe.expect(topics.charger_boot(site_id, "newbie"))).model(ChargerBoot)
            assert boot.registration == "Pending"
        # an unknown id that would land on a configured charger's topics (cp-1) is refused
        assert await _refused(f"{gateway.url}/cp-1", subprotocols=["ocpp1.6"]) == 404
        async with charger(gateway, "CP_1") as known:
            answer = await known.call(call16.BootNotification(charge_point_vendor="A", charge_point_model="B"))
            assert answer.status == "Accepted"


async def test_permessage_deflate_only_when_configured(run_gateway: GatewayFactory, site_id: str) -> None:
    # the client offers permessage-deflate (as the websockets library does by default); by default the gateway
    # declines it (chargers on the site's own network: compression costs memory and CPU for nothing)
    for setting, negotiated in ((None, None), (True, "permessage-deflate"), (False, None)):
        settings = {} if setting is None else {"websocket_compression": setting}
        async with (run_gateway(chargers={"CP": {"site": site_id, "auth": "none"}}, **settings) as gateway,
                    connect(f"{gateway.url}/CP", subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                            compression="deflate") as ws):
            assert ws.response is not None
            extensions = ws.response.headers.get("Sec-WebSocket-Extensions")
            assert (extensions.split(";")[0] if extensions else None) == negotiated, setting
