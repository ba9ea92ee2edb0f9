"""Grid-operator limits in the core, as a table: caps, the site import limit, expiry and the fallback on silence.

Same conventions as ``test_scenarios.py`` (25 A fuse, 1 A margin, 230 V, no ramp, EVs 6-16 A on A/B/C). A
4 200 W cap (§14a) is 6.09 A per leg on a 3-phase load and 18.26 A on a 1-phase load.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.allocator.core import allocate
from services.allocator.core.explain import table
from shared.models import LoadStatus, Mode, Reason
from shared.models.allocation import Snapshot
from shared.models.grid_limit import GridLimitInput, GridLimitOrigin, GridLimitSignal, GridLimitValues

from .kit import NOW, Scenario, ev, grid, grid1, plug, site, stepped
from .test_invariants import EXAMPLES, SLOW_OK, check, snapshots

S = Scenario
R = Reason
GOL = Reason.GRID_OPERATOR_LIMIT
CAP_3P = 4200.0 / (230.0 * 3)
CAP_1P = 4200.0 / 230.0
DIMMED = GridLimitValues(controllable_cap_w=4200.0)


def operator(
    values: GridLimitValues | None = None,
    heard: float | None = 0.0,
    until: float | None = None,
    required: bool = False,
    timeout: float = 60.0,
    fallback: GridLimitValues | None = None,
) -> GridLimitInput:
    """The operator's input: ``heard`` seconds before NOW (None: never), ``until`` seconds after NOW."""
    signal = None
    if heard is not None:
        signal = GridLimitSignal(values=values or GridLimitValues(), source="box", heard=NOW - timedelta(seconds=heard),
                                 valid_until=None if until is None else NOW + timedelta(seconds=until))
    return GridLimitInput(signal=signal, required=required, signal_timeout=timeout, fallback=fallback)


def imports(watts: float) -> GridLimitValues:
    return GridLimitValues(import_limit_w=watts)


# fmt: off
SCENARIOS: list[Scenario] = [
    S("no signal: the EV gets its maximum", site(), grid(0, 0, 0), [ev("ev")], {"ev": 16}, {"ev": R.OK},
      grid_limit=operator(heard=None)),
    S("§14a cap 4.2 kW: a 3-phase EV at 6.09 A", site(), grid(0, 0, 0), [ev("ev")], {"ev": CAP_3P}, {"ev": GOL},
      grid_limit=operator(DIMMED)),
    S("§14a cap 4.2 kW: a 1-phase 32 A EV at 18.26 A", site(phases="A"), grid1(0.0), [ev("ev", on="A", hi=32)],
      {"ev": CAP_1P}, {"ev": GOL}, grid_limit=operator(DIMMED)),
    S("the cap binds above every mode: a must-run load is capped too", site(), grid(0, 0, 0),
      [ev("ev", must_run=True, mode=Mode.OFF)], {"ev": CAP_3P}, {"ev": GOL}, grid_limit=operator(DIMMED)),
    S("a cap below the 6 A minimum (3 kW on 3 phases) pauses the EV", site(), grid(0, 0, 0), [ev("ev")],
      {"ev": 0}, {"ev": GOL}, grid_limit=operator(GridLimitValues(controllable_cap_w=3000.0))),
    S("a 5 kW plug is above a 4.2 kW cap: off; a 2 kW plug is not touched", site(), grid(0, 0, 0),
      [plug("big", 5000.0), plug("small", 2000.0, on="B")], {"big": 0, "small": 2000.0 / 230.0},
      {"big": GOL, "small": R.OK}, grid_limit=operator(DIMMED)),
    S("a stepped heat pump under a 2.8 kW cap keeps the steps below it", site(), grid(0, 0, 0),
      [stepped("hp", (6.0, 10.0, 16.0))], {"hp": 10}, {"hp": GOL},
      grid_limit=operator(GridLimitValues(controllable_cap_w=2800.0))),
    S("a per-load cap names one EV; the other charges fully", site(), grid(0, 0, 0), [ev("a"), ev("b")],
      {"a": 4600.0 / 690.0, "b": 16}, {"a": GOL, "b": R.OK},
      grid_limit=operator(GridLimitValues(load_cap_w={"a": 4600.0}))),
    S("per-load and common cap: the lower applies", site(), grid(0, 0, 0), [ev("a")], {"a": CAP_3P}, {"a": GOL},
      grid_limit=operator(GridLimitValues(controllable_cap_w=4200.0, load_cap_w={"a": 9000.0}))),
    S("the fuse leaves 4 A, below the minimum: below_minimum, not the operator", site(), grid(20, 20, 20),
      [ev("ev")], {"ev": 0}, {"ev": R.BELOW_MINIMUM}, grid_limit=operator(DIMMED)),
    S("the fuse leaves 4 A above the 6.09 A cap of two EVs: both at the cap", site(), grid(10, 10, 10),
      [ev("a"), ev("b")], {"a": CAP_3P, "b": CAP_3P}, {"a": GOL, "b": GOL}, grid_limit=operator(DIMMED)),
    S("an idle EV's available figure respects the cap", site(), grid(0, 0, 0),
      [ev("ev", status=LoadStatus.IDLE)], {"ev": 0}, {"ev": R.IDLE}, available={"ev": CAP_3P},
      grid_limit=operator(DIMMED)),
    S("site import 6.9 kW, house 2 A per phase: the EV gets 8 A", site(), grid(2, 2, 2), [ev("ev")], {"ev": 8},
      {"ev": GOL}, grid_limit=operator(imports(6900.0))),
    S("site import 6.9 kW, house 6 A per phase: 4 A left pauses the EV", site(), grid(6, 6, 6), [ev("ev")],
      {"ev": 0}, {"ev": GOL}, grid_limit=operator(imports(6900.0))),
    S("the operator's import limit above max_import_power: import_limit binds", site(max_import_power=6900.0),
      grid(2, 2, 2), [ev("ev")], {"ev": 8}, {"ev": R.IMPORT_LIMIT}, grid_limit=operator(imports(20000.0))),
    S("site import 6.9 kW, empty house: the first EV gets 10 A, the second nothing", site(), grid(0, 0, 0),
      [ev("a", prio=1), ev("b", prio=2)], {"a": 10, "b": 0}, {"a": GOL, "b": GOL},
      grid_limit=operator(imports(6900.0))),
    S("the import limit under stale data: no minimum is known to fit", site(), grid(2, 2, 2, age=60.0),
      [ev("ev")], {"ev": 0}, {"ev": R.STALE_DATA}, grid_limit=operator(imports(6900.0))),
    S("expired (valid_until 1 s ago): back to normal", site(), grid(0, 0, 0), [ev("ev")], {"ev": 16},
      {"ev": R.OK}, grid_limit=operator(DIMMED, until=-1.0)),
    S("valid for another minute: still dimmed", site(), grid(0, 0, 0), [ev("ev")], {"ev": CAP_3P}, {"ev": GOL},
      grid_limit=operator(DIMMED, until=60.0)),
    S("a signal without limits ends the dimming", site(), grid(0, 0, 0), [ev("ev")], {"ev": 16}, {"ev": R.OK},
      grid_limit=operator(GridLimitValues(), required=True, fallback=DIMMED)),
    S("required source silent 120 s (timeout 60 s): the fallback applies", site(), grid(0, 0, 0), [ev("ev")],
      {"ev": CAP_3P}, {"ev": GOL},
      grid_limit=operator(GridLimitValues(), heard=120.0, required=True, fallback=DIMMED)),
    S("required source never heard: the fallback applies", site(), grid(0, 0, 0), [ev("ev")], {"ev": CAP_3P},
      {"ev": GOL}, grid_limit=operator(heard=None, required=True, fallback=DIMMED)),
    S("a source that is not required may go silent: its last signal holds", site(), grid(0, 0, 0), [ev("ev")],
      {"ev": 16}, {"ev": R.OK}, grid_limit=operator(GridLimitValues(), heard=3600.0)),
    S("silence beats an unexpired signal: the fallback applies", site(), grid(0, 0, 0), [ev("ev")],
      {"ev": 0}, {"ev": GOL}, grid_limit=operator(imports(100000.0), heard=120.0, until=3600.0, required=True,
                                                   fallback=GridLimitValues(controllable_cap_w=1000.0))),
]
# fmt: on


@pytest.mark.parametrize("case", SCENARIOS, ids=[s.story for s in SCENARIOS])
def test_grid_limit_scenario(case: Scenario) -> None:
    allocation = allocate(case.snapshot(), case.now)
    got = {d.load: d.current for d in allocation.decisions}
    assert got == {k: pytest.approx(v, abs=1e-3) for k, v in case.expect.items()}
    for name, reason in case.reasons.items():
        decision = allocation.decision(name)
        assert decision.reason is reason, decision.message
    for name, available in case.available.items():
        assert allocation.decision(name).available == pytest.approx(available, abs=1e-3)
    for d in allocation.decisions:
        assert d.message
        assert d.on == (d.current > 0)
    state = allocation.grid_limit
    assert state is not None
    assert sorted(state.binding) == sorted(n for n, r in case.reasons.items() if r is GOL)


def test_the_state_says_what_is_in_force_and_why() -> None:
    fallback = S("", site(), grid(0, 0, 0), [ev("ev")], {}, grid_limit=operator(heard=None, required=True,
                                                                                  fallback=DIMMED))
    allocation = allocate(fallback.snapshot(), NOW)
    state = allocation.grid_limit
    assert state is not None and state.in_force
    assert state.origin is GridLimitOrigin.FALLBACK and state.controllable_cap_w == 4200.0
    assert "never heard" in state.why
    decision = allocation.decision("ev")
    assert "grid operator" in decision.message and "4.2 kW" in decision.message
    assert "GRID OPERATOR LIMIT (fallback" in table(allocation)

    expired = S("", site(), grid(0, 0, 0), [ev("ev")], {}, grid_limit=operator(DIMMED, until=-1.0))
    state = allocate(expired.snapshot(), NOW).grid_limit
    assert state is not None and not state.in_force and state.origin is GridLimitOrigin.NONE
    assert "expired" in state.why


def test_a_paused_load_says_its_minimum_is_above_the_cap() -> None:
    case = S("", site(), grid(0, 0, 0), [ev("ev")], {},
             grid_limit=operator(GridLimitValues(controllable_cap_w=3000.0)))
    message = allocate(case.snapshot(), NOW).decision("ev").message
    assert message.startswith("paused: the grid operator's limit (3.0 kW per load) allows 4.3 A")
    assert "6.0 A minimum" in message


def test_no_grid_limit_input_no_state() -> None:
    case = S("", site(), grid(0, 0, 0), [ev("ev")], {})
    assert allocate(case.snapshot(), NOW).grid_limit is None


def test_ampmq_allocate_shows_the_limit_in_force(tmp_path: Path) -> None:
    case = S("", site(), grid(0, 0, 0), [ev("ev")], {}, grid_limit=operator(DIMMED, until=3600.0))
    path = tmp_path / "snapshot.json"
    path.write_text(case.snapshot().model_dump_json())
    ampmq = str(Path(sys.executable).with_name("ampmq"))
    done = subprocess.run([ampmq, "allocate", "--snapshot", str(path), "--now", NOW.isoformat(), "--explain"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "grid_operator_limit" in done.stdout
    assert "GRID OPERATOR LIMIT (signal, box): each load <= 4200 W until 2026-06-01T13:00:00+00:00" in done.stdout


@st.composite
def limited_snapshots(draw: st.DrawFn) -> Snapshot:
    """A random site (as the safety property draws them) under a random grid-operator limit in force."""
    snapshot = draw(snapshots())
    values = GridLimitValues(
        import_limit_w=draw(st.none() | st.floats(min_value=0.0, max_value=30_000.0)),
        controllable_cap_w=draw(st.none() | st.floats(min_value=0.0, max_value=15_000.0)),
    )
    return snapshot.model_copy(update={"grid_limit": operator(values)})


@settings(max_examples=max(20, EXAMPLES // 3), deadline=None, derandomize=True, suppress_health_check=SLOW_OK)
@given(limited_snapshots())
def test_a_grid_limit_is_never_exceeded_and_the_fuse_still_holds(snapshot: Snapshot) -> None:
    allocation = allocate(snapshot, NOW)
    check(snapshot, allocation)  # the safety invariant of test_invariants, unchanged under the limit
    assert snapshot.grid_limit is not None and snapshot.grid_limit.signal is not None
    values = snapshot.grid_limit.signal.values
    voltage = snapshot.settings.voltage
    by_id = {item.state.load: item for item in snapshot.loads}
    taken = 0.0
    for d in allocation.decisions:
        legs = len(by_id[d.load].state.phases_in_use)
        taken += d.current * legs
        if values.controllable_cap_w is not None:
            assert d.current * legs * voltage <= values.controllable_cap_w + 1e-6, f"{d.load} above its cap"
    if values.import_limit_w is not None:
        house = sum(allocation.house.values())
        room = (values.import_limit_w - snapshot.settings.power_buffer) / voltage
        if allocation.stale:
            assert taken == 0.0, "an import limit and stale data: nothing is known to fit"
        else:
            assert house + taken <= max(room, house) + 1e-6, "the operator's import limit"
