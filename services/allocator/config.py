"""The allocator's section of the YAML config: the sites it serves, defaults for sites and loads, and how
it judges the age of what it hears.

    allocator:
      settle: 2.0                 # longest wait for retained state before the first decision (s)
      sites:
        home: {fuse_limit: 25.0, mode: solar_priority, timers: {min_run: 60.0}}
      loads:
        home/garage: {priority: 1, mode: standard}
      load_stale_after: 30.0      # a load state older than this (s) makes the load unavailable
      future_tolerance: 5.0       # a reading or state stamped further ahead of our clock is not trusted (s)
      grid_limits:                # the grid operator's signal per site (see grid_limit.py)
        home: {required: true, signal_timeout: 900.0, fallback: {controllable_cap_w: 4200.0}}

Only the sites named here (in ``sites`` or ``serve_only``) are served. Defaults apply only while no retained
settings exist for the site or load, and a ``/set`` wins over them, except for the installation's limits
(see :mod:`.limits`): a ``/set`` may lower the fuse, circuit, import and imbalance limits and raise the
margin, never the other way past what is configured here.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator, model_validator

from shared.config import SectionModel
from shared.models import LoadSettings, LoadSettingsSet, SiteSettings, SiteSettingsSet
from shared.topics import check_id

from .grid_limit import GridLimitConfig
from .settings_store import SettingsRejected, check_time_zones

#: A ``<site>/<load>`` key of the ``loads`` section.
SiteId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
LoadKey = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}/[a-z0-9][a-z0-9-]{0,63}$")]


class AllocatorConfig(SectionModel):
    """``allocator:`` in the config file."""

    #: Longest wait after connecting for retained settings and memory before the first decision (s).
    settle: Annotated[float, Field(ge=0.0, le=60.0)] = 2.0
    #: Site id -> the site settings fields that differ from the defaults (as in a ``/set``).
    sites: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: ``<site>/<load>`` -> the load settings fields that differ from the defaults.
    loads: dict[LoadKey, dict[str, Any]] = Field(default_factory=dict)
    #: Partitioning: the only sites this instance serves (None: every site under the root).
    serve_only: list[SiteId] | None = None
    #: Publish Home Assistant MQTT discovery for every site and load served.
    home_assistant: bool = True
    discovery_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$")] = "homeassistant"
    #: Detect each load's phase mapping and each grid phase's polarity from load steps (``<site>/calibration``).
    calibration: bool = True
    #: Shortest time between two publications of a site's calibration (s); a new finding goes out at once.
    calibration_interval: Annotated[float, Field(ge=0.0, le=3600.0)] = 5.0
    #: How far apart (s) the meter and a load's adapter may report the same step (see ``calibration.py``).
    calibration_lag: Annotated[float, Field(ge=0.0, le=60.0)] = 5.0
    #: A load whose latest state is older than this (s, on the allocator's clock) is unavailable. The load
    #: adapters re-publish every state at least every ``state_interval`` (10 s by default), changed or not.
    load_stale_after: Annotated[float, Field(gt=0.0, le=3600.0)] = 30.0
    #: A reading or load state stamped more than this (s) ahead of the allocator's clock is reported and not
    #: trusted; one stamped ahead by less counts as received now.
    future_tolerance: Annotated[float, Field(ge=0.0, le=300.0)] = 5.0
    #: The service that publishes the load states: while its availability is ``offline`` (its Last Will after
    #: a crash), every load is unavailable.
    load_service: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")] = "load-adapters"
    #: Shortest time (s) between two reports of the same problem from the same origin (a future timestamp,
    #: an unserved site): the first goes out at once, the repeats are not a flood.
    report_interval: Annotated[float, Field(ge=0.0, le=86_400.0)] = 300.0
    #: Departure plans (docs/plans.md) are worked out again at least this often (s) as the fuse headroom and
    #: the delivered energy move; new prices, a new plan or a new SOC replan at the next decision.
    plan_interval: Annotated[float, Field(ge=1.0, le=3600.0)] = 60.0
    #: Site id -> how the grid operator's signal reaches it and what applies when it goes silent.
    grid_limits: dict[SiteId, GridLimitConfig] = Field(default_factory=dict)

    @field_validator("sites")
    @classmethod
    def _sites_valid(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for site, fields in value.items():
            check_id(site, "site")
            try:
                SiteSettingsSet.model_validate(fields)
                check_time_zones(SiteSettings.model_validate({**fields, "site": site}))
            except ValidationError as exc:
                raise ValueError(f"site {site!r}: {_first_errors(exc)}") from None
            except SettingsRejected as exc:
                raise ValueError(f"site {site!r}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _loads_valid(self) -> AllocatorConfig:
        for key, fields in self.loads.items():
            site, load = key.split("/")
            try:
                LoadSettingsSet.model_validate(fields)
                LoadSettings.model_validate({**fields, "site": site, "load": load})
            except ValidationError as exc:
                raise ValueError(f"load {key!r}: {_first_errors(exc)}") from None
        for site in self.grid_limits:
            if not self.configured(site):
                raise ValueError(f"grid_limits names site {site!r}, which is not configured (sites, serve_only)")
        return self

    def configured(self, site: str) -> bool:
        """Whether the installation's config names ``site`` (in ``sites`` or ``serve_only``)."""
        return site in self.sites or (self.serve_only is not None and site in self.serve_only)

    def serves(self, site: str) -> bool:
        """Whether this instance serves ``site``: a configured site, and one of ``serve_only`` if given."""
        return self.configured(site) and (self.serve_only is None or site in self.serve_only)

    def load_configured(self, site: str, load: str) -> bool:
        return f"{site}/{load}" in self.loads

    def site_defaults(self, site: str) -> SiteSettings:
        """The configured settings of ``site`` (the model's defaults where the config says nothing)."""
        return SiteSettings.model_validate({**self.sites.get(site, {}), "site": site})

    def load_defaults(self, site: str, load: str) -> LoadSettings | None:
        """The configured settings of a load, or None when the config names it not."""
        fields = self.loads.get(f"{site}/{load}")
        if fields is None:
            return None
        return LoadSettings.model_validate({**fields, "site": site, "load": load})


def _first_errors(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False)[:4]:
        where = ".".join(str(p) for p in err["loc"]) or "value"
        got = "" if err["type"] == "missing" else f" (got {err.get('input')!r:.60})"
        parts.append(f"{where}: {err['msg']}{got}")
    return "; ".join(parts)
