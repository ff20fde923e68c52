"""The ``sensord`` command: one subcommand per job, each in ``sensord.commands``.

Expected faults (bad file, bad config, broker down) end with a one-line message on
stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from sensord import __version__
from sensord.errors import UserError

# subcommand name -> module in sensord.commands providing add_parser(subparsers) and run(args)
COMMANDS = {
    "decode": "decode",
    "simulate": "simulate",
    "track": "track",
    "run": "run",
    "devices": "devices",
    "watch": "watch",
    "replay": "replay",
    "demo": "demo",
    "plot": "plot",
    "radar": "radar",
    "fuse": "fuse",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sensord", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"sensord {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMANDS.values():
        module = importlib.import_module(f"sensord.commands.{module_name}")
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``sensord`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"sensord {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # stdout closed by the reader (| head): not an error of ours
        sys.stderr.close()
        return 0
