"""Real peers for the task drivers: an HTTP server shaped like a HomeWizard P1 meter, a TCP server
that streams DSMR telegrams (as ser2net does), and a pymodbus TCP server holding SunSpec registers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from shared.broker import free_port


class HomeWizardPeer:
    """Serves ``/api/v1/data`` with whatever ``data`` holds now."""

    def __init__(self, data: dict[str, Any], port: int | None = None) -> None:
        self.data = data
        self.port = port or free_port()
        self.requests = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _data(self, request: web.Request) -> web.Response:
        self.requests += 1
        return web.json_response(self.data)

    async def start(self) -> HomeWizardPeer:
        app = web.Application()
        app.router.add_get("/api/v1/data", self._data)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


class TelegramServer:
    def __init__(self, port: int) -> None:
        self.port = port
        self.connections = 0


@contextlib.asynccontextmanager
async def telegram_server(
    telegrams: list[str], pause: float = 0.05, hang_up: bool = False
) -> AsyncIterator[TelegramServer]:
    """A TCP port that sends each telegram to every client that connects, then keeps the line open
    (or, with ``hang_up``, closes it, as a ser2net whose serial side went away)."""
    state = TelegramServer(0)

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        try:
            for telegram in telegrams:
                writer.write(telegram.encode("ascii"))
                await writer.drain()
                await asyncio.sleep(pause)
            if not hang_up:
                await reader.read()  # until the bridge hangs up
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(client, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 2)


def u16(value: int) -> int:
    """A signed 16-bit value as the register holds it."""
    return value & 0xFFFF


def sunspec_registers(inverter_w: int, inverter_w_sf: int, soc: int, battery_w: int, lifetime_wh: int = 0,
                      wh_sf: int = 0) -> list[int]:
    """SunS marker, model 1 (common), 103 (three-phase inverter), 802 (battery), end marker. ``lifetime_wh``
    is the inverter's ``WH`` (acc32, two registers high word first; 0: not accumulated) with ``WH_SF``."""
    common = [1, 66] + [0] * 66
    inverter = [0] * 50
    inverter[1:5] = [100, 90, 80, u16(-1)]  # AphA..C in 0.1 A (A_SF = -1)
    inverter[8:12] = [2300, 2310, 2290, u16(-1)]  # PhVphA..C in 0.1 V (V_SF = -1)
    inverter[12:14] = [u16(inverter_w), u16(inverter_w_sf)]
    inverter[22:25] = [lifetime_wh >> 16, lifetime_wh & 0xFFFF, u16(wh_sf)]
    battery = [0] * 62
    battery[9] = soc  # in 0.1 % (SoC_SF = -1)
    battery[54] = u16(-1)
    battery[45] = u16(battery_w)
    battery[61] = 0
    return [0x5375, 0x6E53, *common, 103, 50, *inverter, 802, 62, *battery, 0xFFFF, 0]


@contextlib.asynccontextmanager
async def modbus_server(
    blocks: dict[int, list[int]], device_id: int = 1, port: int | None = None
) -> AsyncIterator[int]:
    """A pymodbus TCP server on a loopback port holding ``blocks`` (start address -> registers)."""
    port = port or free_port()
    simdata = [SimData(address, values=values, datatype=DataType.REGISTERS) for address, values in blocks.items()]
    server = ModbusTcpServer(SimDevice(id=device_id, simdata=simdata), address=("127.0.0.1", port))
    task = asyncio.get_running_loop().create_task(server.serve_forever())
    try:
        for _ in range(100):
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            await asyncio.sleep(0.02)
        yield port
    finally:
        await server.shutdown()  # type: ignore[no-untyped-call]
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
