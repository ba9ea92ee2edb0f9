"""The ``meter_bridge`` config section: sites, and per site the sources that feed its measurement.

Example (``docs/meters.md`` has one per driver)::

    meter_bridge:
      sites:
        home:
          stale_after: 10          # seconds without news before a field is dropped
          nominal_voltage: 230     # used to turn power into current when no voltage is measured
          sources:
            - id: grid
              driver: shelly
              prefix: shellypro3em-grid
              phase_map: {1: A, 2: B, 3: C}
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from shared.config import SectionModel
from shared.models.base import Phase

#: The fields of a :class:`~shared.models.measurement.SiteMeasurement` a source can feed.
FieldName = Literal["grid_current", "voltage", "grid_power", "solar_power", "battery_soc", "battery_power",
                    "grid_import_energy", "grid_export_energy", "solar_energy"]
ALL_FIELDS: tuple[FieldName, ...] = (
    "grid_current", "voltage", "grid_power", "solar_power", "battery_soc", "battery_power",
    "grid_import_energy", "grid_export_energy", "solar_energy",
)
#: The fields that are a device's lifetime energy register (Wh): they never go backwards.
ENERGY_FIELDS: tuple[FieldName, ...] = ("grid_import_energy", "grid_export_energy", "solar_energy")
#: What a source measures: the grid connection, a solar inverter or a battery.
Role = Literal["grid", "solar", "battery"]
#: How a grid power total is spread over the phases when a source gives no per-phase values.
SplitPolicy = Literal["worst_case", "even", "none"]
DevicePhase = Annotated[int, Field(ge=1, le=3)]
PositiveSeconds = Annotated[float, Field(gt=0, le=86_400)]
ModbusDataType = Literal["int16", "uint16", "int32", "uint32", "float32"]
#: What a plain value (an MQTT JSON value, a Modbus register) means.
Quantity = Literal["current", "power", "voltage", "solar_power", "battery_power", "battery_soc"]


class Plausibility(SectionModel):
    """What a reading may be; anything else is rejected with an error report, never applied."""

    #: Largest plausible grid current per phase (A, either direction).
    max_current: float = Field(default=250.0, gt=0, le=1000)
    #: Largest plausible power (W, either direction) for grid, solar and battery.
    max_power: float = Field(default=250_000.0, gt=0, le=1_000_000)
    #: Line-to-neutral voltage range (V).
    min_voltage: float = Field(default=0.0, ge=0, le=1000)
    max_voltage: float = Field(default=300.0, gt=0, le=1000)
    #: Largest change of one phase current between two readings of the same source (A); null: no rule.
    max_current_step: float | None = Field(default=None, gt=0)
    #: Largest change of a power between two readings of the same source (W); null: no rule.
    max_power_step: float | None = Field(default=None, gt=0)


class SourceBase(SectionModel):
    """What every source has, whatever its driver."""

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
    #: What the device measures; its generic power/current/voltage values feed this role's fields.
    role: Role = "grid"
    #: Restrict the measurement fields this source may feed (default: all it delivers).
    feeds: list[FieldName] | None = None
    #: The device's phase (1-3: L1/L2/L3, Shelly a/b/c, emeter 0/1/2 + 1) -> the site's phase.
    phase_map: dict[DevicePhase, Phase] = Field(default_factory=lambda: {1: Phase.A, 2: Phase.B, 3: Phase.C})
    #: Flip the sign of grid/solar power and current (a clamp mounted the other way round).
    invert: bool = False
    #: How this device signs battery power; the measurement is always discharge positive.
    battery_sign: Literal["discharge_positive", "charge_positive"] = "discharge_positive"
    #: A grid total without per-phase values: ``worst_case`` puts all import on every phase (and
    #: credits no export), ``even`` splits it evenly over the site's phases, ``none`` leaves currents out.
    #: With generation behind the meter neither is sound: each phase is bounded by total + generation (the
    #: site's ``generation_power``, else its measured solar and battery), or left out when that is unknown.
    split: SplitPolicy = "worst_case"
    #: First and largest wait before a failed driver is restarted (doubling in between).
    backoff_initial: PositiveSeconds = 1.0
    backoff_max: PositiveSeconds = 30.0
    #: MQTT drivers: apply retained device messages (they may be of any age; off by default).
    accept_retained: bool = False

    def feeds_field(self, name: FieldName) -> bool:
        return self.feeds is None or name in self.feeds


class JsonValue(SectionModel):
    """One value of a generic MQTT source: a topic, where the number is in it, and what it means."""

    topic: Annotated[str, Field(min_length=1, max_length=512)]
    #: Dotted path into the JSON payload (``ENERGY.Power``, ``phases.0.current``); null: the payload is the number.
    path: str | None = None
    unit: Literal["A", "W", "kW", "V", "%", "Wh", "kWh"]
    #: Multiplied in after the unit (use -1 for a device that signs the other way).
    scale: float = 1.0
    #: The device phase (1-3) of a per-phase value; null for a total.
    phase: DevicePhase | None = None
    #: Power that is not the source role's own (a grid meter's topic that also gives solar power); for an
    #: energy register (Wh/kWh): null is the role's forward register (grid import, solar production),
    #: ``export_energy`` the grid export register, ``solar_energy`` a solar register beside the role.
    quantity: Literal["solar_power", "battery_power", "export_energy", "solar_energy"] | None = None

    @model_validator(mode="after")
    def _check(self) -> JsonValue:
        energy = self.unit in ("Wh", "kWh")
        if self.quantity in ("solar_power", "battery_power") and self.unit not in ("W", "kW"):
            raise ValueError(f"quantity {self.quantity} needs a power unit (W or kW), not {self.unit}")
        if self.quantity in ("export_energy", "solar_energy") and not energy:
            raise ValueError(f"quantity {self.quantity} needs an energy unit (Wh or kWh), not {self.unit}")
        if energy and self.phase is not None:
            raise ValueError("an energy register (Wh/kWh) is a total: it has no phase")
        if self.unit == "%" and self.phase is not None:
            raise ValueError("a % value (battery SOC) has no phase")
        if self.unit == "A" and self.phase is None:
            raise ValueError("a current (A) value needs its phase (1-3)")
        return self


class MqttJsonSource(SourceBase):
    driver: Literal["mqtt_json"]
    values: list[JsonValue] = Field(min_length=1)


class ShellySource(SourceBase):
    driver: Literal["shelly"]
    #: Gen2: the device's MQTT prefix (``shellypro3em-abc``); Gen1: ``shellies/<id>``.
    prefix: Annotated[str, Field(min_length=1, max_length=200)]
    generation: Literal[1, 2] = 2


class SmlMap(SectionModel):
    """Where a Tasmota SML script puts its values: the meter's name and the names of its values."""

    meter: str
    power: str | None = None
    power_phases: list[str] = Field(default_factory=list, max_length=3)
    current_phases: list[str] = Field(default_factory=list, max_length=3)
    voltage_phases: list[str] = Field(default_factory=list, max_length=3)


class TasmotaSource(SourceBase):
    driver: Literal["tasmota"]
    #: The device topic (``tasmota_ABC123``); telemetry comes on ``tele/<device>/SENSOR``.
    device: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^+#/]+$")]
    #: A full topic template instead of ``tele/{device}/SENSOR`` (Tasmota's FullTopic can differ).
    topic: str | None = None
    #: Set for an SML meter (a smart meter read by a Tasmota script); null: the ENERGY object.
    sml: SmlMap | None = None


class HomeWizardSource(SourceBase):
    driver: Literal["homewizard"]
    #: ``http://<ip>``; the driver polls ``<url>/api/v1/data``.
    url: Annotated[str, Field(pattern=r"^https?://")]
    poll_interval: PositiveSeconds = 1.0
    timeout: PositiveSeconds = 3.0


class DsmrSource(SourceBase):
    driver: Literal["dsmr"]
    #: ``host:port`` of a ser2net (or similar) raw TCP port ...
    tcp: str | None = None
    #: ... or a serial device (``/dev/ttyUSB0``).
    serial: str | None = None
    #: The telegram specification of ``dsmr_parser`` (V2_2, V3, V4, V5, BELGIUM_FLUVIUS, ...).
    version: Literal["V2_2", "V3", "V4", "V5", "BELGIUM_FLUVIUS", "LUXEMBOURG_SMARTY", "SWEDEN", "Q3D"] = "V5"
    #: No complete telegram for this long means the device is gone: the driver is restarted.
    read_timeout: PositiveSeconds = 15.0

    @model_validator(mode="after")
    def _one_transport(self) -> DsmrSource:
        if (self.tcp is None) == (self.serial is None):
            raise ValueError("set exactly one of tcp (host:port) or serial (device path)")
        if self.tcp is not None:
            host, sep, port = self.tcp.rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"tcp {self.tcp!r} must be host:port")
        return self


class RegisterMap(SectionModel):
    """One register value of a non-SunSpec Modbus device."""

    address: Annotated[int, Field(ge=0, le=65535)]
    type: ModbusDataType = "int16"
    table: Literal["holding", "input"] = "holding"
    quantity: Quantity
    #: Device phase (1-3) of a per-phase current/power/voltage; null for a total.
    phase: DevicePhase | None = None
    #: Value = raw x scale (e.g. 0.1 for tenths of a volt); -1 flips a sign.
    scale: float = 1.0

    @model_validator(mode="after")
    def _phase_where_needed(self) -> RegisterMap:
        if self.quantity in ("current", "voltage") and self.phase is None:
            raise ValueError(f"register {self.address}: a {self.quantity} needs its phase (1-3)")
        if self.quantity not in ("current", "voltage", "power") and self.phase is not None:
            raise ValueError(f"register {self.address}: {self.quantity} has no phase")
        return self


class ModbusSource(SourceBase):
    driver: Literal["modbus"]
    host: str
    port: Annotated[int, Field(ge=1, le=65535)] = 502
    unit: Annotated[int, Field(ge=0, le=255)] = 1
    poll_interval: PositiveSeconds = 2.0
    timeout: PositiveSeconds = 3.0
    #: Discover SunSpec models from ``base`` (``SunS`` marker); false: read ``registers`` only.
    sunspec: bool = True
    base: Annotated[int, Field(ge=0, le=65535)] = 40000
    registers: list[RegisterMap] = Field(default_factory=list)
    #: Multi-register values: most significant word first (``big``) or last (``little``).
    word_order: Literal["big", "little"] = "big"

    @model_validator(mode="after")
    def _something_to_read(self) -> ModbusSource:
        if not self.sunspec and not self.registers:
            raise ValueError("a non-SunSpec device needs a register map (registers)")
        return self


SourceConfig = Annotated[
    MqttJsonSource | ShellySource | TasmotaSource | HomeWizardSource | DsmrSource | ModbusSource,
    Field(discriminator="driver"),
]


class SiteConfig(SectionModel):
    sources: list[SourceConfig] = Field(min_length=1)
    #: Seconds without a new reading after which a field is dropped from the measurement.
    stale_after: PositiveSeconds = 10.0
    #: The same for the energy registers: devices may report them far less often than power (a Pro 3EM
    #: sends ``emdata`` as its own status), and an older register is still a true count, only a little behind.
    energy_stale_after: PositiveSeconds = 300.0
    nominal_voltage: float = Field(default=230.0, gt=50, le=480)
    #: The phases of the site's grid connection.
    phases: list[Phase] = Field(default_factory=lambda: [Phase.A, Phase.B, Phase.C], min_length=1, max_length=3)
    #: At most one measurement per this many seconds per site (the first of a burst goes out at once).
    coalesce: float = Field(default=0.1, ge=0, le=60)
    plausibility: Plausibility = Field(default_factory=Plausibility)
    #: The most the generation behind the grid meter can feed (W: solar inverters and battery together, AC).
    #: Bounds each phase when a grid meter gives only a total (see ``split``); without it the measured solar
    #: and battery power is used, and with neither the per-phase currents of such a total are unknown.
    generation_power: float | None = Field(default=None, gt=0, le=1_000_000)

    @field_validator("sources")
    @classmethod
    def _unique_ids(cls, sources: list[SourceBase]) -> list[SourceBase]:
        ids = [s.id for s in sources]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"source ids must be unique within a site: {', '.join(dupes)}")
        return sources

    def _measures(self, role: Role, quantity: FieldName) -> bool:
        """Whether some source measures ``quantity``: by its role, or by a mapped value or register."""
        for source in self.sources:
            if source.role == role and source.feeds_field(quantity):
                return True
            if isinstance(source, MqttJsonSource) and any(v.quantity == quantity for v in source.values):
                return True
            if isinstance(source, ModbusSource) and any(r.quantity == quantity for r in source.registers):
                return True
        return False

    def has_battery_source(self) -> bool:
        """True when some source measures battery power."""
        return self._measures("battery", "battery_power")

    def has_solar_source(self) -> bool:
        """True when some source measures solar power (then solar is never derived from export)."""
        return self._measures("solar", "solar_power")


class MeterBridgeConfig(SectionModel):
    sites: dict[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")], SiteConfig] = Field(default_factory=dict)

    @field_validator("sites")
    @classmethod
    def _not_reserved(cls, sites: dict[str, SiteConfig]) -> dict[str, SiteConfig]:
        if "services" in sites:
            raise ValueError("'services' is reserved and cannot name a site")
        return sites
