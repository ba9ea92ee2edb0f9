"""Meter values as chargers send them (1.6 and 2.0.1) → one :class:`ConnectorMeter` per connector.

Every sampled value is kept (``samples``), converted to base units: kW → W, kWh → Wh, kvar → var, and a
2.0.1 ``unitOfMeasure.multiplier`` applied. The convenience fields come from the latest timestamp in the
message: ``current_import`` per leg, ``current_offered``, ``power`` (the phase-less total, else the sum of
the legs), ``energy_wh`` (the register), ``voltage`` per leg, ``soc``; ``charger_time`` is that timestamp
(the charger's clock). Non-numeric values (signed data) and values that are not finite are skipped and
named in the returned problems.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from shared.models import ConnectorMeter, Leg, SampledValue

DEFAULT_MEASURAND = "Energy.Active.Import.Register"
#: The unit a measurand has when the charger names none (OCPP 1.6 defaults; 2.0.1 says Wh for all,
#: but chargers follow the measurand's natural unit in practice).
DEFAULT_UNITS = {
    "Current": "A",
    "Voltage": "V",
    "Power.Active": "W",
    "Power.Reactive": "var",
    "Power.Offered": "W",
    "Power.Factor": None,
    "Energy.Active": "Wh",
    "Energy.Reactive": "varh",
    "SoC": "Percent",
    "Temperature": "Celsius",
    "Frequency": "Hz",
    "RPM": "RPM",
}
_SCALED = {"kW": ("W", 1000.0), "kWh": ("Wh", 1000.0), "kvar": ("var", 1000.0), "kvarh": ("varh", 1000.0),
           "kVA": ("VA", 1000.0)}
_LEGS = {"L1": Leg.L1, "L2": Leg.L2, "L3": Leg.L3, "L1-N": Leg.L1, "L2-N": Leg.L2, "L3-N": Leg.L3}
MAX_SAMPLES = 256


def _default_unit(measurand: str) -> str | None:
    for prefix, unit in DEFAULT_UNITS.items():
        if measurand.startswith(prefix):
            return unit
    return None


def _sample(raw: Mapping[str, Any]) -> SampledValue:
    """One sampled value (snake_case keys, as the ocpp library hands them over), in base units."""
    measurand = str(raw.get("measurand") or DEFAULT_MEASURAND)
    value = raw.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{measurand}: value {value!r} is not a number")
    if isinstance(raw.get("format"), str) and raw["format"] == "SignedData":
        raise ValueError(f"{measurand}: signed data is not a reading")
    number = float(value)
    unit_of_measure = raw.get("unit_of_measure")
    if isinstance(unit_of_measure, Mapping):  # 2.0.1
        unit = unit_of_measure.get("unit") or _default_unit(measurand)
        number *= 10.0 ** int(unit_of_measure.get("multiplier") or 0)
    else:
        unit = raw.get("unit") or _default_unit(measurand)
    if unit in _SCALED:
        unit, factor = _SCALED[unit]
        number *= factor
    if not math.isfinite(number):
        raise ValueError(f"{measurand}: value {value!r} is not finite")
    return SampledValue(measurand=measurand[:128], value=number, unit=unit, phase=raw.get("phase"),
                        context=raw.get("context"), location=raw.get("location"))


def _timestamp(entry: Mapping[str, Any]) -> str:
    return str(entry.get("timestamp") or "")


def charger_time(value: Any) -> datetime | None:
    """A timestamp the charger sent (its own clock), as an aware datetime (no zone given: UTC, as OCPP
    prescribes); None when there is none or it is not a date-time."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def connector_meter(site: str, charger: str, connector: int, meter_value: Sequence[Mapping[str, Any]],
                    now: datetime, transaction_id: str | None = None) -> tuple[ConnectorMeter | None, list[str]]:
    """The meter state of one connector from a MeterValues (or transaction) ``meterValue`` list."""
    problems: list[str] = []
    if not meter_value:
        return None, problems
    latest = max(_timestamp(e) for e in meter_value)
    samples: list[SampledValue] = []
    for entry in meter_value:
        if _timestamp(entry) != latest:
            continue
        for raw in entry.get("sampled_value") or []:
            try:
                samples.append(_sample(raw))
            except (ValueError, TypeError) as exc:
                problems.append(str(exc))
    if not samples:
        return None, problems
    fields: dict[str, Any] = {"current_import": {}, "voltage": {}}
    leg_power: dict[Leg, float] = {}
    for s in samples:
        leg = _LEGS.get(s.phase or "")
        m = s.measurand
        if m == "Current.Import" and leg is not None:
            fields["current_import"][leg] = s.value
        elif m == "Current.Offered" and s.phase is None:
            fields["current_offered"] = s.value
        elif m == "Power.Active.Import" and s.unit == "W":
            if s.phase is None:
                fields["power"] = s.value
            elif leg is not None:
                leg_power[leg] = s.value
        elif m == "Energy.Active.Import.Register" and s.unit == "Wh" and s.phase is None:
            fields["energy_wh"] = s.value
        elif m == "Voltage" and leg is not None:
            fields["voltage"][leg] = s.value
        elif m == "SoC":
            if 0.0 <= s.value <= 100.0:
                fields["soc"] = s.value
            else:
                problems.append(f"SoC {s.value} is outside 0-100")
    if "power" not in fields and leg_power:
        fields["power"] = sum(leg_power.values())
    meter = ConnectorMeter(site=site, charger=charger, connector=connector, transaction_id=transaction_id,
                           samples=samples[:MAX_SAMPLES], ts=now, charger_time=charger_time(latest), **fields)
    return meter, problems
