"""``sensord decode FILE``: demodulate a recording and print its frames.

Output is dump1090's raw format with the 12 MHz timestamp (``@`` + 12 hex digits +
frame hex + ``;``), or one JSON object per frame with ``--json``. A one-line summary
goes to stderr.
"""

from __future__ import annotations

import argparse
import sys

from sensord.commands.source_args import add_source_arguments, open_file_source


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("decode", help="demodulate an IQ recording and print Mode S frames")
    add_source_arguments(p)
    p.add_argument("--json", action="store_true", help="one JSON object per frame")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sensord.demod import FIX_BITS_DEFAULT, Demodulator
    from sensord.frames import frame_json, raw_line

    source = open_file_source(args)
    fix_bits = FIX_BITS_DEFAULT if args.fix_bits is None else args.fix_bits
    demod = Demodulator(source.rate_hz, fix_bits=fix_bits)
    fmt_line = frame_json if args.json else raw_line
    out = sys.stdout
    for block in source.blocks():
        for frame in demod.feed_block(block):
            out.write(fmt_line(frame) + "\n")
    for frame in demod.flush():
        out.write(fmt_line(frame) + "\n")
    out.flush()
    s = demod.stats
    by_df = " ".join(f"DF{df}:{n}" for df, n in sorted(s.frames_by_df.items()))
    print(
        f"{s.frames} frames ({by_df or 'none'}), {s.corrected} corrected, "
        f"{s.samples / source.rate_hz:.3f} s of samples at {source.rate_hz / 1e6:g} MS/s",
        file=sys.stderr,
    )
    return 0
