"""While handlers are behind, a newer state replaces the waiting one for its topic; commands and events are
all handled, in order; nothing waits beyond the limit unreported. First the inbox alone, then a runtime
whose handler is slow, on the real broker."""

from __future__ import annotations

import asyncio

from shared.inbox import Inbox
from shared.models import SiteMeasurement
from shared.mqtt import Incoming, RawIncoming, Runtime, serving
from shared.probe import Probe
from shared.topics import Topics


def msg(topic: str, payload: str) -> RawIncoming:
    return RawIncoming(topic, payload.encode(), False)


async def drain(inbox: Inbox[RawIncoming]) -> list[tuple[str, str]]:
    out = []
    while len(inbox):
        got = await inbox.get()
        out.append((got.topic, got.payload.decode()))
    return out


async def test_a_newer_state_takes_the_waiting_ones_place_and_events_all_stay() -> None:
    inbox: Inbox[RawIncoming] = Inbox()
    inbox.put(msg("meter/a", "1"), state=True)
    inbox.put(msg("meter/b", "1"), state=True)
    inbox.put(msg("meter/a", "2"), state=True)
    inbox.put(msg("meter/b", "2"), state=True)
    assert await drain(inbox) == [("meter/a", "2"), ("meter/b", "2")]
    assert inbox.replaced == 2
    inbox.put(msg("meter/a", "4"), state=True)  # handled already: a new one queues afresh
    assert await drain(inbox) == [("meter/a", "4")]


async def test_first_waiting_tells_whether_a_message_put_first_is_still_to_come() -> None:
    inbox: Inbox[RawIncoming] = Inbox()
    inbox.put(msg("meter/a", "1"), state=True)
    assert not inbox.first_waiting()
    inbox.put(msg("setpoint/a", "1"), state=True, first=True)
    inbox.put(msg("command/a", "go"), state=False, first=True)
    inbox.put(msg("setpoint/a", "2"), state=True, first=True)  # moves behind the command: its old slot is left
    assert inbox.first_waiting()
    assert (await inbox.get()).payload == b"go"
    assert inbox.first_waiting()
    assert (await inbox.get()).payload == b"2"
    assert not inbox.first_waiting()  # only the ordinary lane's reading is left
    assert len(inbox) == 1


async def test_a_newer_state_never_overtakes_an_event_that_came_before_it() -> None:
    """A charger's transaction starts (an event), then its register reading (a state) replaces the one that
    was waiting from before: the reading is handled after the start, so the session it belongs to exists."""
    inbox: Inbox[RawIncoming] = Inbox()
    inbox.put(msg("meter/a", "1"), state=True)
    inbox.put(msg("cmd", "x"), state=False)
    inbox.put(msg("meter/b", "1"), state=True)
    inbox.put(msg("meter/a", "2"), state=True)  # after x: it goes after x
    inbox.put(msg("cmd", "y"), state=False)
    inbox.put(msg("meter/a", "3"), state=True)  # after y: after y
    inbox.put(msg("meter/b", "2"), state=True)  # after y too
    assert await drain(inbox) == [("cmd", "x"), ("cmd", "y"), ("meter/a", "3"), ("meter/b", "2")]
    assert inbox.replaced == 3 and len(inbox) == 0


async def test_events_beyond_the_limit_are_refused_and_counted_while_states_still_go_in() -> None:
    inbox: Inbox[RawIncoming] = Inbox(limit=2)
    assert inbox.put(msg("e", "1"), state=False) and inbox.put(msg("e", "2"), state=False)
    assert not inbox.put(msg("e", "3"), state=False)
    assert inbox.put(msg("s", "1"), state=True)
    assert inbox.refused == 1
    assert [p for _, p in await drain(inbox)] == ["1", "2", "1"]
    assert inbox.put(msg("e", "4"), state=False)  # room again


async def test_what_goes_first_is_handled_before_the_ordinary_lane_and_in_its_own_order() -> None:
    """A load adapter's setpoints go first: a cut is applied before the readings and statuses that came
    before it; within each lane the rules above hold (a newer setpoint takes the waiting one's place)."""
    inbox: Inbox[RawIncoming] = Inbox()
    inbox.put(msg("meter/a", "1"), state=True)
    inbox.put(msg("status", "Charging"), state=False)
    inbox.put(msg("setpoint/a", "16"), state=True, first=True)
    inbox.put(msg("meter/a", "2"), state=True)
    inbox.put(msg("setpoint/b", "16"), state=True, first=True)
    inbox.put(msg("setpoint/a", "0"), state=True, first=True)
    assert await drain(inbox) == [("setpoint/a", "0"), ("setpoint/b", "16"), ("status", "Charging"),
                                  ("meter/a", "2")]


async def test_the_emptied_hook_runs_each_time_the_reader_finds_nothing() -> None:
    inbox: Inbox[RawIncoming] = Inbox()
    emptied: list[int] = []
    inbox.emptied = lambda: emptied.append(len(inbox))
    inbox.put(msg("t", "1"), state=False)
    await inbox.get()
    getter = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0.01)
    assert emptied == [0]
    inbox.put(msg("t", "2"), state=False)
    await getter
    assert emptied == [0]


async def test_a_waiting_get_wakes_on_put() -> None:
    inbox: Inbox[RawIncoming] = Inbox()
    getter = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0.01)
    assert not getter.done()
    inbox.put(msg("t", "p"), state=True)
    assert (await asyncio.wait_for(getter, 1)).topic == "t"


async def test_a_slow_service_handles_the_latest_reading_and_every_command(
        mqtt_url: str, probe: Probe, site_id: str) -> None:
    topics = Topics(f"inbox-{site_id}")
    runtime = Runtime("inbox-test", mqtt_url, topics)
    readings: list[list[str]] = []
    commands: list[bytes] = []
    release = asyncio.Event()

    @runtime.route(topics.measurement(site_id), SiteMeasurement, latest=True)
    async def on_measurement(m: Incoming[SiteMeasurement]) -> None:
        await release.wait()  # a handler far behind the stream
        readings.append(m.payload.notes)

    @runtime.raw_route(topics.site_settings_set_field(site_id, "mode"))
    async def on_command(m: RawIncoming) -> None:
        commands.append(m.payload)

    async with serving(runtime):
        for n in range(200):
            await probe.publish(topics.measurement(site_id), SiteMeasurement(site=site_id, notes=[str(n)]), qos=0)
            await probe.publish(topics.site_settings_set_field(site_id, "mode"), str(n), qos=0)
        for _ in range(200):  # everything has arrived, and waits behind the first reading
            if len(runtime.inbox) >= 200:  # 200 commands and one reading, the newest
                break
            await asyncio.sleep(0.02)
        release.set()
        for _ in range(200):
            if len(commands) == 200 and readings[-1:] == [["199"]]:
                break
            await asyncio.sleep(0.02)
    assert commands == [str(n).encode() for n in range(200)]  # every command, in order
    assert readings[-1] == ["199"] and len(readings) < 10  # the latest reading; the ones it replaced are gone
    assert runtime.inbox.replaced >= 190
