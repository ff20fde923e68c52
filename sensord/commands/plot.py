"""``sensord plot TRACKS.jsonl``: track map and coverage plot to PNG from track payloads
(one JSON object per line, as ``sensord track`` prints or MQTT subscribers receive).

``sensord plot --range-doppler RECORDING``: one CPI's range-Doppler map with its
detections and, with ``--tracks``, the cooperative tracks at their predicted bistatic
range and Doppler and the radar-only tracks the CPIs up to it make."""

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
    rd.add_argument("--fc", type=float, help="carrier, Hz (default: the SigMF capture's, "
                    "else 98e6; the range rate and --tracks' Doppler need it)")  # fmt: skip
    rd.add_argument(
        "--tracks",
        metavar="TRACKS.jsonl",
        help="cooperative track updates on the recording's clock (sensord track/fuse "
        "output): draw them at their predicted range and Doppler, and the radar-only "
        "tracks the CPIs up to this one make (needs --tx and --rx)",
    )
    rd.add_argument("--tx", help="transmitter LAT,LON,ALT_M (for --tracks)")
    rd.add_argument("--rx", help="receiver LAT,LON,ALT_M (for --tracks)")
    rd.add_argument(
        "--plain",
        action="store_true",
        help="write the picture a radar node publishes instead (no matplotlib: range "
        "along x, Doppler up, detections and track marks)",
    )
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


def range_doppler_cpi(args: argparse.Namespace) -> tuple:
    """Process the recording up to ``--cpi-index``: (its ``CpiResult`` with the map, the
    ``RadarParams``, the ``TrackMark``s of ``--tracks`` at its centre)."""
    from sensord.commands.radar import Cooperative, open_recording, params_from
    from sensord.radar.geometry import Bistatic, parse_site
    from sensord.radar.pipeline import RunStats, results

    src = open_recording(args)
    carrier = args.fc if args.fc is not None else (src.center_hz or 98e6)
    params = params_from(args, src, float(carrier))
    cooperative = None
    if args.tracks:
        if not args.tx or not args.rx:
            raise UserError("--tracks needs --tx and --rx: the bistatic geometry")
        bistatic = Bistatic(parse_site(args.tx, "--tx"), parse_site(args.rx, "--rx"),
                            params.carrier_hz)  # fmt: skip
        cooperative = Cooperative(read_updates(args.tracks), bistatic, "radar0")
    stats = RunStats()
    for res in results(src.blocks(), params, stats, src.start_utc, args.skew, keep_map=True):
        if cooperative is not None:
            cooperative.cpi(res)
        if res.cpi < args.cpi_index:
            continue
        if res.discarded or res.cmap is None:
            raise UserError(f"CPI {res.cpi} was discarded: {res.discarded}")
        return res, params, cooperative.marks(res.t_s) if cooperative is not None else []
    raise UserError(f"the recording has no CPI {args.cpi_index} ({stats.cpis} CPIs)")


def run_range_doppler(args: argparse.Namespace) -> int:
    """Process the recording up to the chosen CPI and draw its map."""
    from pathlib import Path

    import numpy as np

    from sensord.radar.map_image import COOPERATIVE, map_png

    res, params, marks = range_doppler_cpi(args)
    out = args.output or "sensord-range-doppler.png"
    power = res.cmap.real**2 + res.cmap.imag**2
    n_coop = sum(m.kind == COOPERATIVE for m in marks)
    counts = (
        f", {n_coop} cooperative and {len(marks) - n_coop} radar-only tracks" if args.tracks else ""
    )
    if args.plain:
        png = map_png(power, params.range_cell_m, params.cpi_s, res.detections, marks,
                      res.noise_floor, text={"cpi": res.cpi, "t_s": round(res.t_s, 6)})  # fmt: skip
        try:
            Path(out).write_bytes(png)
        except OSError as exc:
            raise UserError(f"cannot write {out}: {exc.strerror or exc}") from exc
        print(f"CPI {res.cpi}: {len(res.detections)} detections{counts} -> {out}")
        return 0
    from sensord.plot import plot_range_doppler

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
    n = plot_range_doppler(
        power_db,
        params.range_cell_m,
        params.cpi_s,
        res.detections,
        out,
        truth,
        title=f"{Path(args.file).name}: CPI {res.cpi} at t = {res.t_s:.2f} s",
        marks=marks,
    )
    print(f"CPI {res.cpi}: {n} detections{counts} -> {out}")
    return 0
