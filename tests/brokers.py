"""Which broker this test session runs against, for fixtures and for skip reasons.

`EMBEDDED_BROKER` (noida-db by default, or Tansu) names the embedded broker each test process starts;
`KAFKA_BOOTSTRAP_SERVERS` names an external cluster instead, with `BROKER_QUIRKS=tansu` if it is a Tansu.
"""

from __future__ import annotations

import os
from typing import cast

import pytest

from worker.settings import DEFAULT_BROKER, BrokerName, BrokerQuirks

EXTERNAL = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")
#: The embedded broker of this session, as `make run` would pick it.
BROKER = cast(BrokerName, os.environ.get("EMBEDDED_BROKER", "").strip().lower() or DEFAULT_BROKER)
#: The quirks of the broker under test, which every worker of the session is told.
QUIRKS = cast(
    BrokerQuirks, "tansu" if not EXTERNAL and BROKER == "tansu" else os.environ.get("BROKER_QUIRKS", "none")
)
#: A name for the broker under test, in skip reasons.
UNDER_TEST = f"the external cluster {EXTERNAL}" if EXTERNAL else f"the embedded {BROKER}"


def broken_on(name: BrokerName, bug: str, reproduction: str) -> pytest.MarkDecorator:
    """Skip the test on the embedded broker `name`, whose `bug` (shown by the test `reproduction`, in
    tests/integration/test_broker_quirks.py) it cannot pass."""
    reason = f"{name} cannot pass it: {bug} (reproduced by test_broker_quirks.py::{reproduction})"
    return pytest.mark.skipif(not EXTERNAL and name == BROKER, reason=reason)
