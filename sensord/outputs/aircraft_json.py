"""aircraft.json in the dump1090/readsb format, for tar1090 and other map front ends.

Written atomically (temporary file in the same directory, then ``os.replace``) so a
reader never sees half a file. Positions are the tracker's filtered estimates; their
95 % horizontal radius is given as ``rc`` (containment radius, m) as readsb does.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from sensord.errors import UserError
from sensord.sinks.table import TrackTable
from sensord.tracker.update import TrackUpdate


def aircraft_entry(
    update: TrackUpdate, now_s: float, messages: int, rssi_dbfs: float | None
) -> dict:
    """One ``aircraft[]`` element; absent values are left out, as dump1090 does."""
    entry: dict = {"hex": (update.icao or update.track_id).lower()}
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
    seen_s = max(0.0, now_s - update.t_s)
    entry["seen"] = round(seen_s, 1)
    if update.lat_deg is not None:
        entry["seen_pos"] = round(seen_s, 1)
    entry["messages"] = messages
    entry["sensord_status"] = update.status.value
    return entry


class AircraftJsonWriter:
    """Keeps the newest update per track and writes ``<directory>/aircraft.json``."""

    def __init__(self, directory: str | Path, table: TrackTable | None = None):
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise UserError(f"aircraft.json directory {self.directory} does not exist")
        self.path = self.directory / "aircraft.json"
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

    def document(self, now_s: float) -> dict:
        """The aircraft.json content at ``now_s`` (seconds of the sample clock)."""
        aircraft = []
        for u in self.table.values():
            addr = int(u.icao, 16) if u.icao else -1
            aircraft.append(
                aircraft_entry(
                    u, now_s, self._messages.get(addr, u.n_updates), self._rssi.get(addr)
                )
            )
        return {"now": round(now_s, 1), "messages": self.messages_total, "aircraft": aircraft}

    def write(self, now_s: float) -> None:
        """Write the file atomically; a write error is one clear message."""
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".aircraft.", suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                json.dump(self.document(now_s), f, separators=(",", ":"))
            os.chmod(tmp, 0o644)
            os.replace(tmp, self.path)
        except OSError as exc:
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)
            raise UserError(f"cannot write {self.path}: {exc.strerror or exc}") from exc
