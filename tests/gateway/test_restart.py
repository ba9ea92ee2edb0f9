# mypy: disable-error-code="import-untyped,untyped-decorator,misc"
"""A gateway that restarts tells the truth (issue 13.6): chargers without a socket are offline, and a
transaction begun before the restart ends on its own connector after it."""

from __future__ import annotations

import asyncio

from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from shared.models import TransactionState
from shared.probe import Probe
from shared.topics import Topics

from .conftest import GatewayFactory, charger


async def test_chargers_left_online_by_a_killed_gateway_are_offline_after_its_restart(
    run_gateway: GatewayFactory, probe: Probe, site_id: str, topics: Topics
) -> None:
    # what a gateway killed with kill -9 leaves: its chargers retained online (only its own Last Will fires)
    for cp in ("cp-gone", "cp-back", "cp-pending"):
        await probe.publish(topics.charger_availability(site_id, cp), "online", retain=True)
    await probe.subscribe(topics.charger_filter("availability", site_id))
    mark = probe.mark()
    chargers = {"CP-GONE": {"site": site_id}, "CP-BACK": {"site": site_id}}
    async with run_gateway(chargers=chargers, default_site=site_id) as gateway, charger(gateway, "CP-BACK"):
        # configured and not back: offline; not configured (a pending charger of the earlier run): offline
        for cp in ("cp-gone", "cp-pending"):
            await probe.expect(topics.charger_availability(site_id, cp), after=mark,
                               where=lambda m: m.text == "offline")
        await probe.expect(topics.charger_availability(site_id, "cp-back"), after=mark,
                           where=lambda m: m.text == "online")
        await asyncio.sleep(0.3)
        last = probe.on(topics.charger_availability(site_id, "cp-back"))[-1]
        assert last.text == "online", "the charger that came back stays online"
    for cp in ("cp-gone", "cp-back", "cp-pending"):  # clean up the retained topics of this site
        await probe.publish(topics.charger_availability(site_id, cp), "", retain=True)


async def _until_remembered(gateway: object, charger_id: str, transaction: str) -> None:
    memory = gateway.registry.memory(charger_id)  # type: ignore[attr-defined]
    for _ in range(250):
        if transaction in memory.transactions:
            return
        await asyncio.sleep(0.02)


async def test_a_transaction_begun_before_a_restart_ends_on_its_connector(
    run_gateway: GatewayFactory, probe: Probe, site_id: str, topics: Topics
) -> None:
    chargers = {"CP-16": {"site": site_id}, "CS-201": {"site": site_id}}
    await probe.subscribe(topics.site_all(site_id))
    async with (
        run_gateway(chargers=chargers) as gateway,
        charger(gateway, "CP-16") as cp,
        charger(gateway, "CS-201", "2.0.1") as cs,
    ):
        started = await cp.call(call16.StartTransaction(connector_id=2, id_tag="TAG1", meter_start=1000,
                                                        timestamp="2026-12-01T00:00:00Z"))
        await cs.call(call201.TransactionEvent(
            event_type="Started", timestamp="2026-12-01T00:00:01Z", trigger_reason="CablePluggedIn", seq_no=0,
            transaction_info={"transactionId": "tx-r", "chargingState": "Charging"},
            evse={"id": 2, "connectorId": 1}))
        await probe.expect(topics.connector_transaction(site_id, "cp-16", 2))
        await probe.expect(topics.connector_transaction(site_id, "cs-201", 2))
    tx16 = str(started.transaction_id)
    mark = probe.mark()
    async with run_gateway(chargers=chargers) as gateway:  # a new process: nothing in memory
        await _until_remembered(gateway, "cp-16", tx16)
        await _until_remembered(gateway, "cs-201", "tx-r")
        async with charger(gateway, "CP-16") as cp, charger(gateway, "CS-201", "2.0.1") as cs:
            # 1.6 StopTransaction names no connector; a 2.0.1 Ended event may leave out the EVSE
            await cp.call(call16.StopTransaction(meter_stop=2500, timestamp="2026-12-01T01:00:00Z",
                                                 transaction_id=started.transaction_id))
            await cs.call(call201.TransactionEvent(
                event_type="Ended", timestamp="2026-12-01T01:00:00Z", trigger_reason="EVCommunicationLost", seq_no=1,
                transaction_info={"transactionId": "tx-r", "stoppedReason": "EVDisconnected"}))
            for cp_id, tx in (("cp-16", tx16), ("cs-201", "tx-r")):
                ended = await probe.expect(topics.connector_transaction(site_id, cp_id, 2), after=mark,
                                           where=lambda m: m.json()["state"] == "ended")
                assert ended.model(TransactionState).transaction_id == tx
                assert not probe.on(topics.connector_transaction(site_id, cp_id, 0)), "not on connector 0"
            errors = [m.json()["error"] for m in probe.on(topics.errors(site_id))]
            assert "unknown_transaction" not in errors


async def test_retained_transactions_of_other_sites_chargers_are_not_taken_for_ours(
    run_gateway: GatewayFactory, probe: Probe, site_id: str, topics: Topics
) -> None:
    """Another site's charger with the same id (under the same root) left retained transactions: they are not
    this gateway's to remember (taken in, they had evicted this charger's own running transaction)."""
    others = [f"{site_id}-o{i}" for i in range(80)]
    for other in others:
        state = TransactionState(site=other, charger="cp-same", connector=1, transaction_id=f"x-{other}",
                                 state="started")
        await probe.publish(topics.connector_transaction(other, "cp-same", 1), state, retain=True)
    try:
        async with run_gateway(chargers={"CP-SAME": {"site": site_id}}) as gateway, \
                charger(gateway, "CP-SAME") as cp:
            await asyncio.sleep(0.5)  # the retained states have come
            memory = gateway.registry.memory("cp-same")
            assert not [t for t in memory.transactions if t.startswith("x-")]
            started = await cp.call(call16.StartTransaction(connector_id=1, id_tag="TAG1", meter_start=0,
                                                            timestamp="2026-01-01T00:00:00Z"))
            assert memory.transactions.get(str(started.transaction_id)) == 1
    finally:
        for other in others:
            await probe.publish(topics.connector_transaction(other, "cp-same", 1), "", retain=True)
