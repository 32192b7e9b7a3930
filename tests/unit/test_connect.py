"""The start-up connection check: each cause of a failed connection becomes one sentence with the fix.

The real broker behind these causes is exercised in tests/integration/test_security.py.
"""

from __future__ import annotations

import re
import ssl

import pytest
from aiokafka import errors

from tests.processes import free_port
from worker.errors import ConnectError
from worker.runtime.connect import check_connection, describe

PASSWORD = "s3cr3t-hunter2-password"


@pytest.fixture
def sasl_settings(make_settings):
    return make_settings(
        kafka_bootstrap_servers="broker:9093",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanisms="SCRAM-SHA-512",
        kafka_sasl_username="svc-payouts",
        kafka_sasl_password=PASSWORD,
    )


def untrusted() -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
    exc.verify_message = "self-signed certificate in certificate chain"
    return exc


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (untrusted(), "certificate of broker:9093 is not trusted .*self-signed.*KAFKA_SSL_CAFILE"),
        (
            errors.SaslAuthenticationFailed("bad"),
            "SASL authentication as 'svc-payouts' .*KAFKA_SASL_PASSWORD",
        ),
        (KeyError("v"), "SASL authentication as 'svc-payouts' \\(SCRAM-SHA-512\\) failed"),
        (errors.UnsupportedSaslMechanismError("only PLAIN"), "does not accept SASL mechanism SCRAM-SHA-512"),
        (TimeoutError(), "no answer from broker:9093 within 20s.*KAFKA_BOOTSTRAP_SERVERS"),
        (ConnectionRefusedError(111, "Connection refused"), "cannot connect .*Connection refused.*SSL_CERT"),
    ],
)
def test_each_cause_is_one_sentence_naming_what_to_fix(sasl_settings, exc, expected: str) -> None:
    sentence = describe(exc, sasl_settings, "broker:9093", 20.0)
    assert "\n" not in sentence
    assert PASSWORD not in sentence
    assert re.search(expected, sentence), sentence


def test_nobody_listening_is_one_clear_error(make_settings) -> None:
    settings = make_settings(kafka_bootstrap_servers=f"127.0.0.1:{free_port()}")
    with pytest.raises(ConnectError, match="cannot connect to 127.0.0.1:.* KAFKA_BOOTSTRAP_SERVERS"):
        check_connection(settings, timeout=5)
