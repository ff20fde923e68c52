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

from sensord import config as config_mod
from sensord.daemon.notify import Notifier
from sensord.daemon.outputs import daemon_sinks
from sensord.daemon.pipeline import Pipeline
from sensord.daemon.watchdog import Watchdog
from sensord.errors import UserError
from sensord.fusion.publishing import node_info
from sensord.geo import Site
from sensord.sinks.base import Sink
from sensord.sinks.fanout import FanOut
from sensord.sinks.mqtt import MqttSink
from sensord.sinks.table import TrackTable
from sensord.source.iqfile import IQFileSource, open_source, parse_rate
from sensord.source.pacing import RealtimeSource
from sensord.source.utc import parse_utc
from sensord.tracker.tracker import TrackerConfig

log = logging.getLogger("sensord.run")
FLUSH_DEADLINE_S = 5.0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run the daemon (configured by a TOML file)")
    p.add_argument("-c", "--config", required=True, help="configuration file (TOML)")
    p.add_argument("--source", help="override [source] spec: rtlsdr, rtltcp://HOST:PORT, FILE")
    p.add_argument("--rate", type=parse_rate, help="override [source] rate_hz")
    p.add_argument("--realtime", action="store_true", help="replay files at real-time pace")
    p.add_argument("--mqtt-host", help="override [mqtt] host")
    p.add_argument("--mqtt-port", type=int, help="override [mqtt] port")
    p.add_argument("--no-mqtt", action="store_true", help="do not publish")
    p.add_argument("--log-level", choices=config_mod.LOG_LEVELS, help="override [logging] level")
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


def _apply_overrides(cfg: dict, args: argparse.Namespace) -> None:
    for flag, (section, key) in OVERRIDES.items():
        value = getattr(args, flag)
        if value:
            cfg[section][key] = value
    if args.no_mqtt:
        cfg["mqtt"]["enabled"] = False


def _set_log_level(level: str) -> None:
    logging.getLogger().setLevel(getattr(logging, level.upper()))
    # paho's socket errors (through aiomqtt's "mqtt" logger) repeat the broker state
    # change the publisher logs once: shown at debug only
    logging.getLogger("mqtt").setLevel(logging.DEBUG if level == "debug" else logging.CRITICAL)


def _source(cfg: dict):
    src = cfg["source"]
    spec = src["spec"]
    live = spec.startswith(("rtlsdr", "rtltcp://"))
    if live:
        gain = None if src["gain_db"] == "auto" else float(src["gain_db"])
        return open_source(
            spec,
            rate_hz=src["rate_hz"],
            gain_db=gain,
            ppm=src["ppm"],
            bias_tee=src["bias_tee"],
            block_samples=src["block_samples"],
        )
    fmt = src["format"] or None
    rate = src["rate_hz"]
    start_utc = None
    if src.get("start_utc"):
        try:
            start_utc = parse_utc(src["start_utc"])
        except ValueError as exc:
            raise UserError(f"[source] start_utc: {exc}") from None
    return open_source(
        spec,
        fmt=fmt,
        rate_hz=rate,
        iq_order=src["iq_order"],
        block_samples=src["block_samples"],
        start_utc=start_utc,
    )


def _info(cfg: dict, site: Site, source) -> str:
    """This node's retained ``info``: position, clock, where its UTC comes from."""
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


def run(args: argparse.Namespace) -> int:
    cfg = config_mod.load(args.config)
    _apply_overrides(cfg, args)
    _set_log_level(cfg["logging"]["level"])
    return asyncio.run(_main(cfg, args))


async def _main(cfg: dict, args: argparse.Namespace, extra_sinks: list[Sink] | None = None) -> int:
    """The daemon: pipeline -> fan-out -> sinks; ``extra_sinks`` join the configured ones."""
    loop = asyncio.get_running_loop()
    pipeline: Pipeline | None = None
    publisher = None
    stop_requested = False

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
        log.warning("configuration reloaded (log level, rate limit)")

    # first of all: a signal during a slow start (opening a dongle) is not fatal
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    loop.add_signal_handler(signal.SIGHUP, reload)
    rx = cfg["receiver"]
    site = Site(rx["lat_deg"], rx["lon_deg"], rx["alt_m"])
    source = _source(cfg)
    file_source = isinstance(source, IQFileSource)
    if file_source and cfg["source"]["realtime"]:
        source = RealtimeSource(source)
    tr = cfg["tracker"]
    tracker_config = TrackerConfig(
        imm=tr["imm"],
        confirm_m=tr["confirm_m"],
        confirm_n=tr["confirm_n"],
        coast_after_s=tr["coast_after_s"],
        drop_after_s=tr["drop_after_s"],
    )
    mq = cfg["mqtt"]
    table = TrackTable()
    password = config_mod.mqtt_password(mq) if mq["enabled"] else None
    sinks = daemon_sinks(
        cfg, site, table, password, lambda: pipeline.statistics() if pipeline else {}
    )
    sinks += extra_sinks or []
    publisher = next((s.publisher for s in sinks if isinstance(s, MqttSink)), None)
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
    if stop_requested:
        pipeline.stop()
    await fanout.start()
    notifier = Notifier()
    if publisher is not None:
        publisher.extra([(f"{publisher.settings.base}/info", _info(cfg, site, source), True)])
    watchdog = Watchdog(notifier, pipeline)
    watchdog.start()
    try:
        await pipeline.run()
    finally:
        watchdog.stop()
        notifier.stopping()
        await fanout.close(FLUSH_DEADLINE_S)
    s = pipeline.chain.demod.stats
    log.warning(
        "stopped: %d samples, %d frames, %d tracks created",
        s.samples,
        s.frames,
        pipeline.chain.tracker.stats.tracks_created,
    )
    return 0
