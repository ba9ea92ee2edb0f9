"""The ``ampmq`` command: run one service, all of them, or the allocator on a snapshot."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from . import trace
from .broker import embedded_broker
from .config import AmpmqConfig, ConfigError, load_config
from .logsetup import setup_logging
from .mqtt import BrokerAddress
from .probe import Probe
from .services import SERVICES, run_services

log = logging.getLogger("ampmq")
T = TypeVar("T")
#: How long a stop signal waits for the services to stop cleanly before the process ends anyway.
STOP_DEADLINE = 8.0

#: Extra subcommands registered by other modules: name -> (help, add_arguments, run).
EXTRA_COMMANDS: dict[str, str] = {
    "allocate": "services.allocator.cli",
    "demo": "services.site_simulator.cli",
    "hash-password": "services.ocpp_gateway.passwords",
    "acl": "shared.acl",
    "health": "shared.health",
}


async def _show(broker: BrokerAddress, root: str) -> None:
    """Print every message published under the root, as ``mosquitto_sub -v`` would."""
    async with Probe(broker) as probe:
        await probe.subscribe(f"{root}/#")
        shown = 0
        while True:
            await asyncio.sleep(0.2)
            for msg in probe.messages[shown:]:
                print(f"{msg.topic} {msg.text}", flush=True)
            shown = len(probe.messages)


async def _run_all(config: AmpmqConfig, names: list[str], duration: float | None, show: bool = False) -> None:
    async with contextlib.AsyncExitStack() as stack:
        if not config.mqtt_url:
            url = await stack.enter_async_context(embedded_broker())
            config = config.model_copy(update={"mqtt_url": url})
            log.info("embedded broker on %s", url)
        if show:
            shower = asyncio.ensure_future(_show(config.broker(), config.root))
            stack.callback(shower.cancel)
        task = asyncio.ensure_future(run_services(config, names))
        try:
            await asyncio.wait_for(asyncio.shield(task), duration) if duration else await task
        except TimeoutError:
            pass
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def run_until_signal(main: Coroutine[Any, Any, T]) -> T | None:
    """Run ``main`` until it ends or SIGINT/SIGTERM arrives; a signal cancels it, so every service stops
    cleanly (publishing ``offline``) instead of dying mid-flight."""

    async def guarded() -> T | None:
        task = asyncio.ensure_future(main)
        loop = asyncio.get_running_loop()
        stopper: list[asyncio.Task[None]] = []

        def on_signal() -> None:
            if not stopper:
                stopper.append(loop.create_task(stop(task)))

        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, on_signal)
        with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):
            loop.add_signal_handler(signal.SIGUSR1, dump_tasks)
        try:
            return await task
        except asyncio.CancelledError:
            return None

    async def stop(task: asyncio.Future[T]) -> None:
        # Python 3.11's wait_for can swallow a cancellation that meets a completing future (fixed in 3.12),
        # so one cancel may be lost somewhere deep in a library: keep asking until the task has stopped.
        # Each service said "offline" first thing when cancelled; past the deadline (a broker that does not
        # acknowledge the disconnect) the process ends anyway, and the broker's Last Will covers the rest.
        deadline = asyncio.get_running_loop().time() + STOP_DEADLINE
        while not task.done():
            if asyncio.get_running_loop().time() > deadline:
                log.warning("services did not stop within %.0f s; exiting", STOP_DEADLINE)
                logging.shutdown()
                os._exit(0)
            task.cancel()
            for service in asyncio.all_tasks():  # a task group cancels its children once: ask them again
                if service.get_name() in SERVICES:
                    service.cancel()
            await asyncio.sleep(0.5)

    return asyncio.run(guarded())


def dump_tasks() -> None:
    """SIGUSR1: write every asyncio task and where it waits to stderr (what is it doing right now?)."""
    for task in asyncio.all_tasks():
        print(f"--- task {task.get_name()}: {task.get_coro()!r}", file=sys.stderr)
        task.print_stack(limit=8, file=sys.stderr)
    sys.stderr.flush()


def _service_main(name: str, config: AmpmqConfig) -> None:
    trace.start(name)
    if not config.mqtt_url:
        config = config.model_copy(update={"mqtt_url": "mqtt://127.0.0.1:1883"})
    run_until_signal(run_services(config, [name]))


CONFIG_HELP = "YAML config file (default: $AMPMQ_CONFIG)"


def chosen_command(argv: list[str]) -> str | None:
    """The command ``argv`` names (its first word that is not an option or ``--config``'s value), if any."""
    words = iter(argv)
    for word in words:
        if word == "--config":
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def build_parser(chosen: str | None = None) -> argparse.ArgumentParser:
    """``--config`` is taken before the command and after it (``ampmq --config F run``, ``ampmq run --config F``).

    The extra commands' modules are imported to declare their arguments: all of them for help, or for a command
    not known yet; only ``chosen``'s own when it is one of them; none for a service or ``run``. A service
    process (one per container) so loads neither the simulator nor the other services' libraries: 20 MB and
    0.3 s less for each."""
    parser = argparse.ArgumentParser(prog="ampmq", description=__doc__)
    parser.add_argument("--config", help=CONFIG_HELP)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="every service in one process (embedded broker unless AMPMQ_MQTT_URL)")
    run.add_argument("--for", dest="duration", type=float, default=None, help="stop after N seconds")
    run.add_argument("--only", nargs="*", choices=list(SERVICES), help="run only these services")
    run.add_argument("--show", action="store_true", help="print every message published under the root")
    for name in SERVICES:
        sub.add_parser(name, help=f"run the {name} service")
    if chosen in SERVICES or chosen == "run":
        extras: list[str] = []
    elif chosen in EXTRA_COMMANDS:
        extras = [EXTRA_COMMANDS[chosen]]
    else:
        extras = list(EXTRA_COMMANDS.values())
    for module in extras:
        register: Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None] = (
            importlib.import_module(module).register
        )
        register(sub)
    for command in sub.choices.values():
        # SUPPRESS: a subcommand without --config keeps the value given before it
        command.add_argument("--config", default=argparse.SUPPRESS, help=CONFIG_HELP)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser(chosen_command(sys.argv[1:] if argv is None else argv)).parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    setup_logging(config.log_level)
    try:
        if args.command == "run":
            run_until_signal(_run_all(config, args.only or list(SERVICES), args.duration, args.show))
        elif args.command in SERVICES:
            _service_main(args.command, config)
        else:
            handler: Callable[[argparse.Namespace, AmpmqConfig], int] = args.handler
            return handler(args, config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


def main_for(service: str) -> None:
    """Entry point of ``python -m services.<name>``."""
    sys.exit(main([*sys.argv[1:], service]))


if __name__ == "__main__":
    sys.exit(main())
