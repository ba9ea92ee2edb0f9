"""Configuration: one YAML file (``AMPMQ_CONFIG``) with environment overrides.

Top-level keys are shared by every service; each service reads its own section::

    mqtt_url: mqtt://127.0.0.1:1883      # AMPMQ_MQTT_URL (mqtts:// for TLS)
    mqtt_username: allocator             # AMPMQ_MQTT_USERNAME (beside the URL: any character works)
    mqtt_password: S3cret@/#             # AMPMQ_MQTT_PASSWORD
    mqtt_tls:                            # AMPMQ_MQTT_TLS__CA_FILE, ..._CERT_FILE, ..._KEY_FILE
      ca_file: /certs/ca.crt             # the CA that signed the broker's certificate
      cert_file: /certs/client.crt       # a client certificate, when the broker asks for one
      key_file: /certs/client.key
    root: ampmq                          # AMPMQ_ROOT
    log_level: INFO                      # AMPMQ_LOG_LEVEL
    metrics: {port: 9100, host: 0.0.0.0} # AMPMQ_METRICS__PORT: Prometheus /metrics (off unless a port is set)
    allocator: {...}                     # AMPMQ_ALLOCATOR__<FIELD>
    ocpp_gateway: {...}
    meter_bridge: {...}
    load_adapters: {...}

A bad config stops the service with one line per error naming the field, the value and what is expected
(:class:`ConfigError`; the commands print it and exit with status 2). A value that came from an environment
variable names the variable too.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from .metrics import MetricsConfig
from .topics import DEFAULT_ROOT

if TYPE_CHECKING:
    from .mqtt import BrokerAddress

C = TypeVar("C", bound=BaseModel)
_CONFIG_PATH: ContextVar[str | None] = ContextVar("ampmq_config_path", default=None)


class ConfigError(Exception):
    """The configuration cannot be used; the message names the field and the reason."""


class SectionModel(BaseModel):
    """Base for a service's own config section: unknown keys are typos, and typos are errors."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class MqttTls(BaseModel):
    """TLS to the broker from files named in the config, never from the process's environment (``SSL_CERT_FILE``).

    ``ca_file`` alone: the broker's certificate is checked against this CA. ``cert_file`` and ``key_file``: a
    client certificate for a broker that asks for one (``require_certificate true``). Setting any of them
    means TLS, also for an ``mqtt://`` URL."""

    model_config = ConfigDict(extra="forbid")

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    @model_validator(mode="after")
    def _usable(self) -> MqttTls:
        for name in ("ca_file", "cert_file", "key_file"):
            path: Path | None = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"{name} {str(path)!r} is not a readable file")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together: a client certificate needs its key")
        if not self.configured:
            return self  # the system's CAs: nothing of ours to check (loading them took ~90 ms per config)
        from .mqtt import BrokerAddress  # the runtime's own loader: one rule for what is usable

        BrokerAddress(host="-", port=0, tls=True, ca_file=self.ca_file, cert_file=self.cert_file,
                      key_file=self.key_file).tls_context()
        return self

    @property
    def configured(self) -> bool:
        return any(p is not None for p in (self.ca_file, self.cert_file, self.key_file))


class AmpmqConfig(BaseSettings):
    """The whole configuration file; sections stay raw until their service validates them."""

    model_config = SettingsConfigDict(
        env_prefix="AMPMQ_", env_nested_delimiter="__", extra="forbid", yaml_file=None
    )

    #: Empty: ``ampmq run`` starts an embedded broker; services on their own use 127.0.0.1:1883.
    mqtt_url: str = ""
    #: Credentials beside the URL, so a password may hold any character (``@``, ``/``, ``#``, ``:``) as it
    #: is; they replace any user and password in the URL.
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    mqtt_tls: MqttTls = Field(default_factory=MqttTls)
    root: str = DEFAULT_ROOT
    log_level: str = "INFO"
    #: Where the process serves Prometheus ``/metrics`` (:mod:`shared.metrics`): nowhere unless a port is set.
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
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

    def broker(self, default: str = "mqtt://127.0.0.1:1883") -> BrokerAddress:
        """Where the broker is and how to log in: the URL, the separate credentials and the TLS files."""
        import dataclasses

        from .mqtt import BrokerAddress

        address = BrokerAddress.parse(self.broker_url(default))
        changes: dict[str, Any] = {}
        if self.mqtt_username is not None:
            changes["username"] = self.mqtt_username
        if self.mqtt_password is not None:
            changes["password"] = self.mqtt_password
        tls = self.mqtt_tls
        if tls.configured:
            changes.update(tls=True, ca_file=tls.ca_file, cert_file=tls.cert_file, key_file=tls.key_file)
        return dataclasses.replace(address, **changes) if changes else address

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


#: The longest rendering of a bad value quoted in an error line.
_VALUE_CHARS = 80
#: Plain words for pydantic's most common complaints.
_PLAIN = {"extra_forbidden": "unknown key (not a setting here: a typo?)", "missing": "required, but missing"}
#: Fields whose value is never quoted.
_SECRET_FIELDS = ("password", "secret", "token")


def _describe(exc: ValidationError, prefix: str = "") -> str:
    """One line per error: where (the dotted path, and the environment variable it came from), the value,
    and what is expected."""
    lines = []
    for err in exc.errors(include_url=False):
        path = [prefix, *(str(p) for p in err["loc"])] if prefix else [str(p) for p in err["loc"]]
        where = ".".join(path) or "config"
        source = _env_source(path)
        if source:
            where += f" (from {source})"
        message = _PLAIN.get(err["type"]) or " ".join(str(err["msg"]).removeprefix("Value error, ").split())
        line = f"config: {where}: {message}"
        value = err.get("input")
        shown = err["type"] != "missing" and not isinstance(value, dict | list)  # (a section: its path names it)
        if shown and repr(value) not in message and not any(word in where.lower() for word in _SECRET_FIELDS):
            line += f"; got {_show(err.get('input'))}"
        lines.append(line)
    return "\n".join(lines)


def _show(value: Any) -> str:
    from .secrets import redact

    text = redact(repr(value))
    return text if len(text) <= _VALUE_CHARS else text[: _VALUE_CHARS - 3] + "..."


def _env_source(path: list[str]) -> str | None:
    """The environment variable that set the value at ``path`` (``AMPMQ_ALLOCATOR__SETTLE``), if one did."""
    for depth in range(len(path), 0, -1):
        name = "AMPMQ_" + "__".join(part.upper() for part in path[:depth])
        for key in os.environ:
            if key.upper() == name or (depth == len(path) and key.upper().startswith(name + "__")):
                return key
    return None
