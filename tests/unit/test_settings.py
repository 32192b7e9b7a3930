"""Settings: defaults, env files, clear errors naming the variable, secrets never shown."""

from __future__ import annotations

import ssl
from decimal import Decimal
from pathlib import Path

import faust
import pytest

from worker.app import broker_credentials, broker_urls, create_app
from worker.errors import ConfigError
from worker.settings import load_settings, redacted

PASSWORD = "s3cr3t-hunter2-password"


def test_defaults_are_the_local_profile(make_settings) -> None:
    settings = make_settings()
    assert settings.embedded_broker
    assert (settings.topic_partitions, settings.web_port, settings.table_store) == (
        6,
        6066,
        "memory://",
    )
    assert (settings.fee_rate, settings.fee_fixed) == (Decimal("0.029"), Decimal("0.30"))
    assert settings.currencies == ("EUR", "USD", "GBP")
    assert settings.orders_per_second == 20 and settings.session_timeout_s == 10


def test_a_real_cluster_turns_the_simulator_off_and_keeps_faust_timeouts(make_settings) -> None:
    settings = make_settings(kafka_bootstrap_servers="broker-1:9092,broker-2:9092")
    assert not settings.embedded_broker
    assert settings.orders_per_second == 0 and settings.session_timeout_s == 60
    assert broker_urls(settings) == ["kafka://broker-1:9092", "kafka://broker-2:9092"]


def test_the_embedded_broker_keeps_the_local_profile(make_settings) -> None:
    settings = make_settings().with_embedded_broker("127.0.0.1:19092")
    assert broker_urls(settings) == ["kafka://127.0.0.1:19092"]
    assert settings.orders_per_second == 20 and settings.session_timeout_s == 10


def test_environment_beats_dotenv_which_beats_env_file(monkeypatch, tmp_path: Path) -> None:
    (tmp_path / "profile.env").write_text("TOPIC_PARTITIONS=3\nFEE_RATE=0.05\nWEB_PORT=7000\n")
    (tmp_path / ".env").write_text("FEE_RATE=0.04\nWEB_PORT=7001\n")
    monkeypatch.setenv("ENV_FILE", str(tmp_path / "profile.env"))
    monkeypatch.setenv("WEB_PORT", "7002")
    settings = load_settings()
    assert (settings.topic_partitions, settings.fee_rate, settings.web_port) == (
        3,
        Decimal("0.04"),
        7002,
    )


def test_the_shipped_config_examples_load(monkeypatch) -> None:
    config = Path(__file__).parents[2] / "config"
    local = load_settings(config / "local.env")
    assert local.embedded_broker
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", PASSWORD)
    cloud = load_settings(config / "confluent-cloud.env")
    assert cloud.kafka_security_protocol == "SASL_SSL" and not cloud.embedded_broker


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TOPIC_PARTITIONS", "zero"),
        ("TOPIC_PARTITIONS", "0"),
        ("FEE_RATE", "1.5"),
        ("FEE_FIXED", "0.305"),
        ("REVIEW_THRESHOLD", "-1"),
        ("STOREFRONT_ORDERS_PER_SECOND", "-3"),
        ("WEB_PORT", "70000"),
        ("TABLE_STORE", "redis://"),
        ("KAFKA_SECURITY_PROTOCOL", "TLS"),
        ("KAFKA_SASL_MECHANISMS", "GSSAPI"),
        ("CURRENCIES", "EUR,DOLLARS"),
    ],
)
def test_a_bad_value_fails_naming_the_variable(monkeypatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=variable):
        load_settings()


def test_a_missing_env_file_is_named(monkeypatch) -> None:
    monkeypatch.setenv("ENV_FILE", "config/nope.env")
    with pytest.raises(ConfigError, match="ENV_FILE.*nope.env"):
        load_settings()


def test_the_password_never_shows(monkeypatch) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "key")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", PASSWORD)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "pkc.example:9092")
    settings = load_settings()
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings)
    assert PASSWORD not in str(redacted(settings))
    assert PASSWORD not in repr(broker_credentials(settings))
    monkeypatch.setenv("WEB_PORT", "nope")
    with pytest.raises(ConfigError) as bad:
        load_settings()
    assert PASSWORD not in str(bad.value)


def test_sasl_without_credentials_is_refused(monkeypatch) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    with pytest.raises(ConfigError, match="KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"):
        load_settings()


@pytest.mark.parametrize(
    ("protocol", "mechanism", "kind", "has_tls"),
    [
        ("PLAINTEXT", "PLAIN", None, False),
        ("SSL", "PLAIN", faust.SSLCredentials, True),
        ("SASL_PLAINTEXT", "SCRAM-SHA-256", faust.SASLCredentials, False),
        ("SASL_SSL", "PLAIN", faust.SASLCredentials, True),
        ("SASL_SSL", "SCRAM-SHA-512", faust.SASLCredentials, True),
    ],
)
def test_security_settings_map_onto_faust_credentials(
    make_settings, protocol: str, mechanism: str, kind: type | None, has_tls: bool
) -> None:
    settings = make_settings(
        kafka_bootstrap_servers="b:9092",
        kafka_security_protocol=protocol,
        kafka_sasl_mechanisms=mechanism,
        kafka_sasl_username="user",
        kafka_sasl_password=PASSWORD,
    )
    credentials = broker_credentials(settings)
    if kind is None:
        assert credentials is None
        return
    assert isinstance(credentials, kind)
    assert credentials.protocol.value == protocol
    if isinstance(credentials, faust.SASLCredentials):
        assert credentials.mechanism.value == mechanism
        assert (credentials.username, credentials.password) == ("user", PASSWORD)
        assert isinstance(credentials.ssl_context, ssl.SSLContext) is has_tls


def test_the_app_takes_the_local_profile_timeouts(make_settings) -> None:
    app = create_app(make_settings().with_embedded_broker("127.0.0.1:1"))
    assert app.conf.broker_session_timeout == 10
    assert app.conf.broker_rebalance_timeout == 10
    assert app.conf.web_port == 6066
    assert app.conf.consumer_auto_offset_reset == "earliest"
