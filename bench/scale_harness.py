"""One partition's harness for :mod:`bench.scale`, in its own process: the partition's simulated charge points
(OCPP 1.6 on its gateway's port) and Shelly Pro 3EM meters, and the overload trials on its own sites.

``python -m bench.scale_harness`` reads its orders as JSON lines on stdin and answers on stdout:

* the first line on stdin: ``{"broker": url, "port": p, "sites": {site: [charger, ...]}, "meter_interval": s,
  "trials": n, "trial_every": s, "offset": s, "patience": s}`` (``patience``: the longest wait for the fleet's
  start and for each cut);
* once every charger is connected, booted and at its maximum it says
  ``{"ready": true, "connect_and_boot_s": …, "all_at_maximum_s": …, "wrong": […]}``;
* then it waits for ``go`` (the parent starts every partition's trials at once, and its CPU window with them),
  runs ``trials`` overloads on its sites, the first ``offset`` seconds after ``go``, then one every
  ``trial_every`` (the partitions take turns: the fleet sees one overload every ``TRIAL_EVERY_S``), and says
  ``{"latencies": [s, …], "wrong": […], "sites_tried": n}``; it keeps its meters and chargers up until ``stop``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from shared.broker import wait_for_port
from shared.probe import Probe

from .reaction import Fleet, freeze_harness_heap


def say(message: dict[str, Any]) -> None:
    print(json.dumps(message), flush=True)


async def hear() -> str:
    line: str = await asyncio.to_thread(sys.stdin.readline)
    return line.strip()


async def trials(fleet: Fleet, meters: Probe, orders: dict[str, Any]) -> dict[str, Any]:
    latencies: list[float] = []
    wrong: list[str] = []
    sites = fleet.ready_sites()
    count, every, patience = orders["trials"], orders["trial_every"], orders["patience"]
    next_trial = time.perf_counter() + orders["offset"]
    for n in range(count if sites else 0):
        await asyncio.sleep(max(0.0, next_trial - time.perf_counter()))
        next_trial = max(next_trial + every, time.perf_counter())  # a slow cut delays the next, never bunches
        cut = await fleet.overload(meters, sites[n % len(sites)], patience)
        if cut.lost:  # the cut never arrived: a wrong result, counted, and the run goes on
            wrong.extend(f"trial {n} on {cut.site}: {why}" for why in cut.lost)
        else:
            latencies.append(cut.arrived - cut.sent)
    if not sites:
        wrong.append(f"no site of {list(fleet.sites)[:3]}… reached its maximum: no trial")
    return {"latencies": latencies, "wrong": wrong, "sites_tried": min(count, len(sites))}


async def serve(fleet: Fleet, meters: Probe, orders: dict[str, Any]) -> None:
    started = time.perf_counter()
    await fleet.connect_all()
    connect_s = time.perf_counter() - started
    # the start-up burst (a profile and a report per charger) takes longer the more chargers there are
    wrong = await fleet.at_maximum(4 * orders["patience"] + len(fleet.points) / 50)
    say({"ready": True, "connect_and_boot_s": round(connect_s, 2),
         "all_at_maximum_s": round(time.perf_counter() - started - connect_s, 2), "wrong": wrong[:5]})
    if await hear() != "go":
        return
    freeze_harness_heap()
    say(await trials(fleet, meters, orders))
    await hear()  # stop: the meters and the chargers stay up until every partition is done


async def main() -> None:
    orders = json.loads(await hear())
    fleet = Fleet(orders["sites"], orders["port"])
    try:
        await asyncio.to_thread(wait_for_port, "127.0.0.1", orders["port"], 60.0)
        async with Probe(orders["broker"]) as meters:
            metering = asyncio.create_task(fleet.meter_loop(meters, orders["meter_interval"]))
            fleet.tasks.append(metering)
            try:
                await serve(fleet, meters, orders)
            finally:
                metering.cancel()  # before the probe's connection closes under it
    finally:
        await fleet.close()


if __name__ == "__main__":
    asyncio.run(main())
