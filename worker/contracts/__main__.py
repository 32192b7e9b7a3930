"""`python -m worker.contracts DIR`: write the topic contracts to DIR (`make contracts`)."""

from __future__ import annotations

import sys
from pathlib import Path

from worker.contracts.files import write


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m worker.contracts DIRECTORY", file=sys.stderr)
        return 2
    names = write(Path(argv[0]))
    print(f"wrote {len(names)} contract files to {argv[0]}: {', '.join(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
