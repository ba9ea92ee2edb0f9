"""Who may read and write what on the broker, generated from the config: each user gets the topics it uses.

Users (each with its password in the compose ``.env``, see docs/deploy.md):

* one per service (``allocator``, ``ocpp-gateway``, ``meter-bridge``, ``load-adapters``): it reads exactly
  the filters its routes subscribe to — found by building the service from the config, without connecting
  — and writes only its own topics, per configured site (and per charger for the adapters: only the OCPP
  actions they send, only to the chargers of their loads; the gateway sends no command at all);
* ``meters``: the meters the meter bridge reads (a Shelly Pro 3EM publishing under its prefix);
* ``devices``: the plugs, relays, boilers and heat pumps the load adapters drive (they publish what the
  adapters subscribe to outside the ampmq tree, and read the commands the adapters send them);
* ``operator``: people and home automation (Home Assistant, Node-RED): reads the ampmq tree and the
  discovery prefix, changes the configured sites' and loads' settings, publishes Home Assistant's birth
  message (``homeassistant/status``);
* ``healthcheck``: the broker's own health check, reading ``$SYS/broker/uptime`` only.

``ampmq acl [--config F] [--out PATH]`` writes the Mosquitto ``acl_file`` (the compose ``broker-acl``
container does it at every start, from the mounted config).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .clock import SYSTEM_CLOCK
from .config import AmpmqConfig
from .topics import Leaf, Topics

if TYPE_CHECKING:
    from .mqtt import Runtime

#: A user for people and home automation (Home Assistant, Node-RED): reads everything, changes settings only.
OPERATOR = "operator"
#: The meters the meter bridge reads.
METERS = "meters"
#: The plugs, relays, boilers and heat pumps the load adapters drive.
DEVICES = "devices"
#: The broker's health check.
HEALTHCHECK = "healthcheck"
HEALTH_TOPIC = "$SYS/broker/uptime"
#: Every user the compose broker knows, in the order of the ACL file.
USERS = ("allocator", "ocpp-gateway", "meter-bridge", "load-adapters", OPERATOR, METERS, DEVICES, HEALTHCHECK)
_PLACEHOLDER_BROKER = "mqtt://acl.invalid:1883"


@dataclass
class Grant:
    """What one user may subscribe to (``read``) and publish on (``write``)."""

    read: set[str] = field(default_factory=set)
    write: set[str] = field(default_factory=set)

    def lines(self) -> list[str]:
        both = self.read & self.write
        return ([f"topic read {t}" for t in sorted(self.read - both)]
                + [f"topic write {t}" for t in sorted(self.write - both)]
                + [f"topic readwrite {t}" for t in sorted(both)])


def _own(t: Topics, service: str) -> str:
    """A service's own tree: its availability and its site-less error reports."""
    return t.service_availability(service).rsplit("/", 1)[0] + "/#"


def _placeholder(config: AmpmqConfig) -> AmpmqConfig:
    """The config with a broker that is never contacted (services are built, not run)."""
    return config.model_copy(update={"mqtt_url": _PLACEHOLDER_BROKER, "mqtt_username": None, "mqtt_password": None,
                                     "mqtt_tls": type(config.mqtt_tls)()})


def _runtime(config: AmpmqConfig, service: str) -> Runtime:
    from .mqtt import Runtime

    return Runtime(service, config.broker(), Topics(config.root))


def _service(module: str, name: str) -> Any:
    return getattr(importlib.import_module(module), name)


def _inside(t: Topics, topic: str) -> bool:
    return topic.startswith(t.root + "/")


def permissions(config: AmpmqConfig | None = None) -> dict[str, Grant]:
    """User -> :class:`Grant`, for the services, devices and sites of ``config``."""
    # the services are built from their own modules (imported by name: shared depends on no service)
    AllocatorService = _service("services.allocator.service", "AllocatorService")
    LoadAdapters = _service("services.load_adapters.service", "LoadAdapters")
    LoadAdaptersConfig = _service("services.load_adapters.service", "LoadAdaptersConfig")
    MeterBridge = _service("services.meter_bridge.bridge", "MeterBridge")
    MeterBridgeConfig = _service("services.meter_bridge.config", "MeterBridgeConfig")
    gateway_for = _service("services.ocpp_gateway.service", "gateway_for")

    config = _placeholder(config or AmpmqConfig())
    t = Topics(config.root)
    grants = {user: Grant() for user in USERS}

    # allocator: reads its routes; writes setpoints, settings, decisions, calibration of its sites
    allocator = AllocatorService(config, SYSTEM_CLOCK)
    section = allocator.section
    sites = sorted(set(section.sites) | set(section.serve_only or ())) or ["+"]
    g = grants["allocator"]
    g.read |= allocator.runtime.filters
    g.write |= {_own(t, "allocator")}
    for site in sites:
        g.write |= {t.load(site, "+", Leaf.SETPOINT), t.load(site, "+", Leaf.SETTINGS), t.site_settings(site),
                    t.decision(site), t.calibration(site), t.errors(site), t.grid_limit(site),
                    t.load(site, "+", Leaf.PLAN)}
    if section.home_assistant:
        g.write.add(f"{section.discovery_prefix}/#")
    g.read.add(_own(t, "allocator"))

    # operator: reads everything of ampmq and the discovery; changes the configured sites' and loads' settings
    g = grants[OPERATOR]
    g.read |= {t.all(), f"{section.discovery_prefix}/#"}
    g.write.add(f"{section.discovery_prefix}/status")  # Home Assistant's birth message
    for site in sites:
        g.write |= {t.site_settings_set(site), t.site_settings_set_field(site, "+"),
                    t.load(site, "+", Leaf.SETTINGS_SET), t.load_settings_set_field(site, "+", "+"),
                    t.grid_limit_set(site), t.load(site, "+", Leaf.PLAN_SET), t.prices(site), t.pv_forecast(site)}

    # ocpp-gateway: reads commands; writes what chargers say, on the sites its chargers belong to
    gateway = gateway_for(config, SYSTEM_CLOCK)
    gw = gateway.config
    g = grants["ocpp-gateway"]
    g.read |= gateway.runtime.filters | {_own(t, "ocpp-gateway")}
    g.write.add(_own(t, "ocpp-gateway"))
    for site in sorted({gw.default_site} | {c.site for c in gw.chargers.values() if c.site}):
        g.write |= {t.charger(site, "+", leaf) for leaf in
                    (Leaf.AVAILABILITY, Leaf.BOOT, Leaf.HEARTBEAT, f"{Leaf.CONNECTOR}/#", f"{Leaf.EVENT}/#",
                     f"{Leaf.RESULT}/#")}
        g.write.add(t.errors(site))

    # meter-bridge: reads its meters; writes its sites' measurements and its sources' availability
    meters_runtime = _runtime(config, "meter-bridge")
    meter_config = config.section("meter_bridge", MeterBridgeConfig)
    MeterBridge(meter_config, meters_runtime, SYSTEM_CLOCK).install()
    g = grants["meter-bridge"]
    g.read |= meters_runtime.filters | {_own(t, "meter-bridge")}
    g.write.add(_own(t, "meter-bridge"))
    for site, site_config in meter_config.sites.items():
        g.write |= {t.measurement(site), t.errors(site)}
        g.write |= {t.meter_availability(site, source.id) for source in site_config.sources}
    grants[METERS].write |= {f for f in meters_runtime.filters if not _inside(t, f)}

    # load-adapters: reads its loads' setpoints, chargers and devices; writes each load's own topics
    loads_runtime = _runtime(config, "load-adapters")
    adapters = LoadAdapters(config.section("load_adapters", LoadAdaptersConfig), loads_runtime, SYSTEM_CLOCK)
    g = grants["load-adapters"]
    g.read |= loads_runtime.filters | {_own(t, "load-adapters")}
    g.write.add(_own(t, "load-adapters"))
    for adapter in adapters.adapters:
        g.write |= set(adapter.published_topics())
        grants[DEVICES].read |= {topic for topic in adapter.device_topics() if not _inside(t, topic)}
    grants[DEVICES].write |= {f for f in loads_runtime.filters if not _inside(t, f)}

    grants[HEALTHCHECK].read.add(HEALTH_TOPIC)
    return grants


def render(config: AmpmqConfig | None = None) -> str:
    """The Mosquitto ``acl_file`` for ``config``."""
    lines = ["# Generated by `ampmq acl` from the config: each user may use only the topics it needs.", ""]
    for user, grant in permissions(config).items():
        lines.append(f"user {user}")
        lines += grant.lines()
        lines.append("")
    return "\n".join(lines)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    acl = subparsers.add_parser("acl", help="write the broker's ACL (Mosquitto acl_file) for the config")
    acl.add_argument("--out", default="-", help="file to write (default: standard output)")
    acl.set_defaults(handler=_run)


def _run(args: argparse.Namespace, config: AmpmqConfig) -> int:
    text = render(config)
    if args.out == "-":
        sys.stdout.write(text)
        return 0
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.write_text(text)
    partial.chmod(0o644)  # the broker runs as its own user
    partial.replace(out)
    print(f"wrote {out} ({', '.join(USERS)})", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> Any:
    from .cli import main as cli_main

    return cli_main(["acl", *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":
    sys.exit(main())
