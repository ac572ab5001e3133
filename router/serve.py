"""``leadrouter serve`` (the HTTP service lands with the service issue)."""

from __future__ import annotations

import argparse
import sys


def serve(args: argparse.Namespace) -> int:
    print("leadrouter serve: the HTTP service is not built yet; try `leadrouter rules check`",
          file=sys.stderr)
    return 1
