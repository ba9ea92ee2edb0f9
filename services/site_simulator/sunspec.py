"""The battery and the PV inverter as SunSpec devices on a Modbus TCP server (pymodbus).

Device 1 is the battery: models 1 (common) and 802 (battery: ``SoC``, ``W`` discharge positive). Device 2
is the PV inverter: models 1 and 103 (three-phase inverter: ``AphA..C``, ``PhVphA..C``, ``W``, and the lifetime
production register ``WH``, counted by the inverter from its own power). The
``SunS`` marker sits at 40000, as the meter bridge's SunSpec driver expects. Registers are refreshed from
the physics whenever they are read.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from .site import SiteState

BASE = 40000
BATTERY_UNIT = 1
SOLAR_UNIT = 2
_MARKER = [0x5375, 0x6E53]
_COMMON_LEN = 66
# offsets of the model blocks after BASE: marker(2) + common header(2) + common(66) + model header(2)
_FIRST_MODEL = 2 + 2 + _COMMON_LEN + 2


def u16(value: float) -> int:
    return round(value) & 0xFFFF


def _common(model: str) -> list[int]:
    block = [0] * _COMMON_LEN
    for i, text in ((0, "ampmq-sim"), (16, model)):
        raw = text.encode()[:32].ljust(32, b"\0")
        block[i:i + 16] = [int.from_bytes(raw[j:j + 2], "big") for j in range(0, 32, 2)]
    return [1, _COMMON_LEN, *block]


def battery_registers(state: SiteState | None = None) -> list[int]:
    block = [0] * 62
    block[54] = u16(-1)  # SoC_SF: tenths of a percent
    block[61] = 0  # W_SF
    if state is not None and state.battery_soc is not None:
        block[9] = u16(state.battery_soc * 10)
        block[45] = u16(state.battery_power)
    return [*_MARKER, *_common("SimBattery"), 802, 62, *block, 0xFFFF, 0]


class ProductionCounter:
    """The inverter's lifetime ``WH`` register: what it produced, counted from its power between readings."""

    def __init__(self) -> None:
        self.wh = 0.0
        self._t: float | None = None

    def count(self, state: SiteState) -> float:
        if self._t is not None and state.t > self._t:
            self.wh += max(0.0, state.solar) * (state.t - self._t) / 3600.0
        self._t = state.t if self._t is None else max(self._t, state.t)
        return self.wh


def inverter_registers(state: SiteState | None = None, produced_wh: float = 0.0) -> list[int]:
    """Model 103 of the inverter producing ``state.solar``; ``WH`` (acc32, ``WH_SF`` 0) holds ``produced_wh``
    (0, before anything was produced, reads as "not accumulated")."""
    block = [0] * 50
    block[4] = u16(-2)  # A_SF: hundredths of an amp
    block[11] = u16(-1)  # V_SF
    block[13] = 0  # W_SF
    if state is not None:
        per_phase = state.solar / max(1, len(state.grid_current))
        for i, phase in enumerate(("A", "B", "C")):
            volts = state.voltage.get(phase, 230.0)
            if phase in state.grid_current:
                block[1 + i] = u16(per_phase / volts * 100)
            block[8 + i] = u16(volts * 10)
        block[12] = u16(state.solar)
        wh = int(produced_wh) & 0xFFFFFFFF
        block[22:24] = [wh >> 16, wh & 0xFFFF]  # WH_SF (24) is 0: whole Wh
    return [*_MARKER, *_common("SimInverter"), 103, 50, *block, 0xFFFF, 0]


def _refresher(make: Callable[[SiteState | None], list[int]], state: Callable[[], SiteState]) -> Any:
    async def action(function_code: int, start_address: int, address: int, count: int,
                     current_registers: list[int], set_values: Any) -> None:
        fresh = make(state())
        current_registers[: len(fresh)] = fresh
        return None

    return action


class SunSpecServer:
    """A Modbus TCP server for the site's battery and PV inverter."""

    def __init__(self, state: Callable[[], SiteState], host: str = "127.0.0.1", port: int = 0,
                 battery: bool = True, solar: bool = True) -> None:
        from shared.broker import free_port

        self.host = host
        self.port = port or free_port(host)
        devices = []
        if battery:
            devices.append(SimDevice(id=BATTERY_UNIT, simdata=[SimData(BASE, values=battery_registers(),
                                                                       datatype=DataType.REGISTERS)],
                                     action=_refresher(battery_registers, state)))
        if solar:
            produced = ProductionCounter()

            def inverter(now: SiteState | None) -> list[int]:
                return inverter_registers(now, produced.count(now) if now is not None else 0.0)

            devices.append(SimDevice(id=SOLAR_UNIT, simdata=[SimData(BASE, values=inverter_registers(),
                                                                     datatype=DataType.REGISTERS)],
                                     action=_refresher(inverter, state)))
        self.server = ModbusTcpServer(devices, address=(host, self.port))
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> SunSpecServer:
        self._task = asyncio.get_running_loop().create_task(self.server.serve_forever())
        for _ in range(200):
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection(self.host, self.port)
                writer.close()
                return self
            await asyncio.sleep(0.02)
        raise RuntimeError(f"the SunSpec server did not listen on {self.host}:{self.port}")

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self.server.shutdown()  # type: ignore[no-untyped-call]
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
