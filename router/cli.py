"""The ``leadrouter`` command."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    print("leadrouter: not built yet", file=sys.stderr)
    return 1
