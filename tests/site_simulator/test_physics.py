"""The site's physics: cars, battery, solar, house, boiler, and the site adding them up per phase."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from services.site_simulator.battery import Battery
from services.site_simulator.boiler import Boiler
from services.site_simulator.ev import Ev
from services.site_simulator.household import Household
from services.site_simulator.scenario import (
    Appliance,
    BatterySpec,
    BoilerSpec,
    EvSpec,
    HouseholdSpec,
    Scenario,
    SolarSpec,
)
from services.site_simulator.site import Site
from services.site_simulator.solar import Solar, clear_sky

NOON = datetime(2026, 6, 21, 13, 30, tzinfo=UTC)


def drive(ev: Ev, offered: float, seconds: float, start: float = 0.0, dt: float = 0.5) -> float:
    t = start
    while t < start + seconds:
        t += dt
        ev.step(t, dt, offered)
    return t


def test_ev_follows_a_new_limit_only_after_its_lag() -> None:
    ev = Ev(EvSpec(lag=(2.0, 5.0)), seed=1)
    t = drive(ev, 16.0, 10.0)
    assert ev.current == 16.0
    ev.step(t + 0.5, 0.5, 8.0)
    assert ev.current == 16.0  # not yet
    drive(ev, 8.0, 6.0, start=t + 0.5)
    assert ev.current == 8.0


def test_ev_does_not_charge_below_six_amps() -> None:
    ev = Ev(EvSpec(lag=(0.0, 0.0)), seed=1)
    drive(ev, 5.9, 5.0)
    assert ev.current == 0.0
    drive(ev, 6.0, 5.0, start=5.0)
    assert ev.current == 6.0


def test_ev_tapers_near_full_and_stops_at_its_target() -> None:
    ev = Ev(EvSpec(capacity=20_000.0, soc=84.0, target_soc=95.0, taper_from=85.0, phases=1, lag=(0.0, 0.0)), seed=1)
    drive(ev, 16.0, 10.0)
    assert ev.current == 16.0
    drive(ev, 16.0, 1800.0, start=10.0)
    assert 0 < ev.current < 16.0
    drive(ev, 16.0, 4 * 3600.0, start=1810.0)
    assert ev.full and ev.current == 0.0
    assert ev.soc == pytest.approx(95.0, abs=0.5)


def test_ev_energy_counts_phases() -> None:
    one, three = (Ev(EvSpec(phases=p, lag=(0.0, 0.0)), seed=1) for p in (1, 3))
    drive(one, 10.0, 3600.0, dt=1.0)
    drive(three, 10.0, 3600.0, dt=1.0)
    assert three.energy_wh == pytest.approx(3 * one.energy_wh, rel=0.01)
    assert one.energy_wh == pytest.approx(2300.0, rel=0.01)


def test_battery_charges_from_export_and_discharges_into_import_within_limits() -> None:
    battery = Battery(BatterySpec(capacity=10_000.0, soc=50.0, max_charge_power=3000.0, max_discharge_power=2000.0))
    for _ in range(30):
        power = battery.step(-5000.0, 1.0)
    assert power == pytest.approx(-3000.0, rel=0.01)
    for _ in range(30):
        power = battery.step(1500.0, 1.0)
    assert power == pytest.approx(1500.0, rel=0.01)
    for _ in range(30):
        power = battery.step(8000.0, 1.0)
    assert power == pytest.approx(2000.0, rel=0.01)


def test_battery_stops_at_its_soc_window() -> None:
    empty = Battery(BatterySpec(capacity=1000.0, soc=5.0, min_soc=5.0))
    assert empty.target(2000.0) == 0.0
    full = Battery(BatterySpec(capacity=1000.0, soc=100.0))
    assert full.target(-2000.0) == 0.0


def test_solar_is_dark_at_night_and_peaks_near_noon() -> None:
    spec = SolarSpec(peak_power=9000.0)
    assert clear_sky(spec, NOON.replace(hour=2)) == 0.0
    assert clear_sky(spec, NOON) == pytest.approx(9000.0, rel=0.01)
    assert clear_sky(spec, NOON + timedelta(hours=3)) < clear_sky(spec, NOON)


def test_clouds_dim_the_sun_and_the_same_seed_gives_the_same_sky() -> None:
    spec = SolarSpec(peak_power=9000.0, clouds=0.5, cloud_transmission=0.2)
    start = NOON - timedelta(hours=2)
    a, b = Solar(spec, start, 14400.0, seed=3), Solar(spec, start, 14400.0, seed=3)
    samples = [start + timedelta(seconds=s) for s in range(0, 14400, 60)]
    assert [a.power(t) for t in samples] == [b.power(t) for t in samples]
    dimmed = [t for t in samples if a.power(t) < 0.8 * clear_sky(spec, t)]
    assert dimmed, "half the day under cloud must dim some samples"


def test_household_runs_its_appliances_on_their_phase() -> None:
    spec = HouseholdSpec(base_power=[100.0, 100.0, 100.0], noise=0.0, appliances=[
        Appliance(name="kettle", phase="B", power=2000.0, duration=180.0, starts=[time(7, 0)], jitter=0.0)])
    house = Household(spec, ["A", "B", "C"], NOON.replace(hour=0), seed=1)
    at = NOON.replace(hour=7, minute=1)
    power = house.power(at)
    assert power["B"] - power["A"] == pytest.approx(2000.0)
    assert house.running(at) == ["kettle"]
    later = house.power(at + timedelta(minutes=5))
    assert later["B"] == pytest.approx(later["A"], rel=0.01)


def test_boiler_heats_on_its_relay_and_its_thermostat_stops_it_at_the_maximum() -> None:
    boiler = Boiler(BoilerSpec(volume=50.0, temperature=55.0, max_temperature=62.0, draws=[]), NOON)
    assert boiler.step(NOON, 1.0) == 0.0
    boiler.relay = True
    heated = [boiler.step(NOON, 10.0) for _ in range(200)]
    assert heated[0] == 2000.0
    assert boiler.temperature <= 62.5 and heated[-1] == 0.0


def scenario(**overrides: object) -> Scenario:
    data: dict[str, object] = {"name": "t", "start": NOON.isoformat(), "household": {"base_power": [0, 0, 0],
                                                                                 "noise": 0.0}}
    data.update(overrides)
    return Scenario.model_validate(data)


def test_site_sums_a_one_phase_car_onto_its_wired_phase_and_solar_evenly() -> None:
    sc = scenario(solar={"peak_power": 6900.0}, chargers=[{
        "id": "cp", "max_current": 16, "legs": {"L1": "C", "L2": "A", "L3": "B"},
        "ev": {"phases": 1, "arrives": "00:00", "lag": [0.0, 0.0]}}])
    site = Site(sc)
    for _ in range(10):
        state = site.step(1.0)
    solar_amps = state.solar / 3 / 230.0
    assert state.grid_current["C"] == pytest.approx(16.0 - solar_amps, abs=0.2)
    assert state.grid_current["A"] == pytest.approx(-solar_amps, abs=0.2)
    assert state.loads["cp"] == pytest.approx(16 * 230.0, rel=0.01)


def test_site_fuse_counts_an_overload_that_nobody_controls() -> None:
    sc = scenario(grid={"fuse": 10.0}, chargers=[{"id": "cp", "max_current": 32,
                                                   "ev": {"max_current": 32, "arrives": "00:00", "lag": [0, 0]}}])
    site = Site(sc)
    for _ in range(3600):
        site.step(1.0)
    assert site.fuse.trips >= 1
    assert site.fuse.overload_seconds > 3000


def test_flicker_check_flags_short_surplus_pauses_and_runs_but_not_safety_cuts() -> None:
    from services.site_simulator.recorder import SetpointEvent, flicker_violations

    def ev(t: float, running: bool, reason: str, mode: str = "solar_only") -> SetpointEvent:
        return SetpointEvent(t, "cp", running, 6.0 if running else 0.0, reason, mode)

    ok = [ev(0, False, "waiting_for_surplus"), ev(10, True, "ok"), ev(200, False, "waiting_for_surplus"),
          ev(400, True, "ok"), ev(420, False, "fuse_limit"), ev(430, True, "ok")]
    assert flicker_violations(ok, "cp", 60.0, 120.0) == []
    short_run = [ev(0, True, "ok"), ev(20, False, "waiting_for_surplus")]
    assert len(flicker_violations(short_run, "cp", 60.0, 120.0)) == 1
    short_pause = [ev(0, True, "ok"), ev(100, False, "no_excess"), ev(130, True, "ok")]
    assert len(flicker_violations(short_pause, "cp", 60.0, 120.0)) == 1


@pytest.mark.parametrize("refuses", [False, True])
def test_a_switching_charger_moves_the_car_to_one_phase_after_a_pause(refuses: bool) -> None:
    """A 1p/3p charger supplying one phase: the car stops for its ``phase_change_pause`` and resumes on L1 only
    (its energy counted on one phase); a car that refuses one phase draws nothing."""
    sc = scenario(solar={"peak_power": 0.0}, chargers=[{
        "id": "cp", "max_current": 16, "phase_switching": True,
        "ev": {"phases": 3, "arrives": "00:00", "lag": [0.0, 0.0], "phase_change_pause": 20.0,
               "refuses_one_phase": refuses}}])
    site = Site(sc)
    plug = site.chargers["cp"]
    plug.offered = 10.0
    for _ in range(5):
        site.step(1.0)
    assert plug.legs == {"L1": 10.0, "L2": 10.0, "L3": 10.0}
    plug.supplied = 1  # the profile in force now says numberPhases 1
    for _ in range(10):
        site.step(1.0)
    assert plug.current == 0.0  # paused by the switch
    energy = plug.energy_wh
    for _ in range(20):
        site.step(1.0)
    if refuses:
        assert plug.current == 0.0 and plug.energy_wh == energy
    else:
        assert plug.legs == {"L1": 10.0, "L2": 0.0, "L3": 0.0}
        assert plug.ev is not None and plug.ev.energy_wh == pytest.approx(plug.energy_wh, rel=1e-6)
