"""Settings: defaults, env files, clear errors naming the variable, secrets never shown."""

from __future__ import annotations

import re
import socket
import ssl
from decimal import Decimal
from pathlib import Path

import faust
import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from tests.tls import Authority
from worker.errors import ConfigError
from worker.runtime.app import create_app
from worker.runtime.kafka import broker_credentials, broker_urls
from worker.settings import Settings, load_settings

PASSWORD = "s3cr3t-hunter2-password"
TOKEN = "rvw-tok-5c1d8e2f"


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
    assert settings.embedded_broker_name == "noida" and settings.broker_quirks == "none"
    assert settings.orders_per_second == 20 and settings.session_timeout_s == 60


def test_a_real_cluster_turns_the_simulator_off_and_keeps_faust_timeouts(make_settings) -> None:
    settings = make_settings(kafka_bootstrap_servers="broker-1:9092,broker-2:9092")
    assert not settings.embedded_broker
    assert settings.orders_per_second == 0 and settings.session_timeout_s == 60
    assert broker_urls(settings) == ["kafka://broker-1:9092", "kafka://broker-2:9092"]


def test_the_embedded_broker_keeps_the_local_profile(make_settings) -> None:
    settings = make_settings().with_embedded_broker("127.0.0.1:19092")
    assert broker_urls(settings) == ["kafka://127.0.0.1:19092"]
    assert settings.orders_per_second == 20 and settings.session_timeout_s == 60


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
        ("LOG_FORMAT", "xml"),
        ("STALL_TIMEOUT_S", "0"),
        ("KAFKA_SSL_CAFILE", "/nowhere/ca.pem"),
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
    monkeypatch.setenv("REVIEW_API_TOKEN", TOKEN)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "pkc.example:9092")
    settings = load_settings()
    for secret in (PASSWORD, TOKEN):
        assert secret not in repr(settings) and secret not in str(settings)
    assert settings.review_api_token.get_secret_value() == TOKEN
    assert PASSWORD not in repr(broker_credentials(settings))
    monkeypatch.setenv("WEB_PORT", "nope")
    with pytest.raises(ConfigError) as bad:
        load_settings()
    assert PASSWORD not in str(bad.value)


def test_sasl_without_credentials_is_refused(monkeypatch) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    with pytest.raises(ConfigError, match="KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"):
        load_settings()


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"])
def test_security_settings_map_onto_what_aiokafka_receives(
    make_settings, protocol: str, mechanism: str
) -> None:
    settings = make_settings(
        kafka_bootstrap_servers="b:9092",
        kafka_security_protocol=protocol,
        kafka_sasl_mechanisms=mechanism,
        kafka_sasl_username="user",
        kafka_sasl_password=PASSWORD,
    )
    credentials = broker_credentials(settings)
    # The worker's consumer and producer get exactly these keyword arguments (Faust's own mapping).
    auth = credentials_to_aiokafka_auth(credentials)
    assert auth["security_protocol"] == protocol
    assert isinstance(auth.get("ssl_context"), ssl.SSLContext) is protocol.endswith("SSL")
    if protocol.startswith("SASL"):
        assert isinstance(credentials, faust.SASLCredentials)
        assert auth["sasl_mechanism"] == mechanism
        assert (auth["sasl_plain_username"], auth["sasl_plain_password"]) == ("user", PASSWORD)
    else:
        assert "sasl_mechanism" not in auth


def test_the_app_takes_the_local_profile_timeouts(make_settings) -> None:
    app = create_app(make_settings(embedded_broker_name="tansu").with_embedded_broker("127.0.0.1:1"))
    assert app.conf.broker_session_timeout == 10
    assert app.conf.broker_rebalance_timeout == 10
    assert app.conf.web_port == 6066
    assert app.conf.consumer_auto_offset_reset == "earliest"


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Path]:
    """A CA, a client certificate it signed, and a key that belongs to another certificate."""
    directory = tmp_path_factory.mktemp("pki")
    ca, other = Authority(directory, "ca"), Authority(directory, "other")
    client, stranger = ca.issue("worker"), other.issue("stranger")
    return {"ca": ca.pem.cert, "cert": client.cert, "key": client.key, "wrong_key": stranger.key}


@pytest.mark.parametrize("protocol", ["SSL", "SASL_SSL"])
def test_mutual_tls_loads_the_ca_and_the_client_certificate(make_settings, pki, protocol: str) -> None:
    settings = make_settings(
        kafka_bootstrap_servers="b:9093",
        kafka_security_protocol=protocol,
        kafka_sasl_username="user",
        kafka_sasl_password=PASSWORD,
        kafka_ssl_cafile=pki["ca"],
        kafka_ssl_certfile=pki["cert"],
        kafka_ssl_keyfile=pki["key"],
    )
    credentials = broker_credentials(settings)
    context = getattr(credentials, "ssl_context", None) or getattr(credentials, "context", None)
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert [dict(c["subject"][0])["commonName"] for c in context.get_ca_certs()] == ["ca"]


def test_a_key_that_does_not_match_the_certificate_names_both_variables(make_settings, pki) -> None:
    settings = make_settings(
        kafka_bootstrap_servers="b:9093",
        kafka_security_protocol="SSL",
        kafka_ssl_certfile=pki["cert"],
        kafka_ssl_keyfile=pki["wrong_key"],
    )
    with pytest.raises(ConfigError, match="KAFKA_SSL_CERTFILE/KAFKA_SSL_KEYFILE.*KEY_VALUES_MISMATCH"):
        broker_credentials(settings)


def test_a_ca_file_that_holds_no_certificate_is_named(make_settings, tmp_path: Path) -> None:
    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate")
    settings = make_settings(
        kafka_bootstrap_servers="b:9093", kafka_security_protocol="SSL", kafka_ssl_cafile=garbage
    )
    with pytest.raises(ConfigError, match="KAFKA_SSL_CAFILE"):
        broker_credentials(settings)


def test_a_client_key_without_its_certificate_is_refused(monkeypatch, pki) -> None:
    monkeypatch.setenv("KAFKA_SSL_KEYFILE", str(pki["key"]))
    with pytest.raises(ConfigError, match="KAFKA_SSL_KEYFILE needs KAFKA_SSL_CERTFILE"):
        load_settings()


def test_json_logs_reach_faust_through_its_logging_config(make_settings) -> None:
    app = create_app(make_settings(log_format="JSON").with_embedded_broker("127.0.0.1:1"))
    assert app.conf.logging_config["formatters"]["json"]
    assert create_app(make_settings().with_embedded_broker("127.0.0.1:1")).conf.logging_config is None


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"web_advertised_url": "http://10.0.3.7:6066/"}, "http://10.0.3.7:6066"),
        ({"web_bind": "10.0.3.7", "web_port": 7000}, "http://10.0.3.7:7000"),
        ({"web_bind": "fd00::7"}, "http://[fd00::7]:6066"),
        ({"web_bind": "0.0.0.0"}, f"http://{socket.gethostname()}:6066"),
        ({"web_bind": "::"}, f"http://{socket.gethostname()}:6066"),
    ],
)
def test_a_worker_advertises_an_address_the_others_can_reach(make_settings, values, expected) -> None:
    assert make_settings(**values).advertised_url == expected


@pytest.mark.parametrize("url", ["10.0.3.7:6066", "ftp://host:1", "http://host:6066/path", "http://"])
def test_an_advertised_url_that_is_no_http_address_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="WEB_ADVERTISED_URL"):
        load_settings(web_advertised_url=url)


def test_config_local_env_names_every_setting() -> None:
    # The README sends readers to config/local.env for every variable: a new setting must be there.
    text = (Path(__file__).resolve().parents[2] / "config" / "local.env").read_text()
    names = [
        (field.validation_alias.choices[0] if field.validation_alias else name).upper()  # type: ignore[union-attr]
        for name, field in Settings.model_fields.items()
    ]
    missing = [name for name in names if not re.search(rf"^(# )?{name}=", text, re.MULTILINE)]
    assert not missing, f"config/local.env does not describe {missing}"
