"""DSMR / P1 telegrams from a smart meter, over a serial port or a raw TCP port (ser2net and the like).

Telegrams are framed and parsed by the maintained ``dsmr_parser`` package with CRC checking on: a
telegram whose CRC does not match is reported and not applied. Per phase the driver uses the
instantaneous current (31/51/71.7.0, unsigned), power imported (21/41/61.7.0) and exported
(22/42/62.7.0) — their difference is the signed phase power that gives the current its sign — and
voltage (32/52/72.7.0); the total is power delivered minus power received (1.7.0 - 2.7.0). Energy:
delivered to the client (import) is 1.8.1 + 1.8.2, received from it (export) 2.8.1 + 2.8.2, in kWh; a meter
with one register (1.8.0 / 2.8.0) gives that instead.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from dsmr_parser import telegram_specifications  # type: ignore[import-untyped]
from dsmr_parser.clients.telegram_buffer import TelegramBuffer  # type: ignore[import-untyped]
from dsmr_parser.exceptions import InvalidChecksumError, ParseError  # type: ignore[import-untyped]
from dsmr_parser.parsers import TelegramParser  # type: ignore[import-untyped]

from ..config import DsmrSource
from ..sample import Sample
from .base import DeviceDataError, DeviceGone, Sink, TaskDriver

#: (phase, current, power imported, power exported, voltage) names in dsmr_parser's telegram.
_PHASES = [
    (n, f"INSTANTANEOUS_CURRENT_L{n}", f"INSTANTANEOUS_ACTIVE_POWER_L{n}_POSITIVE",
     f"INSTANTANEOUS_ACTIVE_POWER_L{n}_NEGATIVE", f"INSTANTANEOUS_VOLTAGE_L{n}")
    for n in (1, 2, 3)
]
_KW_FIELDS = ("CURRENT_ELECTRICITY_USAGE", "CURRENT_ELECTRICITY_DELIVERY")
#: (sample field, the tariff registers, the single total register) in dsmr_parser's telegram, kWh.
_ENERGY = (
    ("energy_forward", ("ELECTRICITY_USED_TARIFF_1", "ELECTRICITY_USED_TARIFF_2"), "ELECTRICITY_IMPORTED_TOTAL"),
    ("energy_reverse", ("ELECTRICITY_DELIVERED_TARIFF_1", "ELECTRICITY_DELIVERED_TARIFF_2"),
     "ELECTRICITY_EXPORTED_TOTAL"),
)


class TelegramError(DeviceDataError):
    """A telegram that failed its CRC or could not be parsed."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code  # "crc" or "parse"


class DsmrDriver(TaskDriver):
    source: DsmrSource

    def __init__(self, source: DsmrSource) -> None:
        super().__init__(source)
        self.parser = TelegramParser(getattr(telegram_specifications, source.version), apply_checksum_validation=True)
        self.origin = f"tcp://{source.tcp}" if source.tcp else f"serial://{source.serial}"

    async def _open(self) -> tuple[asyncio.StreamReader, Any]:
        if self.source.tcp is not None:
            host, _, port = self.source.tcp.rpartition(":")
            try:
                return await asyncio.wait_for(asyncio.open_connection(host, int(port)), self.source.read_timeout)
            except (OSError, TimeoutError) as exc:
                raise DeviceGone(f"{self.origin}: {exc or type(exc).__name__}") from exc
        from dsmr_parser.clients import settings  # type: ignore[import-untyped]
        from serialx import open_serial_connection

        serial_settings = dict(
            settings.SERIAL_SETTINGS_V2_2 if self.source.version == "V2_2"
            else settings.SERIAL_SETTINGS_V4 if self.source.version == "V4"
            else settings.SERIAL_SETTINGS_V5
        )
        serial_settings.pop("timeout", None)
        try:
            return await open_serial_connection(url=self.source.serial, **serial_settings)
        except OSError as exc:
            raise DeviceGone(f"{self.origin}: {exc}") from exc

    async def run(self, sink: Sink) -> None:
        reader, writer = await self._open()
        buffer = TelegramBuffer()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.source.read_timeout  # for the next complete telegram
        try:
            while True:
                try:
                    chunk = await asyncio.wait_for(reader.read(4096), max(0.0, deadline - loop.time()))
                except TimeoutError as exc:
                    raise DeviceGone(
                        f"{self.origin}: no complete telegram for {self.source.read_timeout:g}s"
                    ) from exc
                except OSError as exc:
                    raise DeviceGone(f"{self.origin}: {exc}") from exc
                if not chunk:
                    raise DeviceGone(f"{self.origin}: connection closed")
                buffer.append(chunk.decode("ascii", "replace"))
                for telegram in buffer.get_all():
                    deadline = loop.time() + self.source.read_timeout
                    try:
                        sample = self.parse(telegram)
                    except TelegramError as exc:
                        await sink.reject(self.origin, exc.code, str(exc), telegram)
                        continue
                    await sink.sample(sample, self.origin)
        finally:
            writer.close()

    def parse(self, telegram: str) -> Sample:
        try:
            parsed = self.parser.parse(telegram)
        except InvalidChecksumError as exc:
            raise TelegramError(f"telegram CRC mismatch: {exc}", "crc") from exc
        except ParseError as exc:
            raise TelegramError(f"telegram not parsable: {exc}", "parse") from exc
        return telegram_sample(parsed)


def _value(telegram: Any, name: str) -> float | None:
    obj = getattr(telegram, name, None)
    if obj is None:
        return None
    value = getattr(obj, "value", None)
    if isinstance(value, Decimal | int | float):
        return float(value)
    return None


def telegram_sample(telegram: Any) -> Sample:
    sample = Sample()
    for phase, current, imported, exported, voltage in _PHASES:
        if (amps := _value(telegram, current)) is not None:
            sample.current[phase] = amps
        plus, minus = _value(telegram, imported), _value(telegram, exported)
        if plus is not None or minus is not None:
            sample.power[phase] = ((plus or 0.0) - (minus or 0.0)) * 1000.0  # kW -> W
        if (volts := _value(telegram, voltage)) is not None:
            sample.voltage[phase] = volts
    usage, delivery = (_value(telegram, n) for n in _KW_FIELDS)
    if usage is not None or delivery is not None:
        sample.total_power = ((usage or 0.0) - (delivery or 0.0)) * 1000.0
    for name, tariffs, total in _ENERGY:
        registers = [v for t in tariffs if (v := _value(telegram, t)) is not None]
        kwh = sum(registers) if registers else _value(telegram, total)
        if kwh is not None:
            setattr(sample, name, kwh * 1000.0)
    if sample.is_empty():
        raise TelegramError("telegram holds no power, current or voltage", "parse")
    return sample
