"""HomeWizard Wi-Fi P1 meter: its local HTTP API (``GET /api/v1/data``), polled.

Fields used: ``active_power_w`` (total, import positive), ``active_power_l{1,2,3}_w``,
``active_current_l{1,2,3}_a`` and ``active_voltage_l{1,2,3}_v``. Older firmware reports current
unsigned; it then takes the sign of the phase's power. Energy: ``total_power_import_kwh`` and
``total_power_export_kwh`` (the meter's registers, summed over tariffs).
"""

from __future__ import annotations

from typing import Any

import aiohttp

from shared.clock import Clock

from ..config import HomeWizardSource
from ..sample import Sample
from .base import DeviceDataError, DeviceGone, Sink, TaskDriver, load_json, optional_number


class HomeWizardDriver(TaskDriver):
    source: HomeWizardSource

    def __init__(self, source: HomeWizardSource, clock: Clock) -> None:
        super().__init__(source)
        self._clock = clock
        self.endpoint = source.url.rstrip("/") + "/api/v1/data"
        self.origin = self.endpoint

    async def run(self, sink: Sink) -> None:
        timeout = aiohttp.ClientTimeout(total=self.source.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                try:
                    async with session.get(self.endpoint) as response:
                        if response.status != 200:
                            raise DeviceGone(f"{self.endpoint} answered HTTP {response.status}")
                        body = await response.read()
                except (aiohttp.ClientError, TimeoutError) as exc:
                    raise DeviceGone(f"{self.endpoint}: {type(exc).__name__}: {exc}") from exc
                try:
                    sample = parse_data(load_json(body))
                except DeviceDataError as exc:
                    await sink.reject(self.endpoint, exc.code, str(exc), body.decode("utf-8", "replace"))
                else:
                    await sink.sample(sample, self.endpoint)
                await self._clock.sleep(self.source.poll_interval)


def parse_data(data: Any) -> Sample:
    if not isinstance(data, dict):
        raise DeviceDataError("/api/v1/data is not an object")
    sample = Sample()
    sample.total_power = optional_number(data, "active_power_w", "data")
    for phase in (1, 2, 3):
        if (watts := optional_number(data, f"active_power_l{phase}_w", "data")) is not None:
            sample.power[phase] = watts
        if (amps := optional_number(data, f"active_current_l{phase}_a", "data")) is not None:
            sample.current[phase] = amps
        if (volts := optional_number(data, f"active_voltage_l{phase}_v", "data")) is not None:
            sample.voltage[phase] = volts
    for name, key in (("energy_forward", "total_power_import_kwh"), ("energy_reverse", "total_power_export_kwh")):
        if (kwh := optional_number(data, key, "data")) is not None:
            setattr(sample, name, kwh * 1000.0)
    if sample.is_empty():
        raise DeviceDataError("/api/v1/data holds no power, current, voltage or energy")
    return sample
