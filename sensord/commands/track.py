"""``sensord track FILE``: replay a recording through decode and tracker; print track updates.

Each line is the JSON track payload the MQTT publisher sends (``TrackUpdate.to_dict``).
The receiver site comes from --lat/--lon/--alt-m, or from the scenario a simulated
recording carries beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sensord.chain import Chain
from sensord.commands.source_args import add_source_arguments, open_file_source
from sensord.errors import UserError
from sensord.geo import Site
from sensord.sim.scenario import Scenario
from sensord.tracker.tracker import TrackerConfig


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("track", help="replay a recording through the tracker; print JSON tracks")
    add_source_arguments(p)
    p.add_argument("--lat", type=float, help="receiver latitude, degrees (WGS84)")
    p.add_argument("--lon", type=float, help="receiver longitude, degrees (WGS84)")
    p.add_argument("--alt-m", type=float, default=0.0, help="receiver height, m (default 0)")
    p.add_argument("--max-range-km", type=float, default=500.0, help="receiver range (km)")
    p.add_argument("--imm", action="store_true", help="IMM (constant velocity + acceleration)")
    p.add_argument(
        "--confirmed-only", action="store_true", help="print confirmed and coasting tracks only"
    )
    p.set_defaults(func=run)


def site_for(args: argparse.Namespace) -> Site:
    """--lat/--lon, else the site of a simulated recording's scenario file."""
    if args.lat is not None and args.lon is not None:
        if not (-90 <= args.lat <= 90 and -180 <= args.lon <= 180):
            raise UserError("--lat must be in -90..90 and --lon in -180..180")
        return Site(args.lat, args.lon, args.alt_m)
    if args.lat is not None or args.lon is not None:
        raise UserError("give both --lat and --lon")
    stem = Path(args.file)
    for suffix in (".cu8", ".sigmf-data", ".sigmf-meta"):
        if stem.suffix == suffix:
            stem = stem.with_suffix("")
    scenario = stem.with_suffix(".scenario.json")
    if scenario.exists():
        return Scenario.load(scenario).site
    raise UserError("the receiver site is needed: give --lat and --lon")


def run(args: argparse.Namespace) -> int:
    site = site_for(args)
    source = open_file_source(args)
    chain = Chain(
        source.rate_hz,
        site,
        fix_bits=args.fix_bits,
        max_range_m=args.max_range_km * 1e3,
        tracker_config=TrackerConfig(imm=args.imm),
    )
    out = sys.stdout
    n = 0
    for step in chain.run(source):
        for update in step.updates:
            if args.confirmed_only and update.status.value in ("tentative",):
                continue
            out.write(json.dumps(update.to_dict(), separators=(",", ":")) + "\n")
            n += 1
    out.flush()
    s = chain.tracker.stats
    print(
        f"{n} track updates, {s.tracks_created} tracks, {chain.demod.stats.frames} frames, "
        f"gated {sum(s.gated.values())}, re-initialised {s.reinitialised}",
        file=sys.stderr,
    )
    return 0
