"""bench/hops.py lines a trial's hops up across the services' traces: each hop the first note after the hop
before, on the trial's own topics; segments in milliseconds; what else each service did meanwhile."""

from __future__ import annotations

import pytest

from bench.hops import Index, Trial, analyse, break_down, machine_stalls
from shared.topics import Topics

T = Topics()
SITE, CP = "s7", "cp-7-1"
MEASUREMENT, SETPOINT = T.measurement(SITE), T.setpoint(SITE, CP)
COMMAND = T.charger_command(SITE, CP, "SetChargingProfile")
METER = "shellypro3em-s7/status/em:0"


def traces(shift: float = 0.0, gc_in_allocator: bool = False) -> dict[str, list[tuple[float, str, str]]]:
    """One trial's notes (seconds after 100.0), with another site's traffic around it."""
    t = 100.0 + shift
    allocator = [(t + 0.0015, "in", T.measurement("s8")), (t + 0.0016, "handle", T.measurement("s8")),
                 (t + 0.002, "in", MEASUREMENT), (t + 0.003, "handle", MEASUREMENT),
                 (t + 0.004, "out", T.setpoint(SITE, "cp-7-0")), (t + 0.0045, "out", SETPOINT)]
    if gc_in_allocator:
        allocator += [(t + 0.0031, "gc", "1"), (t + 0.0041, "gc_end", "1"), (t + 0.0042, "lag", "12.5")]
    return {
        "meter-bridge": [(t - 0.5, "in", METER), (t - 0.5, "handle", METER), (t - 0.5, "out", MEASUREMENT),
                         (t + 0.0005, "in", METER), (t + 0.0006, "handle", METER), (t + 0.001, "out", MEASUREMENT)],
        "allocator": sorted(allocator),
        "load-adapters": [(t + 0.005, "in", SETPOINT), (t + 0.0052, "handle", SETPOINT), (t + 0.0055, "out", COMMAND)],
        "ocpp-gateway": [(t + 0.006, "in", COMMAND), (t + 0.0061, "handle", COMMAND), (t + 0.0065, "frame", CP)],
    }


def test_each_hop_is_the_first_note_after_the_one_before_on_the_trials_own_topics() -> None:
    trial = Trial(SITE, CP, METER, sent=100.0, arrived=100.007)
    indexes = {service: Index(records) for service, records in traces(gc_in_allocator=True).items()}
    result = break_down(trial, indexes, T)
    assert result.complete
    expected = {"meter-bridge.wire": 0.5, "meter-bridge.queue": 0.1, "meter-bridge.work": 0.4,
                "allocator.wire": 1.0, "allocator.queue": 1.0, "allocator.work": 1.5,
                "load-adapters.wire": 0.5, "load-adapters.queue": 0.2, "load-adapters.work": 0.3,
                "ocpp-gateway.wire": 0.5, "ocpp-gateway.queue": 0.1, "ocpp-gateway.work": 0.4, "charger.wire": 0.5}
    assert result.segments == pytest.approx(expected)
    assert sum(result.segments.values()) == pytest.approx(7.0)  # the segments add up to the latency
    allocator = result.around["allocator"]
    assert allocator["collections"] == ["1"] and allocator["collection_ms"] == pytest.approx(1.0)
    assert allocator["lag_ms"] == [12.5] and allocator["handled"] == 2  # the other site's reading and ours


def test_a_trial_whose_hop_is_missing_is_not_broken_down() -> None:
    notes = traces()
    notes["load-adapters"] = []  # say the adapter's notes were lost
    trial = Trial(SITE, CP, METER, sent=100.0, arrived=100.007)
    assert not break_down(trial, {s: Index(r) for s, r in notes.items()}, T).complete
    assert analyse([trial], notes)["traced_trials"] == 0


def test_the_slowest_trials_excess_names_the_segment_that_made_them_slow() -> None:
    trials, notes = [], {}
    for n in range(60):
        shift = n * 1.0
        slow = n == 59
        trial_notes = traces(shift)
        if slow:  # the adapter heard the setpoint 40 ms late, and everything after it came 40 ms later
            for service in ("load-adapters", "ocpp-gateway"):
                trial_notes[service] = [(t + 0.04, e, k) for t, e, k in trial_notes[service]]
        for service, records in trial_notes.items():
            notes.setdefault(service, []).extend(records)
        trials.append(Trial(SITE, CP, METER, sent=100.0 + shift, arrived=100.0 + shift + (0.047 if slow else 0.007)))
    result = analyse(trials, notes, slowest=1)
    assert result["traced_trials"] == 60
    assert next(iter(result["slowest_excess_ms"])) == "load-adapters.wire"
    assert result["slowest"][0]["latency_ms"] == pytest.approx(47.0)


def test_the_machines_stalls_are_counted_and_matched_to_the_slow_trials() -> None:
    """bench/stall_watch.py notes each late wake-up when it ends; a stall of 10 ms or more that overlaps a slow
    trial marks it as one the machine stalled. Short lags, and stalls outside the trials, are not counted."""
    slow = Trial("s1", "cp-1-0", "m", sent=10.0, arrived=10.080)  # 80 ms
    slow_elsewhere = Trial("s2", "cp-2-0", "m", sent=20.0, arrived=20.060)
    fast = Trial("s3", "cp-3-0", "m", sent=30.0, arrived=30.005)
    notes = [(1.0, "priority", "realtime"),
             (5.0, "lag", "40.0"),  # before the trials: not counted
             (10.050, "lag", "30.0"),  # 10.020-10.050: inside the slow trial
             (20.070, "lag", "5.0"),  # too short to be a stall
             (30.500, "lag", "12.0")]  # after the fast trial, within the trials' span
    result = machine_stalls([slow, slow_elsewhere, fast], notes)
    assert result == {"priority": "realtime", "stalls_over_10ms": 2, "longest_stall_ms": 30.0, "slow_trials": 2,
                      "slow_trials_in_a_stall": 1}
    assert machine_stalls([], notes) == {"priority": "realtime"}
