"""Owns the old entry point of the rescan CLI; the commands live in `service.cli` (`python -m service.cli rescan`).

    python -m workers.rescan_cli start --tenant demo --kind text     # = python -m service.cli rescan start ...
"""

from __future__ import annotations

import sys

from service.cli import main as service_main


def main(argv: list[str] | None = None) -> None:
    service_main(["rescan", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
