"""``sensord simulate``: write a simulated recording (cu8 or SigMF) and its ground truth."""

from __future__ import annotations

import argparse
import collections
import math
import sys
import time
from pathlib import Path

from sensord.errors import UserError
from sensord.geo import Site
from sensord.source.iqfile import DEFAULT_RATE_HZ, rate_argument, rate_from_name

PROGRESS_EVERY_S = 2.0  # wall time between progress lines on stderr


def _site(text: str) -> Site:
    try:
        parts = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError("site is LAT,LON[,ALT_M]") from None
    if len(parts) not in (2, 3) or not (-90 <= parts[0] <= 90 and -180 <= parts[1] <= 180):
        raise argparse.ArgumentTypeError("site is LAT,LON[,ALT_M] in degrees and metres")
    return Site(*parts)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", help="write a simulated Mode S recording with ground truth")
    p.add_argument("-o", "--output", required=True, metavar="STEM",
                   help="output stem: STEM.cu8 (or .sigmf-data/.sigmf-meta), "
                        "STEM.truth.npz, STEM.scenario.json")  # fmt: skip
    p.add_argument("--aircraft", type=int, default=20, help="number of aircraft (default 20)")
    p.add_argument("--ground", type=int, default=0,
                   help="more aircraft on the ground near the site (default 0)")  # fmt: skip
    p.add_argument("--faulty", type=int, default=0,
                   help="aircraft sending a wrong first fix and a 50 km jump")  # fmt: skip
    p.add_argument("--duration", type=float, default=60.0, help="seconds (default 60)")
    p.add_argument(
        "--rate",
        type=rate_argument,
        default=DEFAULT_RATE_HZ,
        help="sample rate, 2.0 to 3.0 MS/s (default 2.4e6); a cu8 file's name gets the "
        "rate (_2000k) unless it is 2.4e6, which readers assume",
    )
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--site", type=_site, default=Site(52.0, 4.5, 10.0),
                   help="receiver LAT,LON[,ALT_M] (default 52.0,4.5,10)")  # fmt: skip
    p.add_argument("--max-range-km", type=float, default=350.0, help="default 350")
    p.add_argument(
        "--format",
        dest="fmt",
        choices=("cu8", "sigmf", "cs16", "cf32"),
        default="cu8",
        help="cu8 or sigmf; with --radar also cs16, cf32 (two-channel layouts)",
    )
    p.add_argument("--scenario", type=Path, help="scenario JSON (as written beside a recording)")
    p.add_argument("--receivers", type=int, default=0, metavar="N",
                   help="a network of N receivers 30-60 km apart about --site: one SigMF "
                        "recording each (STEM_rxK), STEM.network.json")  # fmt: skip
    radar = p.add_argument_group("passive radar mode (docs/radar.md)")
    radar.add_argument(
        "--radar",
        action="store_true",
        help="write a two-channel FM passive radar recording instead "
        "(STEM.2ch.FMT or SigMF, STEM.radar.json, STEM.radar-truth.npz)",
    )
    radar.add_argument("--tx", default="52.2,4.6,100",
                       help="illuminator LAT,LON,ALT_M (default 52.2,4.6,100)")  # fmt: skip
    radar.add_argument("--fc", type=float, default=98.0e6, help="carrier, Hz (default 98e6)")
    radar.add_argument("--dark", type=int, default=3, help="aircraft with the transponder off")
    radar.add_argument("--drones", type=int, default=3, help="small slow drones")
    radar.add_argument("--erp-w", type=float, default=1000.0, help="illuminator ERP, W")
    radar.add_argument(
        "--skew", type=int, default=3, help="surveillance channel late by N samples (default 3)"
    )
    p.set_defaults(func=run)


def output_stem(stem: Path, rate_hz: float, fmt: str) -> Path:
    """The stem to write: a cu8 name carries the rate (``_2000k``) unless it is the rate
    readers assume, so ``sensord decode STEM.cu8`` reads it right; SigMF has metadata."""
    if fmt != "cu8":
        return stem
    named = rate_from_name(stem.name + ".cu8")
    if named is not None and abs(named - rate_hz) > 1.0:
        raise UserError(
            f"-o {stem}: the name says {named / 1e6:g} MS/s but --rate is {rate_hz / 1e6:g} MS/s"
        )
    if named is None and rate_hz != DEFAULT_RATE_HZ:
        return stem.with_name(f"{stem.name}_{rate_hz / 1e3:g}k")
    return stem


class Progress:
    """Progress lines on stderr while a long recording is written (one per few seconds)."""

    def __init__(self, duration_s: float) -> None:
        self.duration_s = duration_s
        self._next = time.monotonic() + PROGRESS_EVERY_S

    def __call__(self, fraction: float) -> None:
        now = time.monotonic()
        if now < self._next or fraction >= 1.0:
            return
        self._next = now + PROGRESS_EVERY_S
        print(
            f"simulate: {fraction:4.0%} ({fraction * self.duration_s:.0f} of "
            f"{self.duration_s:g} s written)",
            file=sys.stderr,
            flush=True,
        )


RADAR_RATE_HZ = 2.0e6


def run_radar(args: argparse.Namespace) -> int:
    """The radar mode: the scenario's aircraft (default: within 35 km) around the receiver
    site, plus dark aircraft and drones, lit by an FM station at --tx."""
    from sensord.radar.geometry import parse_site
    from sensord.sim import Scenario
    from sensord.sim.radar import RadarLink, radar_scene, record_radar

    if args.duration <= 0 or min(args.aircraft, args.dark, args.drones) < 0 or args.erp_w <= 0:
        raise UserError("--duration and --erp-w must be positive, target counts not negative")
    # the radar's default is 2.0 MS/s (blah2's), the Mode S default 2.4 MS/s
    args.rate = RADAR_RATE_HZ if args.rate == DEFAULT_RATE_HZ else args.rate
    scenario = Scenario.load(args.scenario) if args.scenario else None
    scene = radar_scene(
        args.site, parse_site(args.tx, "--tx"), args.fc, args.aircraft, args.dark, args.drones,
        seed=args.seed, max_range_m=min(args.max_range_km, 35.0) * 1e3, scenario=scenario,
        link=RadarLink(erp_w=args.erp_w, skew_samples=args.skew), rate_hz=args.rate,
    )  # fmt: skip
    stem = Path(args.output)
    if not stem.parent.is_dir():
        raise UserError(f"{stem.parent}: no such directory")
    sigmf = args.fmt == "sigmf"
    try:
        paths = record_radar(scene, stem, args.duration, args.seed, "cu8" if sigmf else args.fmt,
                             sigmf=sigmf)  # fmt: skip
    except OSError as exc:
        raise UserError(f"{stem}: cannot write the recording: {exc.strerror or exc}") from None
    kinds = collections.Counter(t.kind for t in scene.targets)
    print(
        f"radar: {dict(kinds)} targets, baseline {scene.bistatic.baseline_m / 1e3:.1f} km, "
        f"{args.duration:g} s at {args.rate / 1e6:g} MS/s; wrote "
        + ", ".join(f"{p} ({p.stat().st_size / 1e6:.1f} MB)" for p in paths),
        file=sys.stderr,
    )
    return 0


def run(args: argparse.Namespace) -> int:
    if args.radar:
        return run_radar(args)
    if args.fmt not in ("cu8", "sigmf"):
        raise UserError("--format cs16/cf32 is for --radar recordings; Mode S is cu8 or sigmf")
    if not (math.isfinite(args.duration) and args.duration > 0):
        raise UserError(f"--duration must be a positive number of seconds, got {args.duration}")
    if min(args.aircraft, args.ground, args.faulty) < 0:
        raise UserError("--aircraft/--ground/--faulty must not be negative")
    if not (math.isfinite(args.max_range_km) and 10 <= args.max_range_km <= 1000):
        raise UserError(f"--max-range-km must be between 10 and 1000, got {args.max_range_km}")
    from sensord.sim import Scenario, random_scenario, record

    if args.scenario:
        try:
            scenario = Scenario.load(args.scenario)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UserError(f"{args.scenario}: not a usable scenario: {exc}") from None
    else:
        scenario = random_scenario(
            args.aircraft,
            args.site,
            args.max_range_km * 1e3,
            seed=args.seed,
            n_ground=args.ground,
            n_faulty=args.faulty,
        )
    if not Path(args.output).parent.is_dir():
        raise UserError(f"{Path(args.output).parent}: no such directory")
    if args.receivers:  # SigMF recordings: the rate is in their metadata
        return _network(args, Path(args.output))
    stem = output_stem(Path(args.output), args.rate, args.fmt)
    try:
        paths, truth = record(
            scenario,
            stem,
            args.rate,
            args.duration,
            args.seed,
            args.fmt,
            progress=Progress(args.duration),
        )
    except OSError as exc:
        raise UserError(f"{stem}: cannot write the recording: {exc.strerror or exc}") from None
    by_df = collections.Counter(int(d) for d in truth["df"])
    files = ", ".join(f"{p} ({p.stat().st_size / 1e6:.1f} MB)" for p in paths)
    print(
        f"{len(scenario.aircraft)} aircraft, {args.duration:g} s at {args.rate / 1e6:g} MS/s: "
        f"{len(truth)} frames ({' '.join(f'DF{k}:{v}' for k, v in sorted(by_df.items()))}); "
        f"wrote {files}",
        file=sys.stderr,
    )
    return 0


def _network(args: argparse.Namespace, stem: Path) -> int:
    """``--receivers N``: one scenario heard by N receivers, one recording each."""
    from sensord.sim import Scenario
    from sensord.sim.network import network_scenario, network_sites, record_network

    if not 1 <= args.receivers <= 32:
        raise UserError("--receivers must be 1..32")
    scenario = (
        Scenario.load(args.scenario)
        if args.scenario
        else network_scenario(
            args.aircraft, args.site, args.max_range_km * 1e3, args.seed, n_ground=args.ground
        )
    )
    try:
        rec = record_network(
            scenario,
            stem,
            network_sites(scenario.site, args.receivers, args.seed),
            args.rate,
            args.duration,
            args.seed,
            progress=lambda line: print(line, file=sys.stderr),
        )
    except OSError as exc:
        raise UserError(f"{stem}: cannot write the recordings: {exc.strerror or exc}") from None
    print(f"wrote {rec.manifest}; fuse them with:", file=sys.stderr)
    print("sensord fuse " + " ".join(f"--recording {a}" for a in rec.recording_args()))
    return 0
