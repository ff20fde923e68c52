"""Command-line options shared by every command that reads an IQ source."""

from __future__ import annotations

import argparse

from sensord.demod import FIX_BITS_DEFAULT  # not sensord.config: decode starts without it
from sensord.source.base import SAMPLE_FORMATS
from sensord.source.iqfile import open_source, rate_argument


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """FILE plus --format, --rate, --iq-order, --fix-bits."""
    parser.add_argument("file", metavar="FILE", help="IQ recording (cu8, cs8, cs16, cf32, SigMF)")
    parser.add_argument(
        "--format",
        dest="fmt",
        choices=[*SAMPLE_FORMATS, "sigmf"],
        help="sample format (default: from the extension or SigMF metadata)",
    )
    parser.add_argument(
        "--rate",
        type=rate_argument,
        default=None,
        help="sample rate 2.0 to 3.0 MS/s, e.g. 2.4e6, 2400k, 2.4M "
        "(default: from metadata or the name, else 2.4e6)",
    )
    parser.add_argument(
        "--iq-order",
        choices=("iq", "qi"),
        default="iq",
        help="qi for files that store Q first (the rsadsb recordings)",
    )
    parser.add_argument(
        "--fix-bits",
        type=int,
        choices=(0, 1, 2),
        default=None,
        help=f"bit errors corrected in DF11/17/18 (2 invents aircraft; default {FIX_BITS_DEFAULT})",
    )


def open_file_source(args: argparse.Namespace):
    """The IQ source the shared arguments describe."""
    return open_source(args.file, fmt=args.fmt, rate_hz=args.rate, iq_order=args.iq_order)
