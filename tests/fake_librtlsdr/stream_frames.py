"""Run in a subprocess by the tests: RtlSdrSource over the fake librtlsdr -> Demodulator.

Reads until the sample clock passes ``--samples`` and prints one JSON object: frames
[[sample_idx, hex]], the source's stats, block [start, n] pairs, the gain applied. With
--unplug-after N, touches $FAKE_RTLSDR_UNPLUG after N blocks and removes it --outage-s later.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
from pathlib import Path

from sensord.demod import Demodulator
from sensord.source.iqfile import open_source


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("spec")
    p.add_argument("--samples", type=int, required=True)
    p.add_argument("--rate", type=float, default=2.0e6)
    p.add_argument("--gain-db", type=float)
    p.add_argument("--ppm", type=int, default=0)
    p.add_argument("--bias-tee", action="store_true")
    p.add_argument("--unplug-after", type=int)
    p.add_argument("--outage-s", type=float, default=0.5)
    args = p.parse_args()
    source = open_source(
        args.spec,
        rate_hz=args.rate,
        gain_db=args.gain_db,
        ppm=args.ppm,
        bias_tee=args.bias_tee,
        block_samples=32768,
    )
    demod = Demodulator(source.rate_hz)
    unplug = Path(os.environ.get("FAKE_RTLSDR_UNPLUG", "/nonexistent"))
    watchdog = threading.Timer(30, source.close)
    watchdog.start()
    frames, starts = [], []
    for block in source.blocks():
        starts.append([block.start_sample, block.n_samples])
        if args.unplug_after is not None and len(starts) == args.unplug_after:
            unplug.touch()
            threading.Timer(args.outage_s, unplug.unlink).start()
        frames.extend(demod.feed_block(block))
        if block.start_sample + block.n_samples >= args.samples:
            break
    frames.extend(demod.flush())
    source.close()
    watchdog.cancel()
    print(
        json.dumps(
            {
                "frames": [
                    [int(f["sample_idx"]), bytes(f["msg"][: f["nbits"] // 8]).hex()] for f in frames
                ],
                "stats": vars(source.stats),
                "starts": starts,
                "applied_gain_db": source.applied_gain_db,
            }
        )
    )


if __name__ == "__main__":
    main()
