"""Configuration: one typed dataclass per TOML section, validated at start.

``Config`` is the single source of truth: every command takes its defaults from these
dataclasses (``ReceiverConfig().max_range_km`` is the max range of ``run``, ``track`` and
``replay`` alike), and ``configs/sensord.toml`` is the commented example of every key.
Every fault is a ``UserError`` naming the file, the line and the key; unknown keys and
sections are errors (a typo must not silently fall back to a default). Permanent faults
(a missing TLS file, contradicting keys) stop the daemon at start instead of being retried.

Adding a section: write a dataclass of ``key(...)`` fields (type hints give the types, the
``check`` of each key its range), optionally a ``validate(self) -> list[Problem]`` method for
rules between keys, and register it with one line in ``Config``::

    @dataclass
    class FusionConfig(Section):
        window_s: float = key(2.0, "how long frames wait for their peers", _range(0.1, 60))

    class Config:  # ...
        fusion: FusionConfig = field(default_factory=FusionConfig, metadata=SECTION)

The section is then parsed, type-checked, reported with line numbers, overridable from
the command line (``Config.override``) and listed by ``sections()``. Document its keys in
``configs/sensord.toml`` (a test checks that every key is there with its default).
"""

from __future__ import annotations

import functools
import logging
import math
import os
import re
import stat
import tomllib
import types
import typing
from collections.abc import Callable, Collection, Iterator
from dataclasses import MISSING, Field, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sensord.errors import UserError
from sensord.source.iqfile import RATE_MAX_HZ, RATE_MIN_HZ

if TYPE_CHECKING:  # the tracker (numpy, its filters) is imported when a section needs it
    from sensord.tracker.tracker import TrackerConfig

log = logging.getLogger(__name__)

LOG_LEVELS = ("debug", "info", "warning", "error")

Check = Callable[[Any], "str | None"]  # value -> what is wrong with it, or None


@dataclass(frozen=True)
class Problem:
    """A fault found in a section: the key it is about and what is wrong."""

    key: str
    message: str


def _range(lo: float, hi: float) -> Check:
    return lambda v: None if lo <= v <= hi else f"must be between {lo:g} and {hi:g}"


def _choice(*options: object) -> Check:
    return lambda v: None if v in options else f"must be one of {', '.join(map(str, options))}"


def _utc_check(value: str) -> str | None:
    if not value:
        return None
    from sensord.source.utc import parse_utc

    try:
        parse_utc(value)
    except ValueError as exc:
        return str(exc)
    return None


def key(default: Any, doc: str, check: Check | None = None, required: bool = False) -> Any:
    """A configuration key: its default, meaning, optional check, and whether it is required."""
    metadata = {"doc": doc, "check": check, "required": required}
    if isinstance(default, list):  # a mutable default: each section gets its own copy
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


class Section:
    """Base of the section dataclasses; ``section["key"]`` reads like the TOML table."""

    def __getitem__(self, name: str) -> Any:
        if name not in self:
            raise KeyError(name)
        return getattr(self, name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in {f.name for f in fields(self)}  # type: ignore[arg-type]

    def keys(self) -> list[str]:
        return [f.name for f in fields(self)]  # type: ignore[arg-type]

    def validate(self) -> list[Problem]:
        """Rules between keys; the single keys were checked already."""
        return []


# ---- the sections ------------------------------------------------------------------------
@dataclass
class ReceiverConfig(Section):
    lat_deg: float = key(0.0, "receiver latitude, WGS84", _range(-90, 90), required=True)
    lon_deg: float = key(0.0, "receiver longitude, WGS84", _range(-180, 180), required=True)
    alt_m: float = key(0.0, "antenna height above the ellipsoid", _range(-500, 9000))
    max_range_km: float = key(400.0, "farthest plausible aircraft", _range(10, 1000))


@dataclass
class SourceConfig(Section):
    spec: str = key("rtlsdr", "rtlsdr[:DEV], rtltcp://HOST:PORT or an IQ file")
    format: str = key("", "file format", _choice("", "cu8", "cs8", "cs16", "cf32", "sigmf"))
    rate_hz: float = key(2.4e6, "sample rate", _range(RATE_MIN_HZ, RATE_MAX_HZ))
    iq_order: str = key("iq", "files storing Q first: qi", _choice("iq", "qi"))
    realtime: bool = key(False, "replay files at the sample clock's pace")
    block_samples: int = key(65536, "samples per block (27 ms)", _range(4096, 1 << 22))
    gain_db: float | str = key("auto", "tuner gain in dB, or auto")
    ppm: int = key(0, "frequency correction", _range(-200, 200))
    bias_tee: bool = key(False, "power an LNA through the antenna cable")
    stall_grace_s: float = key(
        10.0, "no samples this long: stop the watchdog heartbeat", _range(0.5, 600)
    )
    start_utc: str = key("", "a file's start (ISO 8601 UTC); '' = SigMF or mtime", _utc_check)

    def validate(self) -> list[Problem]:
        if isinstance(self.gain_db, str) and self.gain_db != "auto":
            return [Problem("gain_db", "must be a number or 'auto'")]
        if not isinstance(self.gain_db, str) and not -10 <= self.gain_db <= 60:
            return [Problem("gain_db", "must be between -10 and 60 dB, or 'auto'")]
        return []


@dataclass
class DemodConfig(Section):
    fix_bits: int = key(1, "bit errors corrected in DF11/17/18", _choice(0, 1, 2))


@dataclass
class MqttConfig(Section):
    enabled: bool = key(True, "publish to a broker")
    host: str = key("127.0.0.1", "broker host")
    port: int = key(1883, "broker port", _range(1, 65535))
    protocol: int = key(5, "MQTT 5 or 3.1.1 (311)", _choice(5, 311))
    prefix: str = key("sensord", "topic prefix")
    node: str = key("rx0", "this receiver's name in topics")
    qos_state: int = key(1, "QoS of tracks, events, status", _choice(0, 1, 2))
    qos_stream: int = key(0, "QoS of frames and detections", _choice(0, 1, 2))
    rate_limit_s: float = key(1.0, "at most one track state per ...", _range(0, 60))
    publish_frames: bool = key(True, "frames on .../frames (MLAT reads them)")
    frames_schema: int = key(2, "2: a batch per block (MLAT); 1: v1 messages", _choice(1, 2))
    publish_detections: bool = key(True, "detections on .../detections (fusion)")
    detections_schema: int = key(2, "2: a batch per block; 1: v1 messages", _choice(1, 2))
    detection_shards: int = key(0, "detections/<k> by ICAO; 0 = one topic", _range(0, 4096))
    stats_interval_s: float = key(10.0, "status statistics period", _range(1, 3600))
    stream_queue_max: int = key(10000, "frames/detections held", _range(10, 1_000_000))
    keepalive_s: int = key(30, "MQTT keepalive", _range(5, 3600))
    username: str = key("", "broker user")
    password_file: str = key("", "file holding the password")
    password_env: str = key("", "environment variable holding the password")
    tls: bool = key(False, "TLS to the broker")
    ca_file: str = key("", "CA certificate (PEM)")
    cert_file: str = key("", "client certificate (PEM)")
    key_file: str = key("", "client key (PEM)")

    def validate(self) -> list[Problem]:
        problems = []
        if self.password_file and self.password_env:
            problems.append(Problem("password_env", "give password_file or password_env, not both"))
        if (self.password_file or self.password_env) and not self.username:
            problems.append(Problem("username", "a password is configured but no username"))
        for name in ("ca_file", "cert_file", "key_file"):
            if getattr(self, name) and not self.tls:
                problems.append(Problem(name, "is set but tls = false (set tls = true)"))
        if self.key_file and not self.cert_file:
            problems.append(Problem("key_file", "is set without cert_file"))
        if self.enabled and self.tls:
            problems.extend(_tls_problems(self))
        if self.enabled and self.password_file:
            problems.extend(_password_file_problems(Path(self.password_file)))
        return problems


@dataclass
class OutputsConfig(Section):
    bind: str = key("127.0.0.1", "address the TCP/HTTP outputs listen on")
    sbs_port: int = key(0, "SBS/BaseStation lines (30003); 0 = off", _range(0, 65535))
    beast_port: int = key(0, "Beast binary (30005); 0 = off", _range(0, 65535))
    aircraft_json_dir: str = key("", "write aircraft.json here (tar1090); '' = off")
    metrics_port: int = key(0, "Prometheus /metrics; 0 = off", _range(0, 65535))
    hass_discovery: bool = key(False, "Home Assistant device_tracker per track")
    hass_max_trackers: int = key(20, "at most this many trackers", _range(1, 1000))
    hass_prefix: str = key("homeassistant", "Home Assistant's discovery prefix")


@dataclass
class LoggingConfig(Section):
    level: str = key("info", "log level", _choice(*LOG_LEVELS))


def _site_text(value: str) -> str | None:
    if not value:
        return None
    try:
        lat, lon, _alt = (float(v) for v in value.split(","))
    except ValueError:
        return "must be 'LAT,LON,ALT_M' (degrees, metres) or ''"
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return "must be 'LAT,LON,ALT_M' with the latitude in -90..90, longitude in -180..180"
    return None


def _node_names(value: list[str]) -> str | None:
    if all(n and "/" not in n for n in value):
        return None
    return "must be node names (not empty, no '/')"


@dataclass
class FusionSection(Section):
    """``sensord fuse`` only (``configs/fuse.toml``); ``sensord run`` ignores it."""

    site: str = key("", "fusion frame origin 'LAT,LON,ALT_M'; '' = the first node's", _site_text)
    # key() gives a list default its own factory (RUF009 cannot see that)
    nodes: list[str] = key([], "nodes to fuse (names); [] = every node", _node_names)  # noqa: RUF009
    shards: list[int] = key([], "shards taken (detections/<k>); [] = unsharded")  # noqa: RUF009
    reorder_window_s: float = key(1.0, "detections held to apply in UTC order", _range(0, 30))
    dedup_window_s: float = key(0.2, "copies of a reply within this are one", _range(0, 5))
    max_node_range_km: float = key(1000.0, "nodes farther are refused", _range(1, 20000))
    max_target_range_km: float = key(600.0, "positions farther are refused", _range(1, 5000))
    max_clock_offset_s: float = key(
        2.0, "a node's UTC this far off the fusion clock is refused", _range(0.1, 3600)
    )
    mlat: bool = key(False, "multilaterate from the nodes' frames (v2; docs/mlat.md)")


def _web_listen(value: str) -> str | None:
    if not value:
        return None
    from sensord.web.settings import listen_check

    return listen_check(value)


@dataclass
class WebSection(Section):
    """The air picture in a browser (``sensord.web``)."""

    listen: str = key("", "serve the map on HOST:PORT; '' = off", _web_listen)
    tile_url: str = key("", "optional map tiles, {z}/{x}/{y}; '' = vector basemap")
    max_clients: int = key(200, "pages open at once", _range(1, 10000))
    client_queue_max: int = key(16, "messages held for a slow page", _range(2, 1000))

    def get(self, name: str, default: Any = None) -> Any:
        return getattr(self, name, default)


# [tracker] is the tracker's own TrackerConfig: every parameter is settable, with the
# tracker's defaults. The checks below bound each; a parameter added to TrackerConfig later
# is settable at once (numbers must then be finite and not negative until given a range).
TRACKER_CHECKS: dict[str, Check] = {
    "sigma_accel_h_mps2": _range(0.01, 100),
    "sigma_accel_v_mps2": _range(0.01, 100),
    "imm_cv_sigma_accel_h_mps2": _range(0.01, 100),
    "imm_cv_sigma_accel_v_mps2": _range(0.01, 100),
    "imm_ca_sigma_jerk_h_mps3": _range(0.01, 100),
    "imm_ca_sigma_jerk_v_mps3": _range(0.01, 100),
    "nonlinear_filter": _choice("auto", "ekf", "ukf"),
    "gate_chi2": _range(1, 1000),
    "max_speed_mps": _range(50, 2000),
    "max_accel_mps2": _range(1, 200),
    "confirm_m": _range(1, 16),
    "confirm_n": _range(1, 16),
    "coast_after_s": _range(1, 600),
    "drop_after_s": _range(1, 3600),
    "tentative_drop_after_s": _range(1, 3600),
    "reorder_window_s": _range(0, 10),
    "pending_velocity_max_age_s": _range(0, 60),
}


def _tracker_problems(t: TrackerConfig) -> list[Problem]:
    problems = []
    if t.confirm_m > t.confirm_n:
        problems.append(
            Problem(
                "confirm_m",
                f"confirm_m = {t.confirm_m} > confirm_n = {t.confirm_n}: "
                "no track could ever be confirmed",
            )
        )
    if t.coast_after_s > t.drop_after_s:
        problems.append(
            Problem("coast_after_s", "must not exceed drop_after_s (tracks would never coast)")
        )
    return problems


# ---- the whole configuration: sections are registered here, one line each -------------
SECTION = {"section": True}  # field metadata of a section in Config


def _tracker_config() -> TrackerConfig:
    from sensord.tracker.tracker import TrackerConfig

    return TrackerConfig()


@dataclass
class Config:
    """The validated configuration: ``cfg.mqtt.port`` (``cfg["mqtt"]["port"]`` also works)."""

    receiver: ReceiverConfig = field(default_factory=ReceiverConfig, metadata=SECTION)
    source: SourceConfig = field(default_factory=SourceConfig, metadata=SECTION)
    demod: DemodConfig = field(default_factory=DemodConfig, metadata=SECTION)
    tracker: TrackerConfig = field(default_factory=_tracker_config, metadata=SECTION)
    mqtt: MqttConfig = field(default_factory=MqttConfig, metadata=SECTION)
    outputs: OutputsConfig = field(default_factory=OutputsConfig, metadata=SECTION)
    logging: LoggingConfig = field(default_factory=LoggingConfig, metadata=SECTION)
    fusion: FusionSection = field(default_factory=FusionSection, metadata=SECTION)
    web: WebSection = field(default_factory=WebSection, metadata=SECTION)
    zones: list = field(default_factory=list, compare=False)  # [zones.NAME] tables, parsed
    path: Path | None = field(default=None, compare=False)
    text: str = field(default="", compare=False, repr=False)

    def __getitem__(self, name: str) -> Any:
        if name not in sections():
            raise KeyError(name)
        return getattr(self, name)

    def keys(self) -> list[str]:
        """The section names (``{**cfg}`` gives the sections by name)."""
        return list(sections())

    def get(self, name: str, default: Any = None) -> Any:
        """A section, or the parsed ``zones``, by name."""
        if name == "zones":
            return self.zones
        return self[name] if name in sections() else default

    def override(self, name: str, key_name: str, value: Any, origin: str) -> None:
        """Set one key from the command line (``origin``, e.g. ``--rate``), checked like the
        TOML: a bad value is a UserError naming the flag."""
        current = getattr(self, name)
        value = _checked(type(current), key_name, value, lambda: origin)
        updated = replace(current, **{key_name: value})
        _raise_first(_section_problems(updated), lambda _k: origin)
        setattr(self, name, updated)


def sections() -> dict[str, type]:
    """TOML section name -> its dataclass, in the order of ``Config``."""
    from sensord.tracker.tracker import TrackerConfig

    hints = typing.get_type_hints(Config, localns={"TrackerConfig": TrackerConfig})
    return {f.name: hints[f.name] for f in fields(Config) if f.metadata.get("section")}


def _section_fields(cls: type) -> Iterator[tuple[Field, Any]]:
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        yield f, hints[f.name]


def _section_problems(value: Any) -> list[Problem]:
    from sensord.tracker.tracker import TrackerConfig

    if isinstance(value, TrackerConfig):
        return _tracker_problems(value)
    if isinstance(value, Section):
        return value.validate()
    return []


# ---- checking values ---------------------------------------------------------------------
def _accepted(hint: Any) -> tuple[type, ...]:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return tuple(t for arg in typing.get_args(hint) for t in _accepted(arg))
    return (hint,)


def _checked(cls: type, name: str, value: Any, where: Callable[[], str]) -> Any:
    """``value`` converted to the key's type and checked; UserError saying where."""
    hints = dict((f.name, (f, h)) for f, h in _section_fields(cls))
    f, hint = hints[name]
    if typing.get_origin(hint) is list:  # list[X]: a TOML array of X
        (item,) = typing.get_args(hint)
        if not isinstance(value, list) or not all(
            isinstance(v, item) and not (isinstance(v, bool) and item is not bool) for v in value
        ):
            raise UserError(f"{where()}: must be a list of {item.__name__}, got {value!r}")
        check = f.metadata.get("check")
        problem = check(value) if check else None
        if problem:
            raise UserError(f"{where()}: {problem} (got {value!r})")
        return list(value)
    accepted = _accepted(hint)
    if float in accepted and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, accepted) or (isinstance(value, bool) and bool not in accepted):
        names = " or ".join(t.__name__ for t in accepted)
        raise UserError(f"{where()}: must be {names}, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"{where()}: must be a finite number, got {value!r}")
    is_tracker = cls.__name__ == "TrackerConfig"
    check = f.metadata.get("check") or (TRACKER_CHECKS.get(name) if is_tracker else None)
    if check is None and isinstance(value, int | float) and not isinstance(value, bool):
        check = _range(0, math.inf)
    problem = check(value) if check else None
    if problem:
        raise UserError(f"{where()}: {problem} (got {value!r})")
    return value


def _raise_first(problems: list[Problem], where: Callable[[str], str]) -> None:
    if problems:
        raise UserError(f"{where(problems[0].key)}: {problems[0].message}")


# ---- reading the TOML --------------------------------------------------------------------
def _line_of(text: str, section_name: str, key_name: str | None) -> int | None:
    """1-based line of [section] (or of key within it), for error messages."""
    in_section = False
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        header = re.match(r"^\[\s*([^\]]+?)\s*\]", stripped)
        if header:
            in_section = header.group(1) == section_name
            if in_section and key_name is None:
                return number
            continue
        if in_section and key_name and re.match(rf"^{re.escape(key_name)}\s*=", stripped):
            return number
    return None


def where(path: Path | None, text: str, section_name: str, key_name: str | None) -> str:
    """``FILE:LINE: [section] key`` for messages about a key (the line where it is set)."""
    line = _line_of(text, section_name, key_name)
    if line is None and key_name is not None:  # a default: point at the section, if any
        line = _line_of(text, section_name, None)
    name = f"[{section_name}] {key_name}" if key_name else f"[{section_name}]"
    loc = f"{path}:{line}" if path and line else str(path or "<config>")
    return f"{loc}: {name}"


def parse(
    text: str, path: Path | None = None, required: Collection[tuple[str, str]] | None = None
) -> Config:
    """Validate TOML text; UserError naming the file, line and key on any fault.

    ``required`` (section, key) pairs must be given; by default the keys marked required
    (a receiver's position, for ``run``); ``frozenset()`` for ``fuse``, which has none.
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path or '<config>'}: not valid TOML: {exc}") from None
    zones: list = []
    if "zones" in doc:  # [zones.NAME] tables, validated there (imported only when given)
        from sensord.web.zones import parse_zones

        zones = parse_zones(doc.pop("zones"), str(path or "<config>"))
    known = sections()
    for name, value in doc.items():
        if name not in known:
            raise UserError(
                f"{where(path, text, name, None)}: unknown section (known: {', '.join(known)})"
            )
        if not isinstance(value, dict):
            raise UserError(f"{path or '<config>'}: '{name}' must be a [section]")
    cfg = Config(path=path, text=text, zones=zones)
    for name, cls in known.items():
        given = doc.get(name, {})
        own = {f.name: f for f, _ in _section_fields(cls)}
        for key_name in given:
            if key_name not in own:
                raise UserError(f"{where(path, text, name, key_name)}: unknown key")
        values = {}
        for key_name, f in own.items():
            if key_name not in given:
                if f.metadata.get("required") if required is None else (name, key_name) in required:
                    raise UserError(f"{path or '<config>'}: [{name}] {key_name} is required")
                continue
            values[key_name] = _checked(
                cls,
                key_name,
                given[key_name],
                functools.partial(where, path, text, name, key_name),
            )
        value = cls(**values)
        _raise_first(_section_problems(value), functools.partial(where, path, text, name))
        setattr(cfg, name, value)
    return cfg


def load(path: str | Path, required: Collection[tuple[str, str]] | None = None) -> Config:
    """Read and validate a configuration file (``required`` as in ``parse``)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{p}: configuration file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{p}: cannot read: {exc}") from None
    return parse(text, p, required)


def defaults() -> dict[str, dict[str, Any]]:
    """Every key's default, by section (what the example configuration shows)."""
    out: dict[str, dict[str, Any]] = {}
    for name, cls in sections().items():
        out[name] = {}
        for f, _ in _section_fields(cls):
            if f.default is not MISSING:
                out[name][f.name] = f.default
            elif f.default_factory is not MISSING:
                out[name][f.name] = f.default_factory()
    return out


# ---- secrets and TLS files: checked at start, they do not heal by retrying ---------------
def mqtt_password(mqtt: Any) -> str | None:
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


def _password_file_problems(path: Path) -> list[Problem]:
    try:
        mode = path.stat().st_mode
        path.read_bytes()
    except OSError as exc:
        return [Problem("password_file", f"{path}: cannot read: {exc.strerror}")]
    if mode & stat.S_IROTH:
        log.warning(
            "%s: the MQTT password file is readable by every user (mode %o); "
            "chmod 600 it (or 640 with a group only sensord is in)",
            path,
            stat.S_IMODE(mode),
        )
    return []


def _tls_problems(mqtt: MqttConfig) -> list[Problem]:
    """Build the TLS context the publisher will: bad files are named, with a hint."""
    import ssl

    for name in ("ca_file", "cert_file", "key_file"):
        value = getattr(mqtt, name)
        if not value:
            continue
        p = Path(value)
        if not p.is_file():
            return [Problem(name, f"{p}: no such file")]
        if not os.access(p, os.R_OK):
            return [Problem(name, f"{p}: permission denied (the daemon's user must read it)")]
    context = ssl.create_default_context()
    if mqtt.ca_file:
        try:
            context.load_verify_locations(cafile=mqtt.ca_file)
        except (ssl.SSLError, ValueError) as exc:
            return [
                Problem("ca_file", f"{mqtt.ca_file}: not a PEM CA certificate ({_reason(exc)})")
            ]
    if mqtt.cert_file:
        try:
            context.load_cert_chain(mqtt.cert_file, mqtt.key_file or None)
        except ssl.SSLError as exc:
            pair = f"{mqtt.cert_file}" + (f" and {mqtt.key_file}" if mqtt.key_file else "")
            return [
                Problem(
                    "cert_file",
                    f"{pair}: not a usable PEM certificate and key ({_reason(exc)}); "
                    "check that the key belongs to the certificate and is not encrypted",
                )
            ]
    return []


def _reason(exc: Exception) -> str:
    return getattr(exc, "reason", None) or str(exc) or type(exc).__name__


def broker_error_hint(message: str, mqtt: Any) -> str:
    """What to check when the broker refuses us, for the one warning the publisher logs.

    ``mqtt`` is the [mqtt] section or the publisher's settings (attributes are read)."""
    text = message.lower()
    get = functools.partial(getattr, mqtt)
    refused = ("not authorized", "bad user name", "password", "code:134", "code:135")
    if any(s in text for s in refused):
        if get("password_file", ""):
            source = f"password_file {get('password_file')}"
        elif get("password_env", ""):
            source = f"password_env ${get('password_env')}"
        elif get("password", None):
            source = "password_file / password_env"
        else:
            source = "password_file / password_env (no password is configured)"
        return (
            f"the broker refused the credentials: check [mqtt] username "
            f"({get('username', '') or 'empty'}) and {source}, and the broker's ACL"
        )
    if "certificate" in text or "ssl" in text or "tls" in text:
        return (
            f"TLS failed: check that [mqtt] ca_file ({get('ca_file', '') or 'system CAs'}) "
            f"signs the broker's certificate and that [mqtt] host ({get('host', '')}) is a "
            "name in it"
        )
    if "refused" in text:
        return (
            f"nothing accepts connections on {get('host', '')}:{get('port', '')}: is the broker up?"
        )
    return ""
