"""The ``sensord`` command: one subcommand per job, each in ``sensord.commands``.

Expected faults (bad file, bad flag, bad config, broker down) end with a one-line message
on stderr and a non-zero exit status, never a traceback. Only the module of the command
being run is imported (``sensord --help`` imports none), so a start costs what the command
needs and no more.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import NoReturn

import sensord
from sensord import __version__
from sensord.errors import UserError

# subcommand -> (module in sensord.commands with add_parser(subparsers) and run(args), help)
COMMANDS = {
    "decode": ("decode", "demodulate an IQ recording and print Mode S frames"),
    "simulate": ("simulate", "write a simulated Mode S recording with ground truth"),
    "track": ("track", "replay a recording through the tracker; print JSON tracks"),
    "run": ("run", "run the daemon (configured by a TOML file)"),
    "devices": ("devices", "list attached RTL-SDR dongles and their tuner gains"),
    "watch": ("watch", "show the live track table from MQTT"),
    "replay": ("replay", "replay a recording with progress, table and summary"),
    "demo": ("demo", "replay the bundled simulated recording (no hardware)"),
    "plot": ("plot", "track map and coverage plot (PNG) from track JSON lines"),
    "fuse": ("fuse", "fuse several nodes' detections into one air picture"),
    "radar": ("radar", "passive radar detections from a two-channel recording or pair"),
}
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JOURNAL_FORMAT = "%(levelname)s %(name)s: %(message)s"  # journald stamps the time itself


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line (``sensord decode: error: ...``), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _command_in(argv: list[str]) -> str | None:
    """The subcommand named on the command line: the first word that is not an option."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; only the command named in ``argv`` gets its module imported and its
    options (the others are listed by name and help)."""
    chosen = _command_in(sys.argv[1:] if argv is None else argv)
    parser = OneLineParser(prog="sensord", description=(sensord.__doc__ or "").strip())
    parser.add_argument("--version", action="version", version=f"sensord {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="debug output (-vv: of libraries too)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        if name == chosen:
            importlib.import_module(f"sensord.commands.{module_name}").add_parser(sub)
        else:
            sub.add_parser(name, help=help_text, add_help=False)
    return parser


def under_journald(environ: dict[str, str] | None = None) -> bool:
    """True when stderr is connected to the systemd journal (``JOURNAL_STREAM`` names
    stderr's device and inode), where journald adds the timestamps itself."""
    value = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    dev, _, ino = value.partition(":")
    try:
        st = os.fstat(2)
        return (st.st_dev, st.st_ino) == (int(dev), int(ino))
    except (OSError, ValueError):
        return False


def setup_logging(verbose: int) -> None:
    """sensord's own events at INFO (DEBUG with -v), libraries' at WARNING (DEBUG with -vv);
    no timestamps under journald."""
    logging.basicConfig(
        level=logging.DEBUG if verbose >= 2 else logging.WARNING,
        format=JOURNAL_FORMAT if under_journald() else LOG_FORMAT,
    )
    logging.getLogger("sensord").setLevel(logging.DEBUG if verbose else logging.INFO)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``sensord`` console script."""
    args = build_parser(argv).parse_args(argv)
    setup_logging(args.verbose)
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
