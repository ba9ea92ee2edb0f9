"""The service runtime against a real Mosquitto: routes, error reports, availability, reconnect."""

from __future__ import annotations

import asyncio
import gc
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from pydantic import BaseModel

from shared import mqtt as mqtt_module
from shared import read_ahead, write_through
from shared.broker import Mosquitto
from shared.cork import SocketLike
from shared.models import ErrorReport, LoadSettingsSet, SiteMeasurement
from shared.mqtt import (
    OFFLINE,
    ONLINE,
    RECONNECT_CAP,
    BrokerAddress,
    BrokerUrlError,
    Incoming,
    RawIncoming,
    Runtime,
    reconnect_delay,
    serving,
)
from shared.probe import Probe
from shared.topics import Leaf, Topics

ROOT = Path(__file__).resolve().parents[2]


def test_broker_urls() -> None:
    a = BrokerAddress.parse("mqtts://user:p%40ss@broker.local")
    assert (a.host, a.port, a.username, a.password, a.tls) == ("broker.local", 8883, "user", "p@ss", True)
    assert BrokerAddress.parse("mqtt://127.0.0.1:1884").port == 1884
    for bad in ("http://x", "mqtt://", "mqtt://h:99999"):
        with pytest.raises(BrokerUrlError):
            BrokerAddress.parse(bad)


async def test_valid_payload_reaches_handler_and_bad_ones_are_reported(mqtt_url: str, probe: Probe,
                                                                       site_id: str) -> None:
    topics = Topics()
    runtime = Runtime("test-svc", mqtt_url, topics)
    got: list[LoadSettingsSet] = []

    @runtime.route(topics.load_settings_set("+", "+"), LoadSettingsSet)
    async def on_set(msg: Incoming[LoadSettingsSet]) -> None:
        assert msg.ref is not None and msg.ref.site == site_id
        got.append(msg.payload)

    await probe.subscribe(topics.errors(site_id))
    async with serving(runtime):
        target = topics.load_settings_set(site_id, "ev")
        bad_payloads = ["{not json", '{"priority": "2"}', '{"max_current": NaN}', '{"colour": "red"}']
        for bad in bad_payloads:
            await probe.publish(target, bad)
        await probe.publish(target, '{"priority": 3}')
        for _ in range(100):
            if got:
                break
            await asyncio.sleep(0.02)
        assert [s.priority for s in got] == [3], "the valid command after the bad ones is applied, once"
        for i in range(len(bad_payloads)):
            await probe.expect(topics.errors(site_id), where=lambda m, i=i: len(probe.on(topics.errors(site_id))) > i)
        reports = [m.model(ErrorReport) for m in probe.on(topics.errors(site_id))]
        assert len(reports) == len(bad_payloads)
        assert all(r.service == "test-svc" and r.topic == target and r.error == "validation" for r in reports)
        assert "priority" in reports[1].message and "colour" in reports[3].message
        assert runtime.stats.rejected == len(bad_payloads)


async def test_handler_exception_is_reported_and_service_goes_on(mqtt_url: str, probe: Probe, site_id: str) -> None:
    topics = Topics()
    runtime = Runtime("test-svc", mqtt_url, topics)
    seen: list[str] = []

    @runtime.route(topics.measurement(site_id), SiteMeasurement)
    async def on_measurement(msg: Incoming[SiteMeasurement]) -> None:
        if msg.payload.notes == ["boom"]:
            raise RuntimeError("bug in handler")
        seen.append(msg.payload.site)

    await probe.subscribe(topics.errors(site_id))
    async with serving(runtime):
        await probe.publish(topics.measurement(site_id), SiteMeasurement(site=site_id, notes=["boom"]))
        report = (await probe.expect(topics.errors(site_id))).model(ErrorReport)
        assert report.error == "handler_error" and "bug in handler" in report.message
        await probe.publish(topics.measurement(site_id), SiteMeasurement(site=site_id))
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.02)
        assert seen == [site_id]


async def test_availability_online_then_offline_on_clean_stop(mqtt_url: str, probe: Probe) -> None:
    runtime = Runtime("avail-clean", mqtt_url)
    topic = runtime.availability_topic
    await probe.subscribe(topic)
    task = asyncio.create_task(runtime.run())
    await probe.expect(topic, where=lambda m: m.text == ONLINE)
    mark = probe.mark()
    task.cancel()
    await probe.expect(topic, where=lambda m: m.text == OFFLINE, after=mark)


async def test_sigkill_turns_availability_offline_through_last_will(mqtt_url: str, probe: Probe,
                                                                    site_id: str) -> None:
    topics = Topics(f"root-{site_id}")  # a root of its own: other tests run services on this broker too
    topic = topics.service_availability("allocator")
    await probe.subscribe(topic)
    env = {**os.environ, "AMPMQ_MQTT_URL": mqtt_url, "AMPMQ_ROOT": topics.root}
    proc = subprocess.Popen([sys.executable, "-m", "services.allocator"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        mark = probe.mark()
        await probe.expect(topic, where=lambda m: m.text == ONLINE, after=mark, timeout=20)
        mark = probe.mark()
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
        # Mosquitto sends the will when it notices the dead socket (at once for a closed TCP connection).
        await probe.expect(topic, where=lambda m: m.text == OFFLINE, after=mark, timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()


async def test_reconnects_and_restores_subscriptions_after_broker_restart(own_mosquitto: type[Mosquitto]) -> None:
    broker = own_mosquitto().start()
    topics = Topics()
    runtime = Runtime("reconnect", broker.url, topics, backoff_initial=0.05, backoff_max=0.2)
    seen: list[str] = []

    @runtime.route(topics.measurement_filter(), SiteMeasurement)
    async def on_measurement(msg: Incoming[SiteMeasurement]) -> None:
        seen.append(msg.payload.site)

    async with serving(runtime):
        broker.restart()
        await runtime.wait_connected(10)
        for _ in range(200):
            if runtime.stats.connects >= 2 and runtime.connected:
                break
            await asyncio.sleep(0.02)
        assert runtime.stats.connects >= 2
        async with Probe(broker.url) as p:
            await p.subscribe(runtime.availability_topic)
            await p.expect(runtime.availability_topic, where=lambda m: m.text == ONLINE)
            await p.publish(topics.measurement("after-restart"), SiteMeasurement(site="after-restart"))
            for _ in range(200):
                if seen:
                    break
                await asyncio.sleep(0.02)
    assert seen == ["after-restart"]


async def test_broker_with_users_refuses_wrong_password(own_mosquitto: type[Mosquitto]) -> None:
    broker = own_mosquitto(users={"allocator": "s3cret"}).start()
    ok = Runtime("allocator", broker.url_for("allocator"))
    async with serving(ok):
        assert ok.connected
    bad = Runtime("allocator", f"mqtt://allocator:wrong@{broker.host}:{broker.port}", backoff_initial=0.05)
    task = asyncio.create_task(bad.run())
    await asyncio.sleep(0.5)
    assert not bad.connected
    task.cancel()


async def test_a_publish_never_waits_for_the_brokers_acknowledgement(own_mosquitto: type[Mosquitto]) -> None:
    """A stalled broker (here: stopped with SIGSTOP) holds no handler: publish hands the message to the
    connection and returns; the message arrives once the broker goes on."""
    broker = own_mosquitto().start()
    topics = Topics()
    runtime = Runtime("no-wait", broker.url, topics)
    async with serving(runtime), Probe(broker.url) as watch:
        await watch.subscribe(topics.measurement("stalled"))
        assert broker._proc is not None
        broker._proc.send_signal(signal.SIGSTOP)
        try:
            sent = await asyncio.wait_for(
                runtime.publish(topics.measurement("stalled"), SiteMeasurement(site="stalled"), qos=1), 1.0)
        finally:
            broker._proc.send_signal(signal.SIGCONT)
        assert sent
        got = await watch.expect(topics.measurement("stalled"), timeout=5)
        assert got.model(SiteMeasurement).site == "stalled"


def _writer_registered(runtime: Runtime) -> bool:
    assert runtime._client is not None
    socket = runtime._client._client.socket()
    assert socket is not None
    key = asyncio.get_running_loop()._selector.get_key(socket.fileno())  # type: ignore[attr-defined]
    return bool(key.events & selectors.EVENT_WRITE)


async def test_a_publication_is_on_the_wire_before_the_publisher_goes_on(own_mosquitto: type[Mosquitto]) -> None:
    """``publish`` writes the message to the socket: it is at the broker even while the caller keeps the event
    loop busy (here: blocked outright). A burst that overfills the socket's buffer still arrives whole (the
    loop's writer sends the rest), and no writer stays registered on an emptied buffer (the loop would spin)."""
    broker = own_mosquitto().start()
    topics = Topics()
    topic, burst_topic = topics.measurement("written"), topics.measurement("burst")
    arrived, subscribed = threading.Event(), threading.Event()
    burst: list[bytes] = []
    watcher = paho.Client(paho.CallbackAPIVersion.VERSION2)  # its own thread: it hears while our loop is blocked

    def on_message(_client: object, _userdata: object, message: paho.MQTTMessage) -> None:
        if message.topic == topic:
            arrived.set()
        else:
            burst.append(message.payload)

    watcher.on_subscribe = lambda *_: subscribed.set()
    watcher.on_message = on_message
    watcher.connect(broker.host, broker.port)
    watcher.subscribe([(topic, 0), (burst_topic, 1)])
    watcher.loop_start()
    runtime = Runtime("writer", broker.url, topics)
    try:
        assert subscribed.wait(10)
        async with serving(runtime):
            await runtime.publish(topic, SiteMeasurement(site="written"))
            assert arrived.wait(5), "published, yet not written before the loop went on to other work"
            await asyncio.sleep(0.05)
            assert not _writer_registered(runtime), "the writer stayed registered: the loop would spin"
            big = b"x" * 60_000
            for n in range(200):  # 12 MB: more than a loopback socket's buffer takes at once
                await runtime.publish(burst_topic, b"%d:" % n + big)
            deadline = asyncio.get_running_loop().time() + 20
            while len(burst) < 200 and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)
            assert [int(p.split(b":")[0]) for p in burst] == list(range(200))
            await asyncio.sleep(0.05)
            assert not _writer_registered(runtime), "the writer stayed registered after the burst"
    finally:
        watcher.loop_stop()
        watcher.disconnect()


async def test_what_waits_in_the_socket_is_read_at_once_and_in_order(mqtt_url: str, site_id: str) -> None:
    """A burst that came while the service was busy (here: its loop blocked) is read with a few large reads,
    not a packet per turn of the loop, and handled whole and in order — a message larger than one read
    included (read in pieces), and the connection still answers afterwards."""
    topics = Topics()
    runtime = Runtime("reader", mqtt_url, topics)
    topic = topics.measurement(site_id)
    got: list[bytes] = []

    @runtime.raw_route(topic)
    async def on_message(msg: RawIncoming) -> None:
        got.append(msg.payload)

    big = b"y" * (read_ahead.CHUNK * 2 + 17)
    async with serving(runtime), Probe(mqtt_url) as sender:
        assert runtime.reader is not None
        sender.send(topic, b"warm-up")
        while not got:
            await asyncio.sleep(0.01)
        reads_before = runtime.reader.reads
        payloads = [b"%d" % n for n in range(1000)]
        payloads[500] = big
        for payload in payloads:
            sender.send(topic, payload)
        await asyncio.sleep(0)  # the sender writes as it sends; our loop now stays blocked
        time.sleep(0.5)  # everything waits in our socket
        deadline = asyncio.get_running_loop().time() + 10
        while len(got) < 1001 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        assert got[1:] == payloads
        assert runtime.reader.reads - reads_before < 50, "read a packet at a time, not what the socket held"
        sender.send(topic, b"after")
        while got[-1] != b"after":
            await asyncio.sleep(0.01)


async def test_publications_together_reach_the_broker_in_one_push(
        mqtt_url: str, probe: Probe, site_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A decision's setpoints go in one push (TCP_CORK): each is written as it is published, but nothing
    reaches the broker until the block ends — held here across a wait on purpose, which the allocator never
    does — and then all of them arrive, in order. Publications after the block go at once again. The socket
    is corked at the block's first publication: one that publishes nothing (a decision at rest) sets no
    socket option, and a block inside another does not push when it ends."""
    options: list[int] = []
    real = write_through.set_option

    def counted(sock: SocketLike, option: int, value: int) -> bool:
        options.append(value)
        return real(sock, option, value)

    monkeypatch.setattr(write_through, "set_option", counted)
    topics = Topics()
    runtime = Runtime("together", mqtt_url, topics)
    topic = topics.setpoint(site_id, "car")
    await probe.subscribe(topic)
    async with serving(runtime):
        await runtime.wait_connected(10)
        with runtime.together():
            pass
        assert options == [], "corked for nothing"
        mark = probe.mark()
        with runtime.together():
            assert await runtime.publish(topic, "0", qos=0)
            with runtime.together():
                assert await runtime.publish(topic, "1", qos=0)
            assert await runtime.publish(topic, "2", qos=0)
            await asyncio.sleep(0.1)
            assert probe.on(topic, after=mark) == [], "sent before the block ended"
        await probe.expect(topic, after=mark, where=lambda m: m.text == "2")
        assert [m.text for m in probe.on(topic, after=mark)] == ["0", "1", "2"]
        assert options == [1, 0], "one cork for the block, taken out at its end"
        mark = probe.mark()
        assert await runtime.publish(topic, "alone", qos=0)
        await probe.expect(topic, after=mark, where=lambda m: m.text == "alone")


class _Numbered(BaseModel):
    n: int


async def test_a_services_own_output_read_back_is_dropped_unparsed_and_anyone_elses_is_handled(
        mqtt_url: str, probe: Probe, site_id: str) -> None:
    """A route with ``own`` (the allocator reading its setpoints back): the broker's echo of what this runtime
    last published on a topic is dropped before it is parsed; what another client publishes there, and what
    the runtime published before a restart, reaches the handler."""
    topics = Topics()
    topic = topics.setpoint(site_id, "car")

    def runtime_taking(got: list[int]) -> Runtime:
        runtime = Runtime("own-output", mqtt_url, topics)

        @runtime.route(topics.load_filter(Leaf.SETPOINT), _Numbered, qos=0, latest=True, own=True)
        async def on_own(msg: Incoming[_Numbered]) -> None:
            got.append(msg.payload.n)

        return runtime

    await probe.subscribe(topic)
    got: list[int] = []
    runtime = runtime_taking(got)
    async with serving(runtime):
        await runtime.wait_connected(10)
        mark = probe.mark()
        assert await runtime.publish(topic, '{"n": 1}', qos=0, retain=True)
        await probe.expect(topic, after=mark, where=lambda m: m.text == '{"n": 1}')
        for _ in range(50):  # the echo reaches the runtime no later than the probe (same broker): give it time
            if runtime.own_output.echoes:
                break
            await asyncio.sleep(0.01)
        assert runtime.own_output.echoes == 1 and got == []
        await probe.publish(topic, '{"n": 2}', retain=True)  # another client: handled
        for _ in range(200):
            if got:
                break
            await asyncio.sleep(0.01)
        assert got == [2]
        assert await runtime.publish(topic, '{"n": 1}', qos=0, retain=True)  # ours again: dropped again
        mark = probe.mark()
        await probe.publish(topic, '{"n": 3}')  # (not retained) behind it, in order: then the echo was dropped
        for _ in range(200):
            if len(got) > 1:
                break
            await asyncio.sleep(0.01)
        assert got == [2, 3] and runtime.own_output.echoes == 2
        await probe.publish(topic, '{"n": 1}', retain=True)  # the same bytes, retained by the broker again
    # after a restart the retained copy is not this runtime's echo: taken, as from another instance
    again: list[int] = []
    try:
        async with serving(runtime_taking(again)):
            for _ in range(200):
                if again:
                    break
                await asyncio.sleep(0.01)
            assert again == [1]
    finally:
        await probe.publish(topic, None, retain=True)  # no retained stranger left for other tests' services


class _Cut(BaseModel):
    load: str


async def test_urgent_messages_waiting_together_are_all_handled_before_what_they_woke(
        mqtt_url: str, site_id: str) -> None:
    """A site's cut is two setpoints, read together: each handler hands its command to a task and asks to
    hurry. Both are handled before either task runs (the second load's cut does not wait while the first
    load's command is sent), and both tasks run before the ordinary message that came with them."""
    topics = Topics()
    runtime = Runtime("hurry", mqtt_url, topics)
    order: list[str] = []

    async def apply(load: str) -> None:
        order.append(f"applied {load}")

    for load in ("a", "b"):
        @runtime.route(topics.setpoint(site_id, load), _Cut, first=True)
        async def on_cut(msg: Incoming[_Cut]) -> None:
            assert msg.payload is not None
            order.append(f"handled {msg.payload.load}")
            runtime.spawn(apply(msg.payload.load))
            runtime.hurry()

    @runtime.raw_route(topics.measurement(site_id))
    async def on_reading(msg: RawIncoming) -> None:
        order.append(msg.payload.decode())

    async with serving(runtime), Probe(mqtt_url) as sender:
        await runtime.wait_connected(10)
        sender.send(topics.measurement(site_id), b"warm-up")
        while not order:
            await asyncio.sleep(0.01)
        order.clear()
        sender.send(topics.measurement(site_id), b"reading")
        for load in ("a", "b"):
            sender.send(topics.setpoint(site_id, load), _Cut(load=load).model_dump_json())
        await asyncio.sleep(0)  # the sender writes as it sends; our loop now stays blocked
        time.sleep(0.3)  # all three wait in our socket, and are read at once
        deadline = asyncio.get_running_loop().time() + 10
        while len(order) < 5 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
    assert order == ["handled a", "handled b", "applied a", "applied b", "reading"]


async def test_a_cuts_next_setpoint_that_comes_in_while_one_is_handled_joins_the_same_turn(
        own_mosquitto: type[Mosquitto], monkeypatch: pytest.MonkeyPatch) -> None:
    """The broker passes a decision's setpoints on one at a time: the second may reach the socket only while the
    first is being handled. Before the inbox lets the woken task run, it looks at the socket once more: the
    second is handled too, and both loads' tasks then run in one turn (their commands leave in one push).
    (The first handler here takes 0.1 s so that the second surely arrives meanwhile: far longer than the slice
    after which the inbox lets other tasks run, which is widened for the test.)"""
    monkeypatch.setattr(mqtt_module, "INBOX_SLICE", 1.0)
    broker = own_mosquitto().start()
    topics = Topics()
    runtime = Runtime("reread", broker.url, topics)
    order: list[str] = []
    sender = paho.Client(paho.CallbackAPIVersion.VERSION2)  # its own thread: it sends while our loop is busy
    sender.connect(broker.host, broker.port)
    sender.loop_start()

    async def apply(load: str) -> None:
        order.append(f"applied {load}")

    for load in ("a", "b"):
        @runtime.route(topics.setpoint("site", load), _Cut, first=True)
        async def on_cut(msg: Incoming[_Cut]) -> None:
            assert msg.payload is not None
            order.append(f"handled {msg.payload.load}")
            if msg.payload.load == "a":
                sender.publish(topics.setpoint("site", "b"), _Cut(load="b").model_dump_json()).wait_for_publish(5)
                time.sleep(0.1)  # the second setpoint reaches our socket while the first is handled
            runtime.spawn(apply(msg.payload.load))
            runtime.hurry()

    try:
        async with serving(runtime):
            await runtime.wait_connected(10)
            sender.publish(topics.setpoint("site", "a"), _Cut(load="a").model_dump_json())
            deadline = asyncio.get_running_loop().time() + 10
            while len(order) < 4 and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.01)
        assert order == ["handled a", "handled b", "applied a", "applied b"]
    finally:
        sender.loop_stop()
        sender.disconnect()


async def test_what_an_urgent_message_woke_publishes_in_its_turn_goes_in_one_push(
        own_mosquitto: type[Mosquitto]) -> None:
    """A site's cut: each setpoint's handler hands the command to a task and asks to hurry. What those tasks
    publish in the turn they run reaches the kernel but not the broker until the turn ends (here the first task
    then blocks the loop for 0.1 s, and a watcher on its own thread hears nothing meanwhile), so one push wakes
    the broker for both commands; both arrive, in order. Afterwards a publication goes at once again."""
    broker = own_mosquitto().start()
    topics = Topics()
    runtime = Runtime("turn", broker.url, topics)
    command = topics.charger_command("site", "+", "SetChargingProfile")
    heard: list[str] = []
    subscribed = threading.Event()
    watcher = paho.Client(paho.CallbackAPIVersion.VERSION2)  # its own thread: it hears while our loop is blocked
    watcher.on_subscribe = lambda *_: subscribed.set()
    watcher.on_message = lambda _c, _u, message: heard.append(message.payload.decode())
    watcher.connect(broker.host, broker.port)
    watcher.subscribe(command, 0)
    watcher.loop_start()
    heard_while_blocked: list[str] = []

    async def send(load: str) -> None:
        await runtime.publish(topics.charger_command("site", load, "SetChargingProfile"), f"cut {load}", qos=0)
        if load == "a":
            # the other load's task has not run yet: the first command must not have gone alone (the kernel
            # holds corked bytes for 200 ms at most)
            time.sleep(0.1)
            heard_while_blocked.extend(heard)

    for load in ("a", "b"):
        @runtime.route(topics.setpoint("site", load), _Cut, first=True)
        async def on_cut(msg: Incoming[_Cut]) -> None:
            assert msg.payload is not None
            runtime.spawn(send(msg.payload.load))
            runtime.hurry()

    try:
        assert subscribed.wait(10)
        async with serving(runtime), Probe(broker.url) as sender:
            await runtime.wait_connected(10)
            for load in ("a", "b"):
                sender.send(topics.setpoint("site", load), _Cut(load=load).model_dump_json())
            await asyncio.sleep(0)
            time.sleep(0.3)  # both setpoints wait in our socket, and are read at once
            deadline = asyncio.get_running_loop().time() + 10
            while len(heard) < 2 and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.01)
            assert heard_while_blocked == [], "the first command went before the turn ended"
            assert heard == ["cut a", "cut b"]
            await runtime.publish(topics.charger_command("site", "c", "SetChargingProfile"), "alone", qos=0)
            time.sleep(0.3)  # blocked: only a publication that went at once can be heard meanwhile
            assert heard[-1] == "alone"
    finally:
        watcher.loop_stop()
        watcher.disconnect()


async def test_receiving_leaves_no_cyclic_garbage_per_message(mqtt_url: str, probe: Probe, site_id: str) -> None:
    """Every message a service receives is freed by its reference count: nothing per message waits for the
    cyclic collector (paho's own per-filter matcher left six objects of it for each)."""
    topics = Topics()
    runtime = Runtime("no-garbage", mqtt_url, topics)
    got: list[str] = []

    @runtime.route(topics.measurement(site_id), SiteMeasurement)
    async def on_measurement(msg: Incoming[SiteMeasurement]) -> None:
        got.append(msg.payload.site)

    messages = 300
    rounds: list[int] = []
    async with serving(runtime):
        # Three rounds, the least counted: whatever else this process runs (a client of an earlier test still
        # reconnecting) may add garbage to one round, while a per-message leak shows in every one.
        for _ in range(3):
            got.clear()
            gc.collect()
            gc.disable()
            try:
                for _ in range(messages):
                    await probe.publish(topics.measurement(site_id), SiteMeasurement(site=site_id), qos=0)
                for _ in range(250):
                    if len(got) == messages:
                        break
                    await asyncio.sleep(0.02)
                assert len(got) == messages
                rounds.append(gc.collect())
            finally:
                gc.enable()
    assert min(rounds) < messages, f"{rounds} objects of cyclic garbage after {messages} messages (per round)"


def test_reconnect_schedule_doubles_to_a_small_cap_with_jitter() -> None:
    lowest = [reconnect_delay(n, spread=0.0) for n in range(8)]
    highest = [reconnect_delay(n, spread=1.0) for n in range(8)]
    assert highest == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0]  # doubling, then the cap however long it lasts
    assert lowest == [h / 2 for h in highest]  # jitter: anywhere in the upper half, never above the cap
    assert max(reconnect_delay(n, spread=s / 10) for n in range(40) for s in range(11)) <= RECONNECT_CAP <= 5.0
    spread = {round(reconnect_delay(6, spread=s / 10), 3) for s in range(11)}
    assert len(spread) == 11, "a fleet that lost the same broker does not knock in step"
    with pytest.raises(ValueError):
        reconnect_delay(-1)


async def test_back_within_the_cap_after_a_long_broker_outage(own_mosquitto: type[Mosquitto]) -> None:
    """The broker is away 8 s: the service (default backoff) is connected again within 5 s of its return
    (with doubling to 30 s it waited until the 15.5 s attempt)."""
    broker = own_mosquitto().start()
    runtime = Runtime("long-outage", broker.url, Topics())
    async with serving(runtime):
        broker.stop()
        for _ in range(200):
            if not runtime.connected:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(8.0)
        broker.start()
        back = asyncio.get_running_loop().time()
        await runtime.wait_connected(15)
        assert asyncio.get_running_loop().time() - back <= 5.0


async def test_the_aiomqtt_and_paho_internals_the_runtime_uses_still_hold(mqtt_url: str, probe: Probe,
                                                                         site_id: str) -> None:
    """The boundary (shared/mqtt.py): the paho client inside aiomqtt's, paho's filtered-callback table we
    bypass, and aiomqtt handing each message to the queue we give it. A release that moves any of them
    fails here instead of silently swallowing every message."""
    from shared.mqtt import _NO_FILTERED_CALLBACKS, paho_of

    topics = Topics()
    runtime = Runtime("test-boundary", mqtt_url, topics)
    got: list[bytes] = []

    @runtime.raw_route(f"boundary/{site_id}/#")
    async def on_raw(msg: object) -> None:
        got.append(msg.payload)  # type: ignore[attr-defined]

    async with serving(runtime):
        client = runtime._client
        assert client is not None
        paho_client = paho_of(client)
        assert isinstance(paho_client, paho.Client)
        assert paho_client._on_message_filtered is _NO_FILTERED_CALLBACKS  # our bypass took
        received = runtime.stats.received
        for i in range(20):
            await probe.publish(f"boundary/{site_id}/{i}", str(i))
        for _ in range(200):
            if len(got) == 20:
                break
            await asyncio.sleep(0.02)
        assert got == [str(i).encode() for i in range(20)]  # through aiomqtt's queue hook, in order
        assert runtime.stats.received - received >= 20  # (and its own availability echoes)
        assert await runtime.publish(f"boundary/{site_id}/out", "x")  # paho's publish, not waiting for a PUBACK


async def test_a_client_without_the_paho_inside_is_refused_with_a_sentence() -> None:
    import aiomqtt

    from shared.mqtt import MqttBoundaryError, paho_of

    client = aiomqtt.Client("127.0.0.1", 1)
    client._client = object()  # type: ignore[assignment]
    with pytest.raises(MqttBoundaryError, match=r"aiomqtt 2\.5"):
        paho_of(client)
