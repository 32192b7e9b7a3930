"""The heap's free pages handed back (`worker.runtime.memory`): resident memory, measured, goes down."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest

from worker.runtime.memory import Trimmer, glibc_malloc_trim

#: Run in a process of its own, so that its heap holds only this: 120 MB in blocks of 1,000 bytes (too
#: big for Python's small-object allocator, so from malloc's heap), then all but one block in 16 freed.
#: Free blocks between live ones stay resident: malloc gives back only free memory at a heap's top.
FRAGMENTED_THEN_TRIMMED = """
import orjson, sys
from worker.runtime.memory import Trimmer, glibc_malloc_trim, resident_bytes
blocks = [bytes(1000) + bytes([n % 256]) for n in range(120_000)]
kept = blocks[::16]
del blocks
freed = resident_bytes()
trimmer = Trimmer(glibc_malloc_trim() if sys.argv[1] == "trim" else None)
trimmer()
print(orjson.dumps({"freed": freed, "trimmed": resident_bytes(), "returned": trimmer.returned}).decode())
"""

MB = 1024 * 1024


def _run(mode: str) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", FRAGMENTED_THEN_TRIMMED, mode], capture_output=True, timeout=60, check=True
    )
    return orjson.loads(done.stdout)


@pytest.mark.skipif(glibc_malloc_trim() is None, reason="malloc_trim is glibc's")
def test_a_trim_hands_the_free_pages_between_live_blocks_back_to_the_system() -> None:
    trimmed, untrimmed = _run("trim"), _run("none")

    # Without a trim the freed blocks stay resident (190 MB); with one, most go (measured: 84 MB).
    assert untrimmed["freed"] - untrimmed["trimmed"] < 10 * MB, untrimmed
    assert trimmed["freed"] - trimmed["trimmed"] > 60 * MB, trimmed
    assert trimmed["returned"] > 60 * MB and untrimmed["returned"] == 0


def test_where_the_c_library_has_no_trim_nothing_is_trimmed_and_stats_say_so() -> None:
    trimmer = Trimmer(None)

    trimmer()

    summary = trimmer.summary()
    assert (summary["trimmed"], summary["trims"], summary["returned_mb"]) == (False, 0, 0.0)
    assert 0 < summary["rss_mb"] <= summary["peak_rss_mb"]
