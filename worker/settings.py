"""The worker's settings: one frozen object built at start-up from the environment and env files.

Precedence, highest first: the process environment, `.env` in the working directory, then the file
named by `ENV_FILE` (for example `config/confluent-cloud.env`). Every variable is documented in
`config/local.env`.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    Field,
    FilePath,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from worker import tokens as reviewers
from worker.errors import ConfigError

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
#: The embedded brokers (`worker.broker`): `EMBEDDED_BROKER`.
BrokerName = Literal["noida", "tansu"]
#: The one `make run` and `make test` start (README, "The embedded broker": why noida-db).
DEFAULT_BROKER: BrokerName = "noida"
#: Brokers whose known deviations from Apache Kafka the worker works around: `BROKER_QUIRKS`.
BrokerQuirks = Literal["none", "tansu"]

#: Fields whose values must never be echoed, not even in a validation error.
SECRET_FIELDS = frozenset({"kafka_sasl_password", "review_api_token", "review_token"})


class Settings(BaseSettings):
    """Everything the worker reads from its environment. Field `x_y` is variable `X_Y`."""

    model_config = SettingsConfigDict(
        frozen=True,
        extra="ignore",
        case_sensitive=False,
        populate_by_name=True,
        hide_input_in_errors=True,
        env_file_encoding="utf-8",
    )

    # -- Kafka connection (the same names Confluent Cloud's client config uses) --
    kafka_bootstrap_servers: str = ""
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanisms: SaslMechanism = "PLAIN"
    kafka_sasl_username: str = ""
    kafka_sasl_password: SecretStr = SecretStr("")
    kafka_ssl_cafile: FilePath | None = None
    kafka_ssl_certfile: FilePath | None = None
    kafka_ssl_keyfile: FilePath | None = None
    kafka_session_timeout_s: float | None = Field(default=None, gt=0)
    #: The broker's known deviations that the worker works around: `tansu` (see `worker.broker.tansu`)
    #: or `none` (Apache Kafka, noida-db). Set for the embedded broker; set it for an external Tansu.
    broker_quirks: BrokerQuirks = "none"
    #: Faust's check that a table's local (RocksDB) offset is not past the changelog's end. Off on Tansu
    #: by default: Tansu 0.6 reports the base offset of the last batch as the end, so the check fails on
    #: a correct local state.
    recovery_consistency_check: bool = True
    #: How often consumed offsets are committed (Faust's `broker_commit_interval`, also used by the
    #: batch agents): after a crash, what was handled since the last commit is handled again. The
    #: crash test measured 4-6% of payouts repeated after two kills with Faust's 2.8 s, mostly ~1% with 0.5 s.
    commit_interval_s: float = Field(default=0.5, gt=0, le=60)

    # -- The pipeline --
    app_id: str = Field(default="streamline", min_length=1)
    topic_prefix: str = ""
    topic_partitions: int = Field(default=6, ge=1, le=1000)
    fee_rate: Decimal = Field(default=Decimal("0.029"), ge=0, lt=1)
    fee_fixed: Decimal = Field(default=Decimal("0.30"), ge=0)
    review_threshold: Decimal = Field(default=Decimal("1000.00"), gt=0)
    currencies: Annotated[tuple[str, ...], NoDecode] = ("EUR", "USD", "GBP")
    storefront_orders_per_second: float | None = Field(default=None, ge=0, le=100_000)

    # -- Manual review --
    #: One `name:sha256hex(token)` per reviewer (`python -m worker reviewers add NAME` writes it).
    review_tokens_file: Path | None = None
    #: A single shared token (a one-reviewer setup), recorded on decisions as `review_api_reviewer`.
    review_api_token: SecretStr = SecretStr("")
    review_api_reviewer: str = "reviewer"
    #: The `reviews` command's token: yours. Default: REVIEW_API_TOKEN.
    review_token: SecretStr = SecretStr("")
    review_sla: timedelta = timedelta(hours=24)

    # -- The process --
    web_port: int = Field(default=6066, ge=1, le=65535)
    web_bind: str = "0.0.0.0"
    #: The URL other workers reach this one at (review routing); see `advertised_url`.
    web_advertised_url: str = ""
    table_store: Literal["memory://", "rocksdb://"] = "memory://"
    data_dir: Path | None = None
    log_level: Literal["debug", "info", "warn", "error", "crit"] = "info"
    log_format: Literal["text", "json"] = "text"
    stall_timeout_s: float = Field(default=30.0, gt=0)
    #: Seconds between two trims of the heap (`worker/runtime/memory.py`); 0 never trims.
    memory_trim_interval_s: float = Field(default=1.0, ge=0, le=3600)
    #: An exception escaping a stage (a bug, not bad input): dead-letter the message and go on, or stop
    #: its partition there until `python -m worker skip` (see `worker/runtime/stage.py`).
    processing_errors: Literal["dead-letter", "stop"] = "dead-letter"

    # -- The embedded broker (only when KAFKA_BOOTSTRAP_SERVERS is empty) --
    #: `EMBEDDED_BROKER` (a field of its own name would hide the `embedded_broker` property).
    embedded_broker_name: BrokerName = Field(
        default=DEFAULT_BROKER, validation_alias=AliasChoices("embedded_broker", "embedded_broker_name")
    )
    noida_bin: Path | None = None
    tansu_bin: Path | None = None
    embedded_broker_port: int = Field(default=9092, ge=1, le=65535)

    @model_validator(mode="before")
    @classmethod
    def _tansu_defaults(cls, data: Any) -> Any:
        # Tansu's quirks and the consistency check its end offsets fail, unless set explicitly.
        if isinstance(data, dict) and _on_tansu(data):
            data = {"broker_quirks": "tansu", **data}
            data.setdefault("recovery_consistency_check", False)
        return data

    @field_validator("broker_quirks", mode="before")
    @classmethod
    def _quirks(cls, value: Any) -> Any:
        return (value.strip().lower() or "none") if isinstance(value, str) else value

    @field_validator("embedded_broker_name", mode="before")
    @classmethod
    def _broker_name(cls, value: Any) -> Any:
        return (value.strip().lower() or DEFAULT_BROKER) if isinstance(value, str) else value

    @field_validator("currencies", mode="before")
    @classmethod
    def _split_currencies(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip().upper() for part in value.split(",") if part.strip()]
        if not value:
            raise ValueError("needs at least one currency code, e.g. EUR,USD,GBP")
        bad = [code for code in value if len(code) != 3 or not code.isalpha()]
        if bad:
            raise ValueError(f"not ISO 4217 codes: {', '.join(bad)}")
        return tuple(value)

    @field_validator("review_tokens_file", mode="before")
    @classmethod
    def _unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("review_tokens_file")
    @classmethod
    def _tokens_file(cls, value: Path | None) -> Path | None:
        # A missing file is no reviewer yet (`reviewers add` creates it); a malformed one stops start-up.
        if value is not None:
            try:
                reviewers.read(value)
            except reviewers.TokensFileError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("review_api_reviewer")
    @classmethod
    def _reviewer_name(cls, value: str) -> str:
        try:
            return reviewers.check_name(value)
        except reviewers.TokensFileError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("review_sla", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator("review_sla")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be above zero")
        return value

    @field_validator("web_advertised_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not _ADVERTISED.fullmatch(value):
            raise ValueError(f"not an http(s)://host:port URL: {value!r} (e.g. http://10.0.3.7:6066)")
        return value

    @field_validator("kafka_security_protocol", "kafka_sasl_mechanisms", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _faust_level(cls, value: Any) -> Any:
        # Faust's CLI spells two levels its own way.
        if isinstance(value, str):
            value = value.strip().lower()
            return {"warning": "warn", "critical": "crit"}.get(value, value)
        return value

    @field_validator("log_format", "processing_errors", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("fee_fixed", "review_threshold")
    @classmethod
    def _cents(cls, value: Decimal) -> Decimal:
        if value.as_tuple().exponent < -2:  # type: ignore[operator]
            raise ValueError("has more than two decimal places")
        return value

    @model_validator(mode="after")
    def _sasl_needs_credentials(self) -> Settings:
        if self.kafka_security_protocol.startswith("SASL") and not (
            self.kafka_sasl_username and self.kafka_sasl_password.get_secret_value()
        ):
            raise ValueError(
                "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are required with "
                f"KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol}"
            )
        return self

    @model_validator(mode="after")
    def _key_needs_certificate(self) -> Settings:
        if self.kafka_ssl_keyfile and not self.kafka_ssl_certfile:
            raise ValueError("KAFKA_SSL_KEYFILE needs KAFKA_SSL_CERTFILE (the client certificate)")
        return self

    # -- Derived values --
    @property
    def embedded_broker(self) -> bool:
        """True when no external cluster is configured and the worker brings its own broker."""
        return not self.kafka_bootstrap_servers.strip()

    @property
    def orders_per_second(self) -> float:
        """The simulator's rate: 20/s with the embedded broker, off against a real cluster."""
        if self.storefront_orders_per_second is not None:
            return self.storefront_orders_per_second
        return 20.0 if self.embedded_broker else 0.0

    @property
    def session_timeout_s(self) -> float:
        """Faust's 60 s, but 10 s on Tansu: it holds a group join for about half of it."""
        if self.kafka_session_timeout_s is not None:
            return self.kafka_session_timeout_s
        return 10.0 if self.broker_quirks == "tansu" else 60.0

    @property
    def advertised_url(self) -> str:
        """Where the other workers reach this one: `WEB_ADVERTISED_URL`, else the bind address when it
        is a specific one, else this host's name (a wildcard bind is no address to give others)."""
        if self.web_advertised_url:
            return self.web_advertised_url
        host = self.web_bind if self.web_bind not in _WILDCARDS else socket.gethostname()
        return f"http://{f'[{host}]' if ':' in host else host}:{self.web_port}"

    @property
    def local_url(self) -> str:
        """Where a person on this host opens the worker's web server."""
        host = "127.0.0.1" if self.web_bind in _WILDCARDS else self.web_bind
        return f"http://{f'[{host}]' if ':' in host else host}:{self.web_port}"

    @property
    def datadir(self) -> Path:
        """Per-worker state directory: two workers on one host must not share it."""
        return self.data_dir or Path(".data") / f"{self.app_id}-{self.web_port}"

    def with_embedded_broker(self, bootstrap_servers: str) -> Settings:
        """These settings pointed at a running embedded broker, keeping the local profile's defaults
        and the embedded broker's quirks."""
        tansu = self.embedded_broker_name == "tansu"
        local = self.model_copy(
            update={
                "kafka_bootstrap_servers": bootstrap_servers,
                "kafka_security_protocol": "PLAINTEXT",
                "storefront_orders_per_second": self.orders_per_second,
                "broker_quirks": "tansu" if tansu else self.broker_quirks,
                "recovery_consistency_check": self.recovery_consistency_check and not tansu,
            }
        )
        return local.model_copy(update={"kafka_session_timeout_s": local.session_timeout_s})

    def topic_name(self, name: str) -> str:
        """The full name of pipeline topic `name`, with the configured prefix."""
        return f"{self.topic_prefix}{name}"

    @property
    def secrets(self) -> tuple[SecretStr, ...]:
        """Every secret value the settings hold: no log line or answer may show one."""
        return tuple(getattr(self, name) for name in sorted(SECRET_FIELDS))

    def __repr_args__(self) -> Any:
        return ((k, v) for k, v in super().__repr_args__() if k not in SECRET_FIELDS)


_ADVERTISED = re.compile(r"https?://(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?")
_WILDCARDS = frozenset({"", "0.0.0.0", "::"})


def _on_tansu(data: Mapping[str, Any]) -> bool:
    """Whether raw settings `data` (before validation) describe a worker talking to Tansu."""
    named = {key.lower(): value for key, value in data.items() if isinstance(value, str)}
    if named.get("broker_quirks", "").strip().lower() == "tansu":
        return True
    embedded = not named.get("kafka_bootstrap_servers", "").strip()
    name = named.get("embedded_broker", named.get("embedded_broker_name", ""))
    return embedded and name.strip().lower() == "tansu"


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """`"24h"`, `"90m"`, `"30s"`, `"2d"` or plain seconds (`"86400"`) as a timedelta."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(f"not a duration: {text!r} (use seconds, or a number with s, m, h or d: 24h)")
    return timedelta(seconds=float(match[1]) * _UNIT_S[match[2]])


def load_settings(env_file: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Build the settings, or raise ConfigError naming every bad variable (never its secret value)."""
    files = [f for f in (env_file or os.environ.get("ENV_FILE"), ".env") if f]
    missing = [str(f) for f in files[:-1] if not Path(f).is_file()]
    if missing:
        raise ConfigError(f"ENV_FILE: no such file: {missing[0]}")
    try:
        return Settings(_env_file=tuple(files), **overrides)  # type: ignore[call-arg]
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors(include_input=False, include_url=False):
        field = str(error["loc"][0]) if error["loc"] else ""
        name = field.upper() if field else "settings"
        lines.append(f"{name}: {error['msg']}")
    return "invalid configuration: " + "; ".join(lines)
