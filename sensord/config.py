"""Daemon configuration: TOML, validated at start; errors name the key and its file line.

Every key, its type, default and meaning is in ``SCHEMA``; ``configs/sensord.toml`` is the
commented example of all of them. Unknown keys and sections are errors (a typo must not
silently fall back to a default).
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from sensord.errors import UserError

LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class Key:
    """A configuration key: type, default, an optional check and what it means."""

    type: type | tuple[type, ...]
    default: Any
    check: Any = None  # callable(value) -> error text or None
    doc: str = ""


def _range(lo: float, hi: float):
    return lambda v: None if lo <= v <= hi else f"must be between {lo} and {hi}"


def _choice(*options):
    return lambda v: None if v in options else f"must be one of {', '.join(map(str, options))}"


SCHEMA: dict[str, dict[str, Key]] = {
    "receiver": {
        "lat_deg": Key(float, None, _range(-90, 90), "receiver latitude, WGS84"),
        "lon_deg": Key(float, None, _range(-180, 180), "receiver longitude, WGS84"),
        "alt_m": Key(float, 0.0, _range(-500, 9000), "antenna height above the ellipsoid"),
        "max_range_km": Key(float, 400.0, _range(10, 1000), "farthest plausible aircraft"),
    },
    "source": {
        "spec": Key(str, "rtlsdr", None, "rtlsdr[:DEV], rtltcp://HOST:PORT or an IQ file"),
        "format": Key(str, "", _choice("", "cu8", "cs8", "cs16", "cf32", "sigmf"), "file format"),
        "rate_hz": Key(float, 2.4e6, _range(2.0e6, 3.0e6), "sample rate"),
        "iq_order": Key(str, "iq", _choice("iq", "qi"), "files storing Q first: qi"),
        "realtime": Key(bool, False, None, "replay files at the sample clock's pace"),
        "block_samples": Key(int, 65536, _range(4096, 1 << 22), "samples per block (27 ms)"),
        "gain_db": Key((float, str), "auto", None, "tuner gain in dB, or auto"),
        "ppm": Key(int, 0, _range(-200, 200), "frequency correction"),
        "bias_tee": Key(bool, False, None, "power an LNA through the antenna cable"),
        "stall_grace_s": Key(
            float, 10.0, _range(0.5, 600), "no samples this long: stop the watchdog heartbeat"
        ),
        "start_utc": Key(str, "", None, "a file's start (ISO 8601 UTC); '' = SigMF or mtime"),
    },
    "demod": {
        "fix_bits": Key(int, 1, _choice(0, 1, 2), "bit errors corrected in DF11/17/18"),
    },
    "tracker": {
        "imm": Key(bool, False, None, "IMM of constant velocity + constant acceleration"),
        "confirm_m": Key(int, 3, _range(1, 16), "confirm after M updates ..."),
        "confirm_n": Key(int, 5, _range(1, 16), "... of the last N"),
        "coast_after_s": Key(float, 10.0, _range(1, 600), "coasting without measurements"),
        "drop_after_s": Key(float, 60.0, _range(1, 3600), "dropped without detections"),
    },
    "mqtt": {
        "enabled": Key(bool, True, None, "publish to a broker"),
        "host": Key(str, "127.0.0.1", None, "broker host"),
        "port": Key(int, 1883, _range(1, 65535), "broker port"),
        "protocol": Key(int, 5, _choice(5, 311), "MQTT 5 or 3.1.1 (311)"),
        "prefix": Key(str, "sensord", None, "topic prefix"),
        "node": Key(str, "rx0", None, "this receiver's name in topics"),
        "qos_state": Key(int, 1, _choice(0, 1, 2), "QoS of tracks, events, status"),
        "qos_stream": Key(int, 0, _choice(0, 1, 2), "QoS of frames and detections"),
        "rate_limit_s": Key(float, 1.0, _range(0, 60), "at most one track state per ..."),
        "publish_frames": Key(bool, True, None, "frames on .../frames (MLAT reads them)"),
        "frames_schema": Key(int, 2, _choice(1, 2), "2: a batch per block (MLAT); 1: v1 messages"),
        "publish_detections": Key(bool, True, None, "detections on .../detections (fusion)"),
        "detections_schema": Key(int, 2, _choice(1, 2), "2: a batch per block; 1: v1 messages"),
        "detection_shards": Key(int, 0, _range(0, 4096), "detections/<k> by ICAO; 0 = one topic"),
        "stats_interval_s": Key(float, 10.0, _range(1, 3600), "status statistics period"),
        "stream_queue_max": Key(int, 10000, _range(10, 1_000_000), "frames/detections held"),
        "keepalive_s": Key(int, 30, _range(5, 3600), "MQTT keepalive"),
        "username": Key(str, "", None, "broker user"),
        "password_file": Key(str, "", None, "file holding the password"),
        "password_env": Key(str, "", None, "environment variable holding the password"),
        "tls": Key(bool, False, None, "TLS to the broker"),
        "ca_file": Key(str, "", None, "CA certificate (PEM)"),
        "cert_file": Key(str, "", None, "client certificate (PEM)"),
        "key_file": Key(str, "", None, "client key (PEM)"),
    },
    "outputs": {
        "bind": Key(str, "127.0.0.1", None, "address the TCP/HTTP outputs listen on"),
        "sbs_port": Key(int, 0, _range(0, 65535), "SBS/BaseStation lines (30003); 0 = off"),
        "beast_port": Key(int, 0, _range(0, 65535), "Beast binary (30005); 0 = off"),
        "aircraft_json_dir": Key(str, "", None, "write aircraft.json here (tar1090); '' = off"),
        "metrics_port": Key(int, 0, _range(0, 65535), "Prometheus /metrics; 0 = off"),
        "hass_discovery": Key(bool, False, None, "Home Assistant device_tracker per track"),
        "hass_max_trackers": Key(int, 20, _range(1, 1000), "at most this many trackers"),
        "hass_prefix": Key(str, "homeassistant", None, "Home Assistant's discovery prefix"),
    },
    "logging": {
        "level": Key(str, "warning", _choice(*LOG_LEVELS), "log level"),
    },
    "fusion": {
        "site": Key(str, "", None, "fusion frame origin 'LAT,LON,ALT_M'; '' = the first node's"),
        "nodes": Key(list, [], None, "nodes to fuse (names); [] = every node under the prefix"),
        "shards": Key(list, [], None, "shards this worker takes (detections/<k>); [] = unsharded"),
        "reorder_window_s": Key(float, 1.0, _range(0, 30), "detections held to apply in UTC order"),
        "dedup_window_s": Key(float, 0.2, _range(0, 5), "copies of a reply within this are one"),
        "max_node_range_km": Key(float, 1000.0, _range(1, 20000), "nodes farther are refused"),
        "max_target_range_km": Key(float, 600.0, _range(1, 5000), "positions farther refused"),
        "mlat": Key(bool, False, None, "multilaterate from the nodes' frames (v2; docs/mlat.md)"),
    },
}
REQUIRED = {("receiver", "lat_deg"), ("receiver", "lon_deg")}


class Config(dict):
    """Validated configuration: ``cfg["mqtt"]["port"]``; every key present."""

    path: Path | None = None


def _line_of(text: str, section: str, key: str | None) -> int | None:
    """1-based line of [section] (or of key within it), for error messages."""
    in_section = False
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        header = re.match(r"^\[\s*([^\]]+?)\s*\]", stripped)
        if header:
            in_section = header.group(1) == section
            if in_section and key is None:
                return number
            continue
        if in_section and key and re.match(rf"^{re.escape(key)}\s*=", stripped):
            return number
    return None


def _where(path: Path | None, text: str, section: str, key: str | None) -> str:
    line = _line_of(text, section, key)
    name = f"[{section}] {key}" if key else f"[{section}]"
    loc = f"{path}:{line}" if path and line else str(path or "<config>")
    return f"{loc}: {name}"


def parse(
    text: str, path: Path | None = None, required: frozenset | set = frozenset(REQUIRED)
) -> Config:
    """Validate TOML text against SCHEMA; UserError naming the key and line on any fault.

    ``required`` keys must be given: a receiver's position for ``run``; nothing for ``fuse``.
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path or '<config>'}: not valid TOML: {exc}") from None
    cfg = Config()
    cfg.path = path
    for section, value in doc.items():
        if section not in SCHEMA:
            raise UserError(
                f"{_where(path, text, section, None)}: unknown section (known: {', '.join(SCHEMA)})"
            )
        if not isinstance(value, dict):
            raise UserError(f"{path or '<config>'}: '{section}' must be a [section]")
    for section, keys in SCHEMA.items():
        given = doc.get(section, {})
        for key in given:
            if key not in keys:
                raise UserError(f"{_where(path, text, section, key)}: unknown key")
        out = {}
        for key, spec in keys.items():
            if key not in given:
                if (section, key) in required:
                    raise UserError(f"{path or '<config>'}: [{section}] {key} is required")
                out[key] = spec.default
                continue
            value = given[key]
            types = spec.type if isinstance(spec.type, tuple) else (spec.type,)
            if float in types and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
                names = " or ".join(t.__name__ for t in types)
                raise UserError(
                    f"{_where(path, text, section, key)}: must be {names}, got {value!r}"
                )
            problem = spec.check(value) if spec.check else None
            if problem:
                raise UserError(f"{_where(path, text, section, key)}: {problem} (got {value!r})")
            out[key] = value
        cfg[section] = out
    if cfg["source"]["gain_db"] != "auto" and isinstance(cfg["source"]["gain_db"], str):
        raise UserError(f"{_where(path, text, 'source', 'gain_db')}: must be a number or 'auto'")
    return cfg


def load(path: str | Path, required: frozenset | set = frozenset(REQUIRED)) -> Config:
    """Read and validate a configuration file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{p}: configuration file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{p}: cannot read: {exc}") from None
    return parse(text, p, required)


def mqtt_password(mqtt: dict) -> str | None:
    """The broker password from its file or environment variable (never from the TOML)."""
    if mqtt["password_file"]:
        try:
            return Path(mqtt["password_file"]).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UserError(f"[mqtt] password_file: cannot read: {exc.strerror}") from None
    if mqtt["password_env"]:
        value = os.environ.get(mqtt["password_env"])
        if value is None:
            raise UserError(f"[mqtt] password_env: ${mqtt['password_env']} is not set")
        return value
    return None
