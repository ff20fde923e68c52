"""``sensord fuse``: the fusion node.

With ``-c fuse.toml`` it subscribes to every node's detections over MQTT and publishes
fused tracks (``sensord.fusion.service``). With ``--recording NODE=PATH@LAT,LON,ALT_M``
(repeated) and ``--radar-recording NODE=PATH@TX@RX@CARRIER_HZ`` it replays several
receivers' and radars' recordings through one fusion tracker without a broker and prints
the fused track updates as JSON lines (the MQTT payload, as ``sensord track``).
"""

from __future__ import annotations

import argparse
import json
import sys

from sensord.errors import UserError


def _site(text: str):
    from sensord.geo import Site

    try:
        lat, lon, alt = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("site is LAT,LON,ALT_M") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise argparse.ArgumentTypeError("site is LAT,LON,ALT_M in degrees and metres")
    return Site(lat, lon, alt)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fuse", help="fuse several nodes' detections into one air picture")
    p.add_argument("-c", "--config", help="fusion node configuration (TOML): the MQTT service")
    p.add_argument("--recording", action="append", default=[], metavar="NODE=PATH@LAT,LON,ALT_M",
                   help="replay a node's recording (repeat for each node); no broker")  # fmt: skip
    p.add_argument("--radar-recording", action="append", default=[],
                   metavar="NODE=PATH@TX_LAT,TX_LON,TX_ALT_M@RX_LAT,RX_LON,RX_ALT_M@CARRIER_HZ",
                   help="replay a radar node's two-channel recording (repeatable)")  # fmt: skip
    p.add_argument(
        "--jsonl", action="store_true", help="print every fused track update (JSON lines)"
    )
    p.add_argument(
        "--site", type=_site, help="fusion frame origin LAT,LON,ALT_M (default: first node)"
    )
    p.add_argument("--reorder-window", type=float, default=1.0, metavar="S",
                   help="hold detections S s to apply them in UTC order (default 1)")  # fmt: skip
    p.add_argument("--dedup-window", type=float, default=0.2, metavar="S",
                   help="copies of a reply within S s are one (default 0.2)")  # fmt: skip
    p.add_argument("--mlat", action="store_true",
                   help="locate Mode S replies heard by >= 3 nodes (docs/mlat.md)")  # fmt: skip
    p.add_argument("--web", metavar="HOST:PORT", help="serve the air picture (overrides [web])")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    replay = args.recording or args.radar_recording
    if replay and args.config:
        raise UserError("give either -c CONFIG (MQTT) or --recording ..., not both")
    if replay:
        return _replay(args)
    if not args.config:
        raise UserError(
            "give -c CONFIG (the MQTT fusion service) or --recording NODE=PATH@LAT,LON,ALT_M"
        )
    from sensord.fusion.service import serve

    return serve(args.config, args.web)


def _replay(args: argparse.Namespace) -> int:
    from sensord.fusion.fuser import Fuser, FusionConfig
    from sensord.fusion.recordings import RadarRecordingSpec, RecordingSpec, fuse_recordings

    if not 0 <= args.reorder_window <= 30 or not 0 <= args.dedup_window <= 5:
        raise UserError("--reorder-window must be 0..30 s and --dedup-window 0..5 s")
    specs = [RecordingSpec.parse(text) for text in args.recording]
    radars = [RadarRecordingSpec.parse(text) for text in args.radar_recording]
    fuser = Fuser(
        FusionConfig(
            site=args.site, reorder_window_s=args.reorder_window, dedup_window_s=args.dedup_window
        )
    )
    mlat = None
    if args.mlat:
        from sensord.mlat.engine import MlatConfig
        from sensord.mlat.feed import MlatFeed

        mlat = MlatFeed(fuser, MlatConfig(hold_s=min(1.0, max(args.reorder_window / 2, 0.2))))
    out = sys.stdout
    n = 0
    tracks: set[str] = set()
    for updates in fuse_recordings(specs, fuser, mlat=mlat, radars=radars):
        for update in updates:
            tracks.add(update.track_id)
            n += 1
            if args.jsonl:
                out.write(json.dumps(update.to_dict(), separators=(",", ":")) + "\n")
    out.flush()
    stats = fuser.statistics()
    if mlat is not None:
        stats["mlat"] = mlat.status()
    if not args.jsonl:
        json.dump(stats, out, indent=1)
        out.write("\n")
    nodes = ", ".join(
        f"{name}: {c['used']} used, {c['duplicates']} duplicates"
        for name, c in stats["nodes"].items()
    )
    if "radar" in stats:
        nodes += f"; radar: {stats['radar']['located']} targets located"
    print(f"{n} fused track updates, {len(tracks)} tracks; {nodes}", file=sys.stderr)
    return 0
