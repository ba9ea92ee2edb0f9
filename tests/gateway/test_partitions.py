# mypy: disable-error-code="import-untyped,untyped-decorator,misc"
"""The gateway partitioned over several instances on one broker, each configured with its own sites'
chargers and ``serve_only`` those sites: an instance leaves the other instances' chargers alone — it neither
turns their retained ``online`` into ``offline`` when it (re)starts nor answers their commands with
``offline``."""

from __future__ import annotations

import asyncio

from shared.models import OcppCommand, OcppResult
from shared.probe import Probe
from shared.topics import Topics

from .conftest import GatewayFactory, charger
from .test_flow import PROFILE_16


async def test_an_instance_leaves_the_chargers_of_another_instances_sites_alone(
    run_gateway: GatewayFactory, probe: Probe, site_id: str, topics: Topics
) -> None:
    site_a, site_b = f"{site_id}-a", f"{site_id}-b"
    for site in (site_a, site_b):
        await probe.subscribe(topics.site_all(site))
    async with run_gateway(chargers={"CP-A": {"site": site_a}}, serve_only=[site_a]) as gateway_a, \
            charger(gateway_a, "CP-A") as cp:
        await probe.expect(topics.charger_availability(site_a, "cp-a"), where=lambda m: m.text == "online")
        mark = probe.mark()
        # the second instance starts after the first one's charger is retained online
        async with run_gateway(chargers={"CP-B": {"site": site_b}}, serve_only=[site_b]) as gateway_b:
            await probe.expect(topics.charger_availability(site_b, "cp-b"), after=mark,
                               where=lambda m: m.text == "offline")  # its own absent charger: offline
            command = topics.charger_command(site_a, "cp-a", "SetChargingProfile")
            await probe.publish(command, OcppCommand(request_id="a-1", payload=PROFILE_16))
            result = await probe.expect(topics.charger_result(site_a, "cp-a", "SetChargingProfile"), after=mark)
            assert result.model(OcppResult).ok
            await asyncio.sleep(0.5)  # room for a wrong answer from the other instance to arrive
            results = probe.on(topics.charger_result(site_a, "cp-a", "SetChargingProfile"), after=mark)
            assert [r.model(OcppResult).ok for r in results] == [True], \
                "only the instance the charger is connected to answers its command"
            availability = [m.text for m in probe.on(topics.charger_availability(site_a, "cp-a"), after=mark)]
            assert "offline" not in availability, "the other instance's start left this charger online"
            assert probe.on(topics.errors(site_a), after=mark) == []
            assert gateway_b.runtime.foreign > 0, "site A's traffic is dropped by B before it is parsed"
        assert [name for name, _ in cp.received] == ["SetChargingProfile"]
    for site, cp_id in ((site_a, "cp-a"), (site_b, "cp-b")):
        await probe.publish(topics.charger_availability(site, cp_id), "", retain=True)
