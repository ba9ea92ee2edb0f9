"""Run a test charge point's reading loop for as long as a block needs it (gateway and adapter tests)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any


@contextlib.asynccontextmanager
async def reading(client: Any, ws: Any) -> AsyncIterator[Any]:
    """``client`` (an ocpp ChargePoint on ``ws``) reads its calls in the background; on exit the socket closes."""
    reader = asyncio.get_running_loop().create_task(client.start())
    try:
        yield client
    finally:
        reader.cancel()
        await ws.close()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader
