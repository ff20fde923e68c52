"""``sensord track FILE``: replay a recording through decode and tracker; print track updates.

Each line is the JSON track payload the MQTT publisher sends (``TrackUpdate.to_dict``).
The receiver site comes from --lat/--lon/--alt-m, or from the scenario a simulated
recording carries beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sensord import config as config_mod
from sensord.commands.source_args import add_source_arguments, open_file_source
from sensord.errors import UserError
from sensord.geo import Site

if TYPE_CHECKING:
    from sensord.tracker.tracker import TrackerConfig


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("track", help="replay a recording through the tracker; print JSON tracks")
    add_source_arguments(p)
    add_chain_arguments(p)
    p.add_argument(
        "--confirmed-only", action="store_true", help="print confirmed and coasting tracks only"
    )
    p.set_defaults(func=run)


def add_chain_arguments(p: argparse.ArgumentParser) -> None:
    """Receiver and tracker options shared by track and replay; unset flags take the
    configuration file's values (-c), else the defaults of ``sensord.config``."""
    p.add_argument(
        "-c", "--config", help="take [receiver], [demod] and [tracker] from this TOML file"
    )
    p.add_argument("--lat", type=float, help="receiver latitude, degrees (WGS84)")
    p.add_argument("--lon", type=float, help="receiver longitude, degrees (WGS84)")
    p.add_argument("--alt-m", type=float, help="receiver height, m (default 0)")
    p.add_argument(
        "--max-range-km",
        type=float,
        help=f"receiver range, km (default {config_mod.ReceiverConfig.max_range_km:g})",
    )
    p.add_argument(
        "--imm", action="store_true", default=None, help="IMM (constant velocity + acceleration)"
    )


@dataclass
class ChainSettings:
    """What a replay of a recording runs with: the site and the chain's parameters."""

    site: Site
    max_range_m: float
    fix_bits: int
    tracker: TrackerConfig


# flag -> (section, key) it sets in the configuration
CHAIN_FLAGS = {
    "lat": ("receiver", "lat_deg"),
    "lon": ("receiver", "lon_deg"),
    "alt_m": ("receiver", "alt_m"),
    "max_range_km": ("receiver", "max_range_km"),
    "imm": ("tracker", "imm"),
}


def chain_settings(args: argparse.Namespace) -> ChainSettings:
    """The configuration file's (or default) values, overridden by the flags given; the
    site from --lat/--lon, the file, or a simulated recording's scenario."""
    cfg = config_mod.load(args.config) if args.config else config_mod.Config()
    if (args.lat is None) != (args.lon is None):
        raise UserError("give both --lat and --lon")
    for flag, (section, key) in CHAIN_FLAGS.items():
        value = getattr(args, flag)
        if value is not None:
            cfg.override(section, key, value, "--" + flag.replace("_", "-"))
    if args.fix_bits is not None:
        cfg.override("demod", "fix_bits", args.fix_bits, "--fix-bits")
    rx = cfg.receiver
    if args.lat is not None or args.config:
        site = Site(rx.lat_deg, rx.lon_deg, rx.alt_m)
    else:
        site = _scenario_site(args)
    return ChainSettings(site, rx.max_range_km * 1e3, cfg.demod.fix_bits, cfg.tracker)


def _scenario_site(args: argparse.Namespace) -> Site:
    """The site of a simulated recording's scenario file beside it."""
    from sensord.sim.scenario import Scenario

    stem = Path(args.file)
    for suffix in (".cu8", ".sigmf-data", ".sigmf-meta"):
        if stem.suffix == suffix:
            stem = stem.with_suffix("")
    scenario = stem.with_suffix(".scenario.json")
    if scenario.exists():
        return Scenario.load(scenario).site
    raise UserError("the receiver site is needed: give --lat and --lon")


def run(args: argparse.Namespace) -> int:
    from sensord.chain import Chain

    settings = chain_settings(args)
    source = open_file_source(args)
    chain = Chain(
        source.rate_hz,
        settings.site,
        fix_bits=settings.fix_bits,
        max_range_m=settings.max_range_m,
        tracker_config=settings.tracker,
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
