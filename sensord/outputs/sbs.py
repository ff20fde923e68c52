"""SBS / BaseStation output (TCP 30003): ``MSG,<type>,...`` CSV lines from track updates.

Per update: MSG,1 (identification) when a callsign is known, MSG,3 (airborne position,
with barometric altitude) when a position is known, MSG,4 (velocity) when a ground
speed is known, MSG,6 (squawk) when a squawk is known. Fields are the 22 of the
BaseStation format; dates are the wall clock (UTC) at which the line was written.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sensord.tracker.update import TrackStatus, TrackUpdate

N_FIELDS = 22


def _fmt(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _line(msg_type: int, update: TrackUpdate, now: datetime, **fields: str) -> str:
    date, clock = now.strftime("%Y/%m/%d"), now.strftime("%H:%M:%S.%f")[:-3]
    row = ["MSG", str(msg_type), "1", "1", update.icao or "", "1", date, clock, date, clock]
    row += [""] * (N_FIELDS - len(row))
    names = ["callsign", "alt", "gs", "track", "lat", "lon", "vrate", "squawk"]
    for name, value in fields.items():
        row[10 + names.index(name)] = value
    return ",".join(row)


def lines_for_update(update: TrackUpdate, now: datetime | None = None) -> list[str]:
    """The SBS lines describing one track update (none for a dropped or address-less track)."""
    if update.status is TrackStatus.DROPPED or not update.icao:
        return []
    now = now or datetime.now(timezone.utc)
    out = []
    if update.callsign:
        out.append(_line(1, update, now, callsign=update.callsign))
    if update.lat_deg is not None and update.lon_deg is not None:
        out.append(
            _line(
                3,
                update,
                now,
                alt=_fmt(update.alt_baro_ft, 0),
                lat=_fmt(update.lat_deg, 5),
                lon=_fmt(update.lon_deg, 5),
            )
        )
    if update.gs_kt is not None:
        out.append(
            _line(
                4,
                update,
                now,
                gs=_fmt(update.gs_kt, 0),
                track=_fmt(update.track_deg, 0),
                vrate=_fmt(update.vrate_fpm, 0),
            )
        )
    if update.squawk:
        out.append(_line(6, update, now, squawk=update.squawk))
    return out


def encode_updates(updates: list[TrackUpdate], now: datetime | None = None) -> bytes:
    """A batch of track updates as CRLF-terminated SBS lines."""
    return b"".join(
        (line + "\r\n").encode("ascii") for u in updates for line in lines_for_update(u, now)
    )
