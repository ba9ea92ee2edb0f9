"""Modbus TCP devices: SunSpec inverters and batteries (models discovered), or a plain register map.

SunSpec: the driver checks the ``SunS`` marker at ``base`` (40000 by default), walks the model chain
(``[id, length]`` headers up to ``0xFFFF``) and then polls the models it knows:

* **1** (common): manufacturer and model, logged once.
* **101 / 102 / 103** (inverter, single / split / three phase, integer + scale factors): total AC power
  ``W`` feeds the source's role (``solar`` for a PV inverter); per-phase currents ``AphA..C`` and voltages
  ``PhVphA..C`` are delivered as device phases 1..3 (used when the role is ``grid``); the lifetime
  production register ``WH`` (acc32, with ``WH_SF``) feeds ``solar_energy`` (0, "not accumulated", is left out).
* **802** (battery base): ``SoC`` and ``W`` (read as discharge positive; set ``battery_sign:
  charge_positive`` for a device that signs the other way) — preferred when present.
* **124** (basic storage): ``ChaState`` as the state of charge, when there is no model 802.

SunSpec "not implemented" values (0x8000 for int16, 0xFFFF for uint16 and scale factors) are left out.
Registers are addressed as the device's documentation numbers them minus nothing: ``base: 40000``
reads holding register 40000 (some devices document it as 40001).

A device that is not SunSpec is read through ``registers``: address, type, table, scale, quantity, phase.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from shared.clock import Clock

from ..config import ModbusSource, RegisterMap
from ..sample import Sample
from .base import DeviceDataError, DeviceGone, Sink, TaskDriver

log = logging.getLogger("ampmq.meter-bridge.modbus")

SUNSPEC_MARKER = (0x5375, 0x6E53)  # "SunS"
END_OF_MODELS = 0xFFFF
MAX_READ = 120
INVERTER_MODELS = (101, 102, 103)
#: Model 101-103 points read: up to W_SF (14), or up to WH_SF (25) when the model is that long.
INVERTER_BLOCK = 14
INVERTER_BLOCK_WITH_ENERGY = 25
BATTERY_MODEL = 802
STORAGE_MODEL = 124
_INT16_NA = 0x8000
_UINT16_NA = 0xFFFF
_SIZES = {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2}
_FORMATS = {"int16": ">h", "uint16": ">H", "int32": ">i", "uint32": ">I", "float32": ">f"}


@dataclass(frozen=True, slots=True)
class SunSpecModel:
    id: int
    start: int  # first register after the [id, length] header
    length: int


def _int16(raw: int) -> int | None:
    return None if raw == _INT16_NA else (raw - 0x10000 if raw & 0x8000 else raw)


def _uint16(raw: int) -> int | None:
    return None if raw == _UINT16_NA else raw


def _scaled(value: int | None, sf_raw: int) -> float | None:
    sf = _int16(sf_raw)
    if value is None or sf is None or not -10 <= sf <= 10:
        return None
    return float(value) * 10.0**sf


def decode_inverter(block: list[int], sample: Sample) -> None:
    """Model 101/102/103 points (offsets after the header)."""
    a_sf, v_sf = block[4], block[11]
    for phase, offset in ((1, 1), (2, 2), (3, 3)):
        if (amps := _scaled(_uint16(block[offset]), a_sf)) is not None:
            sample.current[phase] = amps
    for phase, offset in ((1, 8), (2, 9), (3, 10)):
        if (volts := _scaled(_uint16(block[offset]), v_sf)) is not None:
            sample.voltage[phase] = volts
    sample.total_power = _scaled(_int16(block[12]), block[13])
    if len(block) >= INVERTER_BLOCK_WITH_ENERGY:
        wh = (block[22] << 16) | block[23]
        sample.energy_forward = _scaled(wh or None, block[24])


def decode_battery(block: list[int], sample: Sample) -> None:
    """Model 802 points: SoC (9) with SoC_SF (54), W (45) with W_SF (61)."""
    sample.battery_soc = _scaled(_uint16(block[9]), block[54])
    sample.battery_power = _scaled(_int16(block[45]), block[61])


def decode_storage(block: list[int], sample: Sample) -> None:
    """Model 124: ChaState (6) with ChaState_SF (20)."""
    sample.battery_soc = _scaled(_uint16(block[6]), block[20])


def decode_register(registers: list[int], spec: RegisterMap, word_order: str) -> float:
    words = list(registers[: _SIZES[spec.type]])
    if word_order == "little":
        words.reverse()
    raw = struct.unpack(_FORMATS[spec.type], b"".join(w.to_bytes(2, "big") for w in words))[0]
    return float(raw) * spec.scale


def put_register(sample: Sample, spec: RegisterMap, value: float) -> None:
    if spec.quantity in ("current", "power", "voltage"):
        target = {"current": sample.current, "power": sample.power, "voltage": sample.voltage}[spec.quantity]
        if spec.phase is None:
            if spec.quantity != "power":
                raise DeviceDataError(f"register {spec.address}: a {spec.quantity} needs its phase")
            sample.total_power = value
        else:
            target[spec.phase] = value
    else:
        setattr(sample, spec.quantity, value)


class ModbusDriver(TaskDriver):
    source: ModbusSource

    def __init__(self, source: ModbusSource, clock: Clock) -> None:
        super().__init__(source)
        self._clock = clock
        self.origin = f"modbus://{source.host}:{source.port}/{source.unit}"
        self.models: list[SunSpecModel] = []

    async def _read(self, client: AsyncModbusTcpClient, address: int, count: int, table: str = "holding") -> list[int]:
        out: list[int] = []
        while count > 0:
            n = min(count, MAX_READ)
            try:
                if table == "input":
                    response = await client.read_input_registers(address, count=n, device_id=self.source.unit)
                else:
                    response = await client.read_holding_registers(address, count=n, device_id=self.source.unit)
            except (ModbusException, OSError, TimeoutError) as exc:
                raise DeviceGone(f"{self.origin}: reading {address}: {exc}") from exc
            if response.isError():
                raise DeviceDataError(f"{self.origin}: register {address} x{n}: {response}")
            out += list(response.registers)
            address += n
            count -= n
        return out

    async def discover(self, client: AsyncModbusTcpClient) -> list[SunSpecModel]:
        base = self.source.base
        marker = await self._read(client, base, 2)
        if tuple(marker) != SUNSPEC_MARKER:
            raise DeviceDataError(f"{self.origin}: no SunSpec marker at {base} (found {marker})")
        models: list[SunSpecModel] = []
        address = base + 2
        for _ in range(64):
            model_id, length = await self._read(client, address, 2)
            if model_id == END_OF_MODELS:
                break
            models.append(SunSpecModel(model_id, address + 2, length))
            address += 2 + length
        log.info("%s: SunSpec models %s", self.origin, [m.id for m in models])
        return models

    async def run(self, sink: Sink) -> None:
        client = AsyncModbusTcpClient(
            self.source.host, port=self.source.port, timeout=self.source.timeout, retries=1, reconnect_delay=0
        )
        try:
            if not await client.connect():
                raise DeviceGone(f"{self.origin}: cannot connect")
            if self.source.sunspec:
                self.models = await self.discover(client)
            while True:
                try:
                    sample = await self.poll(client)
                except DeviceDataError as exc:
                    await sink.reject(self.origin, exc.code, str(exc))
                else:
                    await sink.sample(sample, self.origin)
                await self._clock.sleep(self.source.poll_interval)
        finally:
            client.close()

    async def poll(self, client: AsyncModbusTcpClient) -> Sample:
        sample = Sample()
        by_id = {m.id: m for m in self.models}
        for model in self.models:
            if model.id in INVERTER_MODELS and model.length >= INVERTER_BLOCK:
                count = INVERTER_BLOCK_WITH_ENERGY if model.length >= INVERTER_BLOCK_WITH_ENERGY else INVERTER_BLOCK
                decode_inverter(await self._read(client, model.start, count), sample)
        if (battery := by_id.get(BATTERY_MODEL)) is not None and battery.length >= 62:
            decode_battery(await self._read(client, battery.start, 62), sample)
        elif (storage := by_id.get(STORAGE_MODEL)) is not None and storage.length >= 24:
            decode_storage(await self._read(client, storage.start, 24), sample)
        for spec in self.source.registers:
            registers = await self._read(client, spec.address, _SIZES[spec.type], spec.table)
            put_register(sample, spec, decode_register(registers, spec, self.source.word_order))
        if sample.is_empty():
            raise DeviceDataError(f"{self.origin}: no value read (models {[m.id for m in self.models]})")
        return sample
