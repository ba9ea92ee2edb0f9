"""The allocator's section of the YAML config: defaults for sites and loads, and the start-up settle window.

    allocator:
      settle: 2.0                 # longest wait for retained state before the first decision (s)
      sites:
        home: {fuse_limit: 25.0, mode: solar_priority, timers: {min_run: 60.0}}
      loads:
        home/garage: {priority: 1, mode: standard}

Defaults apply only while no retained settings exist for the site or load; a ``/set`` always wins.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator, model_validator

from shared.config import SectionModel
from shared.models import LoadSettings, LoadSettingsSet, SiteSettings, SiteSettingsSet
from shared.topics import check_id

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
        return self

    def serves(self, site: str) -> bool:
        """Whether this instance serves ``site``."""
        return self.serve_only is None or site in self.serve_only

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
