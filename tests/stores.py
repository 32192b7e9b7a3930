"""The table stores every table test runs on: production uses rocksdb://, laptops memory://."""

from __future__ import annotations

import pytest

STORES = ("memory://", "rocksdb://")
#: Parametrize a test over both stores, as its `table_store` argument.
each_store = pytest.mark.parametrize("table_store", STORES)
