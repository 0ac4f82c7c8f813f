"""`python -m solve_in_lean.check_server --idle SECONDS [--config FILE]`: the detached server that
`lean-solve server start` runs (its stdout and stderr go to the log file beside the socket)."""

from __future__ import annotations

import argparse
import sys

from solve_in_lean.check_server.server import run
from solve_in_lean.errors import LeanSolveError


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m solve_in_lean.check_server")
    parser.add_argument("--idle", type=float, required=True)
    parser.add_argument("--config")
    args = parser.parse_args()
    try:
        return run(args.idle, args.config)
    except LeanSolveError as e:
        sys.stderr.write(f"lean-solve server: {e}\n")
        return e.exit_code


if __name__ == "__main__":
    sys.exit(main())
