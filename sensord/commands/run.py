"""``sensord run -c sensord.toml``: the daemon (source -> DSP -> decode -> tracker -> MQTT).

Signals: SIGTERM/SIGINT stop cleanly (offline status published, queue flushed within a
deadline); SIGHUP reloads the log level and the MQTT rate limit. Under systemd
(Type=notify) it reports READY=1 once samples flow and feeds the watchdog while they do.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from types import FrameType
from typing import TYPE_CHECKING

from sensord import config as config_mod
from sensord.config import Config
from sensord.errors import UserError
from sensord.geo import Site
from sensord.source.iqfile import IQFileSource, open_source, rate_argument

if TYPE_CHECKING:  # the daemon's modules are imported once the signals are caught
    from sensord.daemon.pipeline import Pipeline
    from sensord.publish.mqtt import Publisher
    from sensord.sinks.base import Sink

log = logging.getLogger("sensord.run")
FLUSH_DEADLINE_S = 5.0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run the daemon (configured by a TOML file)")
    p.add_argument("-c", "--config", required=True, help="configuration file (TOML)")
    p.add_argument("--source", help="override [source] spec: rtlsdr, rtltcp://HOST:PORT, FILE")
    p.add_argument(
        "--rate",
        type=rate_argument,
        help="override [source] rate_hz; for a file, override the rate its name or SigMF "
        "metadata gives",
    )
    p.add_argument("--realtime", action="store_true", help="replay files at real-time pace")
    p.add_argument("--mqtt-host", help="override [mqtt] host")
    p.add_argument("--mqtt-port", type=int, help="override [mqtt] port")
    p.add_argument("--no-mqtt", action="store_true", help="do not publish")
    p.add_argument("--log-level", choices=config_mod.LOG_LEVELS, help="override [logging] level")
    p.add_argument("--web", metavar="HOST:PORT", help="serve the air picture (overrides [web])")
    p.set_defaults(func=run)


# command-line flag -> (section, key) it overrides; flags left unset change nothing
OVERRIDES = {
    "source": ("source", "spec"),
    "rate": ("source", "rate_hz"),
    "realtime": ("source", "realtime"),
    "mqtt_host": ("mqtt", "host"),
    "mqtt_port": ("mqtt", "port"),
    "log_level": ("logging", "level"),
}


def _apply_overrides(cfg: Config, args: argparse.Namespace) -> None:
    for flag, (section, key) in OVERRIDES.items():
        value = getattr(args, flag)
        if value:
            cfg.override(section, key, value, "--" + flag.replace("_", "-"))
    if args.no_mqtt:
        cfg.override("mqtt", "enabled", False, "--no-mqtt")


def _set_log_level(level: str) -> None:
    """sensord's loggers at ``level``; libraries' at WARNING unless debugging."""
    logging.getLogger("sensord").setLevel(getattr(logging, level.upper()))
    logging.getLogger().setLevel(logging.DEBUG if level == "debug" else logging.WARNING)
    # paho's socket errors (through aiomqtt's "mqtt" logger) repeat the broker state
    # change the publisher logs once: shown at debug only
    logging.getLogger("mqtt").setLevel(logging.DEBUG if level == "debug" else logging.CRITICAL)


def _source(cfg: Config, rate_flag: float | None):
    """The configured source. A file is read at its own rate (name or SigMF metadata),
    which only ``--rate`` overrides; [source] rate_hz is for dongles, and for files that
    carry no rate."""
    src = cfg.source
    spec = src.spec
    live = spec.startswith(("rtlsdr", "rtltcp://"))
    if live:
        gain = None if src.gain_db == "auto" else float(src.gain_db)
        return open_source(
            spec,
            rate_hz=src.rate_hz,
            gain_db=gain,
            ppm=src.ppm,
            bias_tee=src.bias_tee,
            block_samples=src.block_samples,
        )
    from sensord.source.utc import parse_utc

    # [source] start_utc was checked when the configuration was read
    start_utc = parse_utc(src.start_utc) if src.start_utc else None
    return open_source(
        spec,
        fmt=src.format or None,
        rate_hz=rate_flag,
        default_rate_hz=src.rate_hz,
        iq_order=src.iq_order,
        block_samples=src.block_samples,
        start_utc=start_utc,
    )


def _info(cfg: Config, site: Site, source) -> str:
    """This node's retained ``info``: position, clock, where its UTC comes from."""
    from sensord.fusion.publishing import node_info

    spec = cfg["source"]["spec"]
    clock_type = (
        "rtltcp"
        if spec.startswith("rtltcp://")
        else "rtlsdr"
        if spec.startswith("rtlsdr")
        else "file"
    )
    inner = getattr(source, "source", source)  # a paced file wraps the file source
    utc_source = getattr(inner, "utc_source", "fit")
    return node_info(cfg["mqtt"]["node"], site, clock_type, source.rate_hz, utc_source)


class EarlyStop:
    """Signals before the event loop's handlers exist (the daemon's modules are imported
    after this is installed), remembered and acted on once it runs; their default action
    would kill it without its offline status. SIGTERM/SIGINT stop, SIGHUP reloads."""

    def __init__(self) -> None:
        self.requested = False
        self.reload_requested = False
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._catch)

    def _catch(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            self.reload_requested = True
        else:
            self.requested = True


def run(args: argparse.Namespace) -> int:
    early = EarlyStop()
    cfg = config_mod.load(args.config)
    _apply_overrides(cfg, args)
    _set_log_level(cfg.logging.level)
    return asyncio.run(_main(cfg, args, early=early))


async def _main(
    cfg: Config,
    args: argparse.Namespace,
    extra_sinks: list[Sink] | None = None,
    early: EarlyStop | None = None,
) -> int:
    """The daemon: pipeline -> fan-out -> sinks; ``extra_sinks`` join the configured ones."""
    from sensord.daemon.notify import Notifier
    from sensord.daemon.outputs import daemon_sinks
    from sensord.daemon.pipeline import Pipeline
    from sensord.daemon.watchdog import Watchdog
    from sensord.sinks.fanout import FanOut
    from sensord.sinks.files import MetricsSink
    from sensord.sinks.mqtt import MqttSink
    from sensord.sinks.table import TrackTable
    from sensord.source.pacing import RealtimeSource
    from sensord.web.wiring import WebOutputs

    _set_log_level(cfg.logging.level)  # again: importing aiomqtt reset its logger's level
    loop = asyncio.get_running_loop()
    pipeline: Pipeline | None = None
    publisher = None
    stop_requested = early is not None and early.requested

    def stop() -> None:
        nonlocal stop_requested
        stop_requested = True
        if pipeline is not None:
            pipeline.stop()

    def reload() -> None:
        try:
            fresh = config_mod.load(args.config)
        except UserError as exc:
            log.error("reload failed, keeping the running configuration: %s", exc)
            return
        _set_log_level(fresh["logging"]["level"])
        if publisher is not None:
            publisher.settings.rate_limit_s = fresh["mqtt"]["rate_limit_s"]
        log.info("configuration reloaded (log level, rate limit)")

    # first of all: a signal during a slow start (opening a dongle) is not fatal
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    loop.add_signal_handler(signal.SIGHUP, reload)
    if early is not None and early.reload_requested:
        reload()
    if stop_requested:
        log.info("stop requested while starting")
    rx = cfg.receiver
    site = Site(rx.lat_deg, rx.lon_deg, rx.alt_m)
    source = _source(cfg, getattr(args, "rate", None))
    file_source = isinstance(source, IQFileSource)
    if file_source:
        log.info(
            "reading %s at %g MS/s, UTC from %s",
            source.path,
            source.rate_hz / 1e6,
            source.utc_source,
        )
    if file_source and cfg.source.realtime:
        source = RealtimeSource(source)
    tracker_config = cfg.tracker
    mq = cfg["mqtt"]
    table = TrackTable()
    password = config_mod.mqtt_password(mq) if mq["enabled"] else None
    sinks = daemon_sinks(
        cfg, site, table, password, lambda: pipeline.statistics() if pipeline else {}
    )
    sinks += extra_sinks or []
    publisher = next((s.publisher for s in sinks if isinstance(s, MqttSink)), None)
    metrics = next((s.metrics for s in sinks if isinstance(s, MetricsSink)), None)
    web = WebOutputs.from_config(
        cfg, getattr(args, "web", None), site, mq["node"], publisher, metrics and metrics.registry
    )
    sinks += web.sinks  # the air picture and the watched zones ([web], [zones])
    fanout = FanOut(sinks, table)
    pipeline = Pipeline(
        source,
        site,
        fanout,
        fix_bits=cfg["demod"]["fix_bits"],
        max_range_m=rx["max_range_km"] * 1e3,
        tracker_config=tracker_config,
        stall_grace_s=cfg["source"]["stall_grace_s"],
        lossless=file_source,
        sensor_id=mq["node"],
    )
    await fanout.start()
    notifier = Notifier()
    if publisher is not None:
        info = _info(cfg, site, source).encode()
        publisher.extra([(f"{publisher.settings.base}/info", info, True)])
    watchdog = Watchdog(notifier, pipeline)
    watchdog.start()
    if stop_requested:  # asked for while starting: stop once the publisher is connected
        await _finish_starting(publisher)
        pipeline.stop()
    try:
        await pipeline.run()
    finally:
        watchdog.stop()
        notifier.stopping()
        await fanout.close(FLUSH_DEADLINE_S)
    s = pipeline.chain.demod.stats
    log.info(
        "stopped: %d samples, %d frames, %d tracks created",
        s.samples,
        s.frames,
        pipeline.chain.tracker.stats.tracks_created,
    )
    return 0


async def _finish_starting(publisher: Publisher | None) -> None:
    """Before a stop asked for during start-up: let the publisher connect (within the flush
    deadline), so the offline status goes out and the connection closes cleanly (a
    publisher stopped while it connects leaves aiomqtt's task pending: a traceback at exit)."""
    deadline = asyncio.get_running_loop().time() + FLUSH_DEADLINE_S
    while publisher is not None and not publisher.stats.connected:
        if asyncio.get_running_loop().time() > deadline:
            return
        await asyncio.sleep(0.05)
