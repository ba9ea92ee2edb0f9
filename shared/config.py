"""Configuration: one YAML file (``AMPMQ_CONFIG``) with environment overrides.

Top-level keys are shared by every service; each service reads its own section::

    mqtt_url: mqtt://127.0.0.1:1883      # AMPMQ_MQTT_URL
    root: ampmq                          # AMPMQ_ROOT
    log_level: INFO                      # AMPMQ_LOG_LEVEL
    allocator: {...}                     # AMPMQ_ALLOCATOR__<FIELD>
    ocpp_gateway: {...}
    meter_bridge: {...}
    load_adapters: {...}

A bad config stops the service with a message naming the field and the reason (:class:`ConfigError`).
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from .topics import DEFAULT_ROOT

C = TypeVar("C", bound=BaseModel)
_CONFIG_PATH: ContextVar[str | None] = ContextVar("ampmq_config_path", default=None)


class ConfigError(Exception):
    """The configuration cannot be used; the message names the field and the reason."""


class SectionModel(BaseModel):
    """Base for a service's own config section: unknown keys are typos, and typos are errors."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class AmpmqConfig(BaseSettings):
    """The whole configuration file; sections stay raw until their service validates them."""

    model_config = SettingsConfigDict(
        env_prefix="AMPMQ_", env_nested_delimiter="__", extra="forbid", yaml_file=None
    )

    #: Empty: ``ampmq run`` starts an embedded broker; services on their own use 127.0.0.1:1883.
    mqtt_url: str = ""
    root: str = DEFAULT_ROOT
    log_level: str = "INFO"
    allocator: dict[str, Any] = Field(default_factory=dict)
    ocpp_gateway: dict[str, Any] = Field(default_factory=dict)
    meter_bridge: dict[str, Any] = Field(default_factory=dict)
    load_adapters: dict[str, Any] = Field(default_factory=dict)
    site_simulator: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = _CONFIG_PATH.get() or os.environ.get("AMPMQ_CONFIG")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if path:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return tuple(sources)

    @field_validator("mqtt_url")
    @classmethod
    def _usable_url(cls, url: str) -> str:
        """An unusable broker URL is a config error (exit 2), never a service crash-looping on it."""
        if url:
            from .mqtt import BrokerAddress  # the runtime's own parser: one rule for what is usable

            BrokerAddress.parse(url)
        return url

    def broker_url(self, default: str = "mqtt://127.0.0.1:1883") -> str:
        return self.mqtt_url or default

    def section(self, name: str, model: type[C]) -> C:
        """Validate one service's section with its model; raise :class:`ConfigError` naming the field."""
        try:
            return model.model_validate(getattr(self, name))
        except ValidationError as exc:
            raise ConfigError(_describe(exc, prefix=name)) from exc


def load_config(path: str | Path | None = None, **overrides: Any) -> AmpmqConfig:
    """Load the config from ``path`` (else ``AMPMQ_CONFIG``), the environment and ``overrides``."""
    file = str(path) if path is not None else os.environ.get("AMPMQ_CONFIG")
    if file:
        _check_yaml(Path(file))
    token = _CONFIG_PATH.set(file)  # the file for this call only: the environment is left as it was
    try:
        return AmpmqConfig(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from exc
    finally:
        _CONFIG_PATH.reset(token)


def _check_yaml(path: Path) -> None:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top")


def _describe(exc: ValidationError, prefix: str = "") -> str:
    lines = []
    for err in exc.errors(include_url=False):
        where = ".".join([prefix, *(str(p) for p in err["loc"])] if prefix else [str(p) for p in err["loc"]])
        lines.append(f"config: {where or 'config'}: {err['msg']}")
    return "\n".join(lines)
