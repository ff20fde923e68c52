"""aircraft.json and receiver.json in the readsb format, for tar1090 and other map front ends.

The format follows readsb's README-json (the fields tar1090 reads are listed in
docs/tar1090.md): ``now`` is the Unix time of the document, ``seen``/``seen_pos`` are
seconds before ``now`` on the sample clock, altitudes in ft, speeds in kt, rates in
ft/min, ``rssi`` in dBFS, ``rc`` the 95 % horizontal radius in m (readsb's containment
radius). ``type`` says which kind of sensor gave the position:

- ADS-B (the default, also when a track carries no ``source``): ``adsb_icao``, or
  ``adsb_other`` for a track without an ICAO address;
- MLAT: ``mlat``, with the derived fields listed in ``mlat``;
- radar only (non-cooperative): ``tisb_trackfile`` with a ``~`` hex (a track file, not
  an ICAO address), the derived fields listed in ``tisb`` (readsb's ``tisb_trackfile``
  is "typically from primary or Mode A/C radar").

The file is written atomically (temporary file in the same directory, then
``os.replace``) so a reader never sees half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from sensord import __version__
from sensord.errors import UserError
from sensord.sinks.table import TrackTable
from sensord.tracker.update import TrackUpdate

SOURCE_ADSB = "adsb"
SOURCE_MLAT = "mlat"
SOURCE_RADAR = "radar"
# fields whose value comes from the position solver rather than the aircraft's own report
DERIVED_FIELDS = ("lat", "lon", "rc", "gs", "track", "geom_rate")


def source_of(update: TrackUpdate) -> str:
    """``adsb``, ``mlat`` or ``radar``: the track's ``source`` field, ADS-B when absent."""
    return update.source if update.source in (SOURCE_MLAT, SOURCE_RADAR) else SOURCE_ADSB


def hex_of(update: TrackUpdate) -> str:
    """readsb's ``hex``: the ICAO address, or ``~`` and six hex digits for a track file."""
    if update.icao:
        return update.icao.lower()
    digits = "".join(c for c in update.track_id.lower() if c in "0123456789abcdef")
    return "~" + (digits[-6:] or "0").rjust(6, "0")


def readsb_type(update: TrackUpdate) -> str:
    """The ``type`` value for the track's source and address."""
    source = source_of(update)
    if source == SOURCE_MLAT:
        return "mlat"
    if source == SOURCE_RADAR:
        return "tisb_trackfile" if not update.icao else "tisb_icao"
    return "adsb_icao" if update.icao else "adsb_other"


def aircraft_entry(
    update: TrackUpdate, now_s: float, messages: int, rssi_dbfs: float | None
) -> dict:
    """One ``aircraft[]`` element; absent values are left out, as readsb does."""
    entry: dict = {"hex": hex_of(update), "type": readsb_type(update)}
    optional = {
        "flight": f"{update.callsign:<8}" if update.callsign else None,
        "squawk": update.squawk,
        "category": update.category,
        "alt_baro": None if update.alt_baro_ft is None else round(update.alt_baro_ft),
        "alt_geom": None if update.alt_geom_ft is None else round(update.alt_geom_ft),
        "gs": None if update.gs_kt is None else round(update.gs_kt, 1),
        "track": None if update.track_deg is None else round(update.track_deg, 1),
        "baro_rate": None if update.vrate_fpm is None else round(update.vrate_fpm),
        "lat": None if update.lat_deg is None else round(update.lat_deg, 6),
        "lon": None if update.lon_deg is None else round(update.lon_deg, 6),
        "rc": None if update.h_err95_m is None else round(update.h_err95_m),
        "rssi": None if rssi_dbfs is None else round(rssi_dbfs, 1),
    }
    entry.update({k: v for k, v in optional.items() if v is not None})
    derived = [k for k in DERIVED_FIELDS if k in entry]
    source = source_of(update)
    entry["mlat"] = derived if source == SOURCE_MLAT else []
    entry["tisb"] = derived if source == SOURCE_RADAR else []
    seen_s = max(0.0, now_s - update.t_s)
    entry["seen"] = round(seen_s, 1)
    if update.lat_deg is not None:
        entry["seen_pos"] = round(seen_s, 1)
    entry["messages"] = messages
    entry["sensord_status"] = update.status.value
    return entry


def receiver_document(lat_deg: float | None, lon_deg: float | None, refresh_ms: int = 1000) -> dict:
    """receiver.json: version, refresh period of aircraft.json, history files, site."""
    doc: dict = {"version": f"sensord {__version__}", "refresh": refresh_ms, "history": 0}
    if lat_deg is not None and lon_deg is not None:
        doc["lat"] = round(lat_deg, 4)
        doc["lon"] = round(lon_deg, 4)
    return doc


class AircraftJsonWriter:
    """Keeps the newest update per track; the aircraft.json document, and the file.

    ``directory`` None keeps the document in memory only (the web server serves it).
    """

    def __init__(self, directory: str | Path | None, table: TrackTable | None = None):
        self.directory = None if directory is None else Path(directory)
        if self.directory is not None and not self.directory.is_dir():
            raise UserError(f"aircraft.json directory {self.directory} does not exist")
        self.path = None if self.directory is None else self.directory / "aircraft.json"
        self.table = TrackTable() if table is None else table  # shared with the fan-out
        self.messages_total = 0
        self._messages: dict[int, int] = {}
        self._rssi: dict[int, float] = {}

    def add_frames(self, icaos: list[int], signal_dbfs: list[float]) -> None:
        """Count messages and keep the newest signal level per address."""
        for icao, level in zip(icaos, signal_dbfs, strict=True):
            self._messages[icao] = self._messages.get(icao, 0) + 1
            self._rssi[icao] = level
        self.messages_total += len(icaos)

    def add_updates(self, updates: list[TrackUpdate]) -> None:
        """Take the newest state of each track; a dropped track leaves the file."""
        self.table.apply(updates)

    def document(self, now_s: float, utc: float | None = None) -> dict:
        """The aircraft.json content at ``now_s`` (seconds of the sample clock).

        ``now`` is ``utc`` (the Unix time of ``now_s``) when known, else the wall clock.
        """
        aircraft = []
        for u in self.table.values():
            addr = int(u.icao, 16) if u.icao else -1
            aircraft.append(
                aircraft_entry(
                    u, now_s, self._messages.get(addr, u.n_updates), self._rssi.get(addr)
                )
            )
        now_utc = time.time() if utc is None else utc
        return {"now": round(now_utc, 1), "messages": self.messages_total, "aircraft": aircraft}

    def write(self, now_s: float, utc: float | None = None) -> None:
        """Write the file atomically; a write error is one clear message."""
        if self.directory is None or self.path is None:
            return
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".aircraft.", suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                json.dump(self.document(now_s, utc), f, separators=(",", ":"))
            os.chmod(tmp, 0o644)
            os.replace(tmp, self.path)
        except OSError as exc:
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)
            raise UserError(f"cannot write {self.path}: {exc.strerror or exc}") from exc
