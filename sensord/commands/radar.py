"""``sensord radar FILE``: passive radar detections from a two-channel recording.

One JSON object per detection with ``--jsonl`` (the payload the daemon publishes), else
a readable line each; a summary (CPIs processed and discarded with the reasons, CPU per
stage) goes to stderr. Layouts and processing: docs/radar.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field

from sensord.errors import UserError
from sensord.radar.cfar import CfarParams
from sensord.radar.geometry import Bistatic, parse_site
from sensord.radar.pipeline import RunStats, check_length, results
from sensord.radar.processor import RadarParams
from sensord.radar.source import TWO_CHANNEL_DTYPES, TwoChannelFile
from sensord.source.iqfile import parse_rate


def add_source_arguments(p: argparse.ArgumentParser) -> None:
    """The recording and processing flags ``radar`` and ``plot --range-doppler`` share."""
    p.add_argument("--rate", type=parse_rate, help="sample rate (default: SigMF, else 2.0e6)")
    p.add_argument("--format", dest="fmt", choices=tuple(TWO_CHANNEL_DTYPES),
                   help="sample format (default: SigMF datatype or the file suffix)")  # fmt: skip
    p.add_argument("--cpi", type=float, default=0.5, help="CPI length, s (default 0.5)")
    p.add_argument("--range-bins", type=int, default=400, help="range cells (default 400)")
    p.add_argument("--doppler-bins", type=int, default=200, help="Doppler bins (default 200)")
    p.add_argument(
        "--pfa", type=float, default=1e-4, help="CFAR false-alarm probability per cell (1e-4)"
    )
    p.add_argument("--clutter-taps", type=int, default=64,
                   help="clutter cancellation delay taps (default 64)")  # fmt: skip
    p.add_argument(
        "--skew", type=int, help="surveillance channel's known skew, samples (default: measured)"
    )


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("radar", help="passive radar detections from a two-channel recording")
    p.add_argument("file", metavar="SOURCE",
                   help="two-channel recording (.2ch.cu8/.2ch.cs16/.2ch.cf32 or SigMF), "
                        "rtlsdr-pair:REF,SURV or kraken://HOST[:PORT]")  # fmt: skip
    p.add_argument("--tx", required=True, help="transmitter LAT,LON,ALT_M (WGS84)")
    p.add_argument("--rx", required=True, help="receiver LAT,LON,ALT_M (WGS84)")
    p.add_argument("--fc", type=float, help="carrier, Hz (default: the SigMF capture's)")
    p.add_argument("--start-utc", type=float, help="UTC (s) of the first sample")
    p.add_argument("--jsonl", action="store_true", help="one JSON object per detection")
    p.add_argument(
        "--mqtt",
        metavar="HOST:PORT",
        help="also publish on <prefix>/<node>/radar/detections, the map on "
        "<prefix>/<node>/radar/map (see --map-every) and a retained info",
    )
    p.add_argument("--node", default="radar0", help="node name for --mqtt (default radar0)")
    p.add_argument(
        "--tracks",
        metavar="TRACKS.jsonl",
        help="cooperative track updates on the same clock (sensord track/fuse "
        "output): label detections with the track they pair with or the "
        "radar-only track they feed, and report the range/Doppler bias",
    )
    p.add_argument("--prefix", default="sensord", help="topic prefix for --mqtt")
    p.add_argument(
        "--map-every",
        type=float,
        default=2.0,
        metavar="S",
        help="with --mqtt, publish the latest range-Doppler map (PNG, retained) on "
        "<prefix>/<node>/radar/map at most every S seconds (default 2; 0: never)",
    )
    add_source_arguments(p)
    p.set_defaults(func=run)


@dataclass
class LiveTwoChannel:
    """A live two-channel source with what the command reads of a recording."""

    source: object
    rate_hz: float
    center_hz: float | None
    clock_type: str
    start_utc: float = field(default_factory=time.time)
    start_utc_from: str = "wall clock at start"
    n_samples: int | None = None

    def blocks(self):
        return self.source.blocks()  # type: ignore[attr-defined]


def open_recording(args: argparse.Namespace) -> TwoChannelFile | LiveTwoChannel:
    """A recording, or a live pair: ``rtlsdr-pair:REF,SURV`` (indices or serials of two
    dongles on one clock) or ``kraken://HOST[:PORT]`` (a KrakenSDR DAQ, channels 0, 1)."""
    spec = str(args.file)
    if spec.startswith("rtlsdr-pair:"):
        from sensord.radar.pair import DualRtlSdrSource

        ref, _, surv = spec.removeprefix("rtlsdr-pair:").partition(",")
        if not ref or not surv or args.fc is None:
            raise UserError("rtlsdr-pair:REF,SURV needs two dongles and --fc to tune them")
        rate = args.rate or 2.0e6
        src = DualRtlSdrSource(f"rtlsdr:{ref}", f"rtlsdr:{surv}", args.fc, rate)
        return LiveTwoChannel(src, rate, args.fc, "rtlsdr-pair")
    if spec.startswith("kraken://"):
        from sensord.radar.kraken import KrakenDaqSource

        host, _, port = spec.removeprefix("kraken://").partition(":")
        if not host or (port and not port.isdigit()):
            raise UserError(f"a KrakenSDR DAQ is kraken://HOST[:PORT], got {spec!r}")
        daq = KrakenDaqSource(host, int(port or 5000))
        return LiveTwoChannel(daq, args.rate or 2.0e6, args.fc, "kraken")
    return TwoChannelFile(args.file, args.fmt, args.rate, getattr(args, "start_utc", None))


def params_from(
    args: argparse.Namespace, src: TwoChannelFile | LiveTwoChannel, carrier_hz: float
) -> RadarParams:
    """Processing settings from the flags; UserError on values that cannot work."""
    if not 0 < args.cpi <= 10:
        raise UserError(f"--cpi must be between 0 and 10 s, got {args.cpi:g}")
    if args.range_bins < 2 or args.doppler_bins < 2 or args.doppler_bins % 2:
        raise UserError("--range-bins must be >= 2 and --doppler-bins even and >= 2")
    if not 0 < args.pfa < 0.1:
        raise UserError(f"--pfa must be between 0 and 0.1, got {args.pfa:g}")
    if not 1 <= args.clutter_taps <= args.range_bins:
        raise UserError(f"--clutter-taps must be 1..{args.range_bins}")
    params = RadarParams(
        rate_hz=src.rate_hz,
        cpi_s=args.cpi,
        carrier_hz=carrier_hz,
        n_range=args.range_bins,
        n_doppler=args.doppler_bins,
        clutter_taps=args.clutter_taps,
        cfar=CfarParams(pfa=args.pfa),
    )
    if params.n_samples < 2 * params.n_doppler:
        raise UserError(
            f"a CPI of {params.n_samples} samples is too short for {params.n_doppler} Doppler bins"
        )
    if src.n_samples is not None:
        check_length(src.n_samples, params)
    return params


class Cooperative:
    """``--tracks``: cooperative track updates (JSON lines) fed in time order beside the
    CPIs; each detection is labelled with the track it pairs with, or the radar-only
    track it feeds, and ``marks`` says where the tracks are on the CPI's map."""

    def __init__(self, updates: list, bistatic: Bistatic, node: str) -> None:
        from sensord.radar.association import CooperativeRadar

        # a fusion node's radar-only tracks (non_cooperative) are no transponder's word
        self.updates = sorted((u for u in updates if not u.non_cooperative), key=lambda u: u.t_s)
        self.fusion = CooperativeRadar(bistatic, node=node)
        self.radar_tracks: list = []  # after the last CPI

    def cpi(self, res) -> dict[int, dict]:
        while self.updates and self.updates[0].t_s <= res.t_s:
            self.fusion.track_update(self.updates.pop(0))
        if res.discarded:
            return {}
        fused = self.fusion.cpi(res.t_s, res.detections)
        self.radar_tracks = fused.radar_tracks
        labels = {
            id(p.detection): {"track_id": p.track_id, "icao": p.icao, "cooperative": True}
            for p in fused.pairs
        }
        for tr in fused.radar_tracks:
            if tr.last_detection is not None:
                labels[id(tr.last_detection)] = {
                    "track_id": tr.track_id, "cooperative": False, "radar_only": True,
                    "confirmed": tr.confirmed,
                }  # fmt: skip
        return labels

    def marks(self, t_s: float) -> list:
        """``TrackMark``s at t_s (a CPI centre, after ``cpi``): every cooperative track
        with a fresh state flown to t_s (its predicted bistatic range and Doppler), and
        the confirmed radar-only tracks."""
        from sensord.radar.association import STALE_S, predict
        from sensord.radar.map_image import COOPERATIVE, RADAR_ONLY, TrackMark

        lam = self.fusion.bistatic.wavelength_m
        out = []
        for st in self.fusion.states.values():
            if abs(t_s - st.t) <= STALE_S:
                p = predict(self.fusion.bistatic, st, t_s)
                out.append(TrackMark(p.range_m, -p.range_rate_mps / lam, COOPERATIVE,
                                     st.icao or st.track_id))  # fmt: skip
        for tr in self.radar_tracks:
            if tr.confirmed:
                out.append(TrackMark(float(tr.x[0]), float(-tr.x[1] / lam), RADAR_ONLY,
                                     tr.track_id))  # fmt: skip
        return out


def _cooperative(args: argparse.Namespace, bistatic: Bistatic) -> Cooperative | None:
    if not args.tracks:
        return None
    from sensord.commands.plot import read_updates

    return Cooperative(read_updates(args.tracks), bistatic, args.node)


def _publish(args, cpis, bistatic, params, stats, src, emit, maps, cooperative) -> None:
    """The daemon mode: the same detections on MQTT, one message per CPI, and the map."""
    import asyncio

    from sensord.publish.mqtt import MqttSettings
    from sensord.radar.publishing import info_payload, publish

    host, _, port = args.mqtt.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--mqtt is HOST:PORT, got {args.mqtt!r}")
    settings = MqttSettings(host=host, port=int(port), prefix=args.prefix, node=args.node)
    clock = src.clock_type if isinstance(src, LiveTwoChannel) else "file"
    info = info_payload(args.node, bistatic, params, clock, src.start_utc_from,
                        maps.every_s if maps else 0.0)  # fmt: skip
    marks = (lambda res: cooperative.marks(res.t_s)) if cooperative is not None else None
    asyncio.run(publish(cpis, settings, info, stats, src.start_utc, emit, maps, params, marks))


def run(args: argparse.Namespace) -> int:
    if not args.map_every >= 0:
        raise UserError(f"--map-every must be >= 0 s, got {args.map_every:g}")
    src = open_recording(args)
    carrier = args.fc if args.fc is not None else src.center_hz
    if carrier is None:
        raise UserError("give the carrier with --fc HZ (the recording does not say it)")
    bistatic = Bistatic(parse_site(args.tx, "--tx"), parse_site(args.rx, "--rx"), float(carrier))
    params = params_from(args, src, bistatic.carrier_hz)
    stats = RunStats()
    out = sys.stdout

    cooperative = _cooperative(args, bistatic)

    def emit(res) -> dict[int, dict]:
        labels: dict[int, dict] = {}
        if cooperative is not None:
            labels = cooperative.cpi(res)
        for det in res.detections:
            label = labels.get(id(det), {})
            if args.jsonl:
                out.write(json.dumps({**det.to_dict(), **label}) + "\n")
            else:
                who = " ".join(f"{k}={v}" for k, v in label.items())
                out.write(
                    f"t={det.t_s:8.3f}s  R_b={det.bistatic_range_m / 1e3:7.3f} km  "
                    f"fd={det.doppler_hz:+8.2f} Hz  dR/dt={det.range_rate_mps:+8.1f} m/s  "
                    f"SNR={det.snr_db:5.1f} dB  {who}\n"
                )
        return labels

    maps = None
    if args.mqtt and args.map_every > 0:
        from sensord.radar.publishing import MapSchedule

        maps = MapSchedule(args.map_every)
    keep_map = maps.due if maps is not None else False
    cpis = results(src.blocks(), params, stats, src.start_utc, args.skew, keep_map)
    if args.mqtt:
        _publish(args, cpis, bistatic, params, stats, src, emit, maps, cooperative)
    else:
        for res in cpis:
            emit(res)
    print(
        f"sensord radar: {stats.summary()} (start UTC from {src.start_utc_from})", file=sys.stderr
    )
    if cooperative is not None:
        print(f"sensord radar: bias against cooperative tracks: "
              f"{json.dumps(cooperative.fusion.bias.to_dict())}", file=sys.stderr)  # fmt: skip
    if stats.cpis and not stats.processed:
        reason = stats.discarded.most_common(1)[0][0]
        raise UserError(f"no CPI could be processed: {reason}")
    return 0
