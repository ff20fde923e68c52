"""``sensord plot TRACKS.jsonl``: track map and coverage plot to PNG from track payloads
(one JSON object per line, as ``sensord track`` prints or MQTT subscribers receive)."""

from __future__ import annotations

import argparse
import json

from sensord.errors import UserError
from sensord.geo import Site
from sensord.plot import plot_tracks
from sensord.ui.table import update_from_payload


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "plot", help="track map and coverage plot (PNG) from track JSON lines"
    )
    p.add_argument("file", metavar="TRACKS", help="JSON lines of track payloads")
    p.add_argument("--lat", type=float, help="receiver latitude, degrees (WGS84)")
    p.add_argument("--lon", type=float, help="receiver longitude, degrees (WGS84)")
    p.add_argument("--alt-m", type=float, default=0.0, help="receiver height, m")
    p.add_argument("-o", "--output", help="PNG path (default sensord-tracks.png / -range-doppler)")
    rd = p.add_argument_group("range-Doppler map of a two-channel radar recording")
    rd.add_argument(
        "--range-doppler",
        action="store_true",
        help="TRACKS is a two-channel recording: draw one CPI's map and detections",
    )
    rd.add_argument("--cpi-index", type=int, default=0, help="which CPI (default 0, the first)")
    rd.add_argument("--fc", type=float, default=98e6, help="carrier, Hz (range rate only)")
    from sensord.commands.radar import add_source_arguments

    add_source_arguments(rd)
    p.set_defaults(func=run)


def read_updates(path: str) -> list:
    """Track updates from a JSON-lines file; a bad line is one clear error with its number."""
    updates = []
    try:
        with open(path) as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    updates.append(update_from_payload(json.loads(line)))
                except (ValueError, KeyError, TypeError) as exc:
                    raise UserError(f"{path}:{n}: not a track payload ({exc})") from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    return updates


def run(args: argparse.Namespace) -> int:
    if args.range_doppler:
        return run_range_doppler(args)
    if args.lat is None or args.lon is None:
        raise UserError("--lat and --lon (the receiver) are needed for a track plot")
    args.output = args.output or "sensord-tracks.png"
    n = plot_tracks(read_updates(args.file), Site(args.lat, args.lon, args.alt_m), args.output)
    print(f"{n} tracks -> {args.output}")
    return 0


def run_range_doppler(args: argparse.Namespace) -> int:
    """Process the recording up to the chosen CPI and draw its map."""
    from pathlib import Path

    import numpy as np

    from sensord.commands.radar import open_recording, params_from
    from sensord.plot import plot_range_doppler
    from sensord.radar.pipeline import RunStats, results

    src = open_recording(args)
    params = params_from(args, src, float(src.center_hz or args.fc))
    stats = RunStats()
    for res in results(src.blocks(), params, stats, src.start_utc, args.skew, keep_map=True):
        if res.cpi < args.cpi_index:
            continue
        if res.discarded or res.cmap is None:
            raise UserError(f"CPI {res.cpi} was discarded: {res.discarded}")
        power = res.cmap.real**2 + res.cmap.imag**2
        power_db = 10 * np.log10(np.maximum(power / np.median(power), 1e-3))
        truth = None
        stem = Path(args.file)
        while stem.suffix:
            stem = stem.with_suffix("")
        truth_path = stem.with_suffix(".radar-truth.npz")
        if truth_path.exists():
            with np.load(truth_path) as z:
                rows = z["cpi"]
            truth = rows[(rows["cpi"] == res.cpi) & rows["in_map"]]
        out = args.output or "sensord-range-doppler.png"
        n = plot_range_doppler(
            power_db,
            params.range_cell_m,
            params.cpi_s,
            res.detections,
            out,
            truth,
            title=f"{Path(args.file).name}: CPI {res.cpi} at t = {res.t_s:.2f} s",
        )
        print(f"CPI {res.cpi}: {n} detections -> {out}")
        return 0
    raise UserError(f"the recording has no CPI {args.cpi_index} ({stats.cpis} CPIs)")
