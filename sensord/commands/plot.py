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
    p.add_argument("--lat", type=float, required=True, help="receiver latitude, degrees (WGS84)")
    p.add_argument("--lon", type=float, required=True, help="receiver longitude, degrees (WGS84)")
    p.add_argument("--alt-m", type=float, default=0.0, help="receiver height, m")
    p.add_argument("-o", "--output", default="sensord-tracks.png", help="PNG path")
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
    n = plot_tracks(read_updates(args.file), Site(args.lat, args.lon, args.alt_m), args.output)
    print(f"{n} tracks -> {args.output}")
    return 0
