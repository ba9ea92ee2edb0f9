"""``ampmq health <service>``: exit 0 when the service says ``online`` on the broker, 1 otherwise.

The container health check of the compose deployment: it logs in with the container's own credentials
(``AMPMQ_MQTT_*``), so a healthy answer also proves the broker, the user's password and its ACL work.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from .config import AmpmqConfig
from .services import SERVICES
from .topics import Topics

#: How long the retained availability may take to arrive.
WAIT = 5.0


async def service_online(config: AmpmqConfig, service: str, wait: float = WAIT) -> str:
    """The service's retained availability (``online``/``offline``), or a sentence saying why there is none."""
    from .probe import Probe

    topic = Topics(config.root).service_availability(service)
    try:
        async with Probe(config.broker()) as probe:
            await probe.subscribe(topic)
            message = await probe.expect(topic, timeout=wait)
            return message.text
    except TimeoutError:
        return f"no availability on {topic} within {wait:g} s"
    except Exception as exc:  # the broker is away, the password wrong: all mean unhealthy
        return f"cannot ask the broker: {exc}"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    health = subparsers.add_parser("health", help="exit 0 when the service says online on the broker (healthcheck)")
    health.add_argument("service", choices=list(SERVICES))
    health.set_defaults(handler=_run)


def _run(args: argparse.Namespace, config: AmpmqConfig) -> int:
    answer = asyncio.run(service_online(config, args.service))
    print(f"{args.service}: {answer}", file=sys.stdout if answer == "online" else sys.stderr)
    return 0 if answer == "online" else 1
