"""Which broker the worker talks to, and the workarounds that follow from it: Tansu's, and only Tansu's."""

from __future__ import annotations

import pytest

from worker.errors import ConfigError
from worker.runtime.app import create_app
from worker.runtime.transport import AtLeastOnceConsumer, TansuConsumer
from worker.settings import load_settings


def test_noida_is_the_default_and_gets_the_standard_path(make_settings) -> None:
    settings = make_settings().with_embedded_broker("127.0.0.1:1")
    assert settings.embedded_broker_name == "noida" and settings.broker_quirks == "none"
    assert settings.session_timeout_s == 60  # Faust's
    assert settings.recovery_consistency_check
    consumer = create_app(settings).consumer
    assert type(consumer) is AtLeastOnceConsumer  # end offsets from ListOffsets alone


def test_embedded_tansu_brings_its_workarounds(monkeypatch, make_settings) -> None:
    monkeypatch.setenv("EMBEDDED_BROKER", "Tansu")
    settings = make_settings().with_embedded_broker("127.0.0.1:1")
    assert settings.embedded_broker_name == "tansu" and settings.broker_quirks == "tansu"
    assert settings.session_timeout_s == 10  # it holds a join for half of it
    assert not settings.recovery_consistency_check  # its end offsets under-count
    assert isinstance(create_app(settings).consumer, TansuConsumer)  # fetch high watermarks too


def test_an_external_tansu_is_named_with_broker_quirks(monkeypatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "tansu:9092")
    monkeypatch.setenv("BROKER_QUIRKS", "tansu")
    settings = load_settings()
    assert not settings.embedded_broker
    assert settings.session_timeout_s == 10 and not settings.recovery_consistency_check
    assert isinstance(create_app(settings).consumer, TansuConsumer)


def test_an_external_cluster_has_no_quirks_even_if_embedded_broker_says_tansu(monkeypatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    monkeypatch.setenv("EMBEDDED_BROKER", "tansu")  # left in the shell: it names what is not started
    settings = load_settings()
    assert settings.broker_quirks == "none" and settings.recovery_consistency_check
    assert settings.session_timeout_s == 60


def test_an_explicit_session_timeout_beats_tansus_but_its_consistency_check_stays_off(monkeypatch):
    monkeypatch.setenv("EMBEDDED_BROKER", "tansu")
    monkeypatch.setenv("RECOVERY_CONSISTENCY_CHECK", "true")
    monkeypatch.setenv("KAFKA_SESSION_TIMEOUT_S", "30")
    settings = load_settings().with_embedded_broker("127.0.0.1:1")
    assert settings.session_timeout_s == 30
    assert not settings.recovery_consistency_check  # Tansu's end offsets would fail it at every start


@pytest.mark.parametrize(("variable", "value"), [("EMBEDDED_BROKER", "kafka"), ("BROKER_QUIRKS", "redpanda")])
def test_an_unknown_broker_is_one_clear_error(monkeypatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=f"{variable}: Input should be"):
        load_settings()
