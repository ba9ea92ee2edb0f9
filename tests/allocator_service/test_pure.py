"""The service's pure parts: schedule windows, the /set merge, the config section."""

from __future__ import annotations

from datetime import UTC, datetime, time
from pathlib import Path

import pytest

from services.allocator.config import AllocatorConfig
from services.allocator.schedules import active_modes, is_active, load_in_force, site_in_force
from services.allocator.settings_store import SettingsRejected, merge_load, merge_site
from shared.config import AmpmqConfig, ConfigError, load_config
from shared.models import LoadSettings, LoadSettingsSet, Mode, Schedule, SiteSettings, SiteSettingsSet
from shared.models.settings import Weekday

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # a Tuesday


def window(start: str, end: str, days: list[Weekday] | None = None, tz: str = "UTC", mode: Mode = Mode.OFF,
           load: str | None = None) -> Schedule:
    return Schedule(start=time.fromisoformat(start), end=time.fromisoformat(end), days=days or list(Weekday),
                    tz=tz, mode=mode, load=load)


@pytest.mark.parametrize(
    ("schedule", "at", "active"),
    [
        (window("08:00", "17:00"), "2026-12-01T12:00:00+00:00", True),  # inside a day window
        (window("08:00", "17:00"), "2026-12-01T17:00:00+00:00", False),  # the end is exclusive
        (window("08:00", "17:00"), "2026-12-01T08:00:00+00:00", True),  # the start inclusive
        (window("08:00", "17:00", [Weekday.MON]), "2026-12-01T12:00:00+00:00", False),  # Tuesday: not its day
        (window("22:00", "06:00", [Weekday.MON]), "2026-11-30T23:30:00+00:00", True),  # Monday night
        (window("22:00", "06:00", [Weekday.MON]), "2026-12-01T05:59:00+00:00", True),  # ... runs into Tuesday
        (window("22:00", "06:00", [Weekday.MON]), "2026-12-01T22:30:00+00:00", False),  # Tuesday night: not
        (window("22:00", "06:00", [Weekday.TUE]), "2026-12-01T05:00:00+00:00", False),  # Tuesday's starts at 22:00
        (window("00:00", "00:00", [Weekday.TUE]), "2026-12-01T23:59:00+00:00", True),  # start == end: all day
        # 12:00 UTC is 13:00 in Amsterdam (winter): a 12:30-14:00 local window is open, in UTC it is not
        (window("12:30", "14:00", tz="Europe/Amsterdam"), "2026-12-01T12:00:00+00:00", True),
        (window("12:30", "14:00"), "2026-12-01T12:00:00+00:00", False),
    ],
)
def test_schedule_windows(schedule: Schedule, at: str, active: bool) -> None:
    assert is_active(schedule, datetime.fromisoformat(at)) is active


def test_a_window_in_an_unknown_time_zone_never_opens() -> None:
    assert active_modes([window("00:00", "00:00", tz="Moon/Tycho")], NOW).site is None


def test_the_first_open_window_wins_and_modes_apply_to_site_and_load() -> None:
    schedules = [
        window("11:00", "13:00", mode=Mode.STANDARD),
        window("00:00", "00:00", mode=Mode.SOLAR_ONLY),
        window("11:00", "13:00", mode=Mode.EXCESS, load="boiler"),
        window("14:00", "15:00", mode=Mode.OFF, load="car"),
    ]
    modes = active_modes(schedules, NOW)
    assert modes.site is Mode.STANDARD
    assert modes.loads == {"boiler": Mode.EXCESS}
    site = site_in_force(SiteSettings(site="home", mode=Mode.SOLAR_PRIORITY), modes)
    assert site.mode is Mode.STANDARD
    boiler = load_in_force("home", "boiler", None, modes)
    assert boiler is not None and boiler.mode is Mode.EXCESS
    car = LoadSettings(site="home", load="car", priority=2)
    assert load_in_force("home", "car", car, modes) is car


def test_a_set_merges_nested_fields_and_keeps_the_rest() -> None:
    current = SiteSettings(site="home", fuse_limit=32.0)
    command = SiteSettingsSet.model_validate_json('{"timers": {"min_run": 5.0}, "transaction": "t7"}')
    merged = merge_site(current, command, NOW)
    assert merged.timers.min_run == 5.0
    assert merged.timers.min_pause == current.timers.min_pause
    assert merged.fuse_limit == 32.0
    assert (merged.ts, merged.transaction) == (NOW, "t7")


def test_null_clears_an_optional_setting() -> None:
    current = SiteSettings(site="home", imbalance_limit=10.0)
    merged = merge_site(current, SiteSettingsSet.model_validate_json('{"imbalance_limit": null}'), NOW)
    assert merged.imbalance_limit is None


@pytest.mark.parametrize(
    "payload",
    [
        '{"battery": {"min_soc": 50.0, "target_soc": 20.0}}',
        '{"phases": ["B", "B"]}',
        '{"circuits": [{"id": "garage", "limit": 16.0, "parent": "attic"}]}',
        '{"schedules": [{"start": "22:00", "end": "06:00", "mode": "standard", "tz": "Nowhere/Atlantis"}]}',
        '{"fuse_limit": null}',
    ],
)
def test_a_set_whose_result_is_invalid_is_rejected(payload: str) -> None:
    current = SiteSettings(site="home")
    with pytest.raises(SettingsRejected):
        merge_site(current, SiteSettingsSet.model_validate_json(payload), NOW)


def test_a_target_below_the_minimum_is_rejected_against_the_current_battery() -> None:
    current = SiteSettings.model_validate({"site": "home", "battery": {"min_soc": 20.0, "target_soc": 80.0}})
    with pytest.raises(SettingsRejected, match="target_soc"):
        merge_site(current, SiteSettingsSet.model_validate_json('{"battery": {"target_soc": 15.0}}'), NOW)
    lowered = merge_site(current, SiteSettingsSet.model_validate_json('{"battery": {"target_soc": 25.0}}'), NOW)
    assert lowered.battery is not None and (lowered.battery.min_soc, lowered.battery.target_soc) == (20.0, 25.0)


def test_load_min_above_max_is_rejected() -> None:
    current = LoadSettings(site="home", load="car", max_current=10.0)
    with pytest.raises(SettingsRejected, match="below min_current"):
        merge_load(current, LoadSettingsSet(min_current=12.0), NOW)
    assert merge_load(current, LoadSettingsSet(min_current=8.0), NOW).min_current == 8.0


def test_config_defaults_are_validated_naming_the_field() -> None:
    good = AmpmqConfig(allocator={"sites": {"home": {"fuse_limit": 35, "mode": "solar_only"}},
                                  "loads": {"home/car": {"priority": 1}}})
    section = good.section("allocator", AllocatorConfig)
    assert section.site_defaults("home").fuse_limit == 35.0
    assert section.site_defaults("other").fuse_limit == 25.0
    car = section.load_defaults("home", "car")
    assert car is not None and car.priority == 1
    assert section.load_defaults("home", "van") is None
    for bad, named in [
        ({"sites": {"home": {"fuse_limit": "35"}}}, "fuse_limit"),
        ({"sites": {"home": {"fuse": 35.0}}}, "fuse"),
        ({"sites": {"home": {"battery": {"min_soc": 50.0, "target_soc": 10.0}}}}, "target_soc"),
        ({"sites": {"Home!": {}}}, "Home!"),
        ({"loads": {"home": {"priority": 1}}}, "loads"),
        ({"loads": {"home/car": {"priority": 0}}}, "priority"),
        ({"settle": -1}, "settle"),
        ({"sites": {"home": {"schedules": [{"start": "01:00", "end": "02:00", "mode": "off", "tz": "Moon/Tycho"}]}}},
         "Moon/Tycho"),
        ({"sitez": {}}, "sitez"),
    ]:
        with pytest.raises(ConfigError, match=named):
            AmpmqConfig(allocator=bad).section("allocator", AllocatorConfig)


def test_config_defaults_come_from_the_yaml_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ampmq.yaml"
    path.write_text(
        "allocator:\n"
        "  settle: 0.5\n"
        "  sites:\n"
        "    home:\n"
        "      fuse_limit: 35\n"
        "      schedules: [{days: [mon, tue], start: '22:00', end: '06:00', tz: Europe/Amsterdam, mode: standard}]\n"
        "  loads:\n"
        "    home/garage: {priority: 1, max_current: 16}\n"
    )
    monkeypatch.setenv("AMPMQ_CONFIG", str(path))
    section = load_config().section("allocator", AllocatorConfig)
    home = section.site_defaults("home")
    assert home.fuse_limit == 35.0 and home.schedules[0].start == time(22, 0)
    garage = section.load_defaults("home", "garage")
    assert garage is not None and (garage.priority, garage.max_current) == (1, 16.0)
