"""The live track table (like ``dump1090 --interactive``), built with rich."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Table

from sensord.geo import Site
from sensord.sinks.files import range_m
from sensord.sinks.table import TrackTable
from sensord.tracker.update import TrackStatus, TrackUpdate

COLUMNS = (
    "ICAO",
    "Callsign",
    "Sqwk",
    "Alt ft",
    "GS kt",
    "Trk°",
    "Dist km",
    "Msgs",
    "Age s",
    "±m 95%",
    "State",
)


class TrackBoard:
    """The live tracks of a track table, as rows and a rich table.

    With a shared ``table`` (the fan-out's) the board only reads it: ``observe`` advances
    its clock. Without one (``watch``, fed from MQTT) it keeps its own: ``update``.
    ``stale`` marks every row when the node said it is offline (its retained states are
    what it last knew, not live tracks).
    """

    def __init__(self, site: Site | None = None, table: TrackTable | None = None) -> None:
        self.site = site
        self.track_table = TrackTable() if table is None else table
        self.now_s = 0.0
        self.stale = False

    @property
    def tracks(self) -> dict[str, TrackUpdate]:
        return self.track_table.tracks

    def observe(self, updates: list[TrackUpdate]) -> None:
        """The clock moves on with the updates (the shared table already has them)."""
        for u in updates:
            self.now_s = max(self.now_s, u.t_s)

    def update(self, updates: list[TrackUpdate]) -> None:
        """Apply updates to the board's own table."""
        self.observe(updates)
        self.track_table.apply(updates)

    def drop(self, track_id: str) -> None:
        self.track_table.drop(track_id)

    def range_m(self, u: TrackUpdate) -> float | None:
        """Horizontal distance from the site to the track's position, m."""
        return None if self.site is None else range_m(self.site, u)

    def rows(self) -> list[tuple[str, ...]]:
        """One row of text per track, nearest first (tracks without position last)."""

        def fmt(value: float | None, digits: int = 0) -> str:
            return "" if value is None else f"{value:.{digits}f}"

        ordered = sorted(
            self.tracks.values(), key=lambda u: (self.range_m(u) is None, self.range_m(u) or 0.0)
        )
        out: list[tuple[str, ...]] = []
        for u in ordered:
            rng = self.range_m(u)
            out.append(
                (
                    u.icao or u.track_id,
                    u.callsign or "",
                    u.squawk or "",
                    fmt(u.alt_baro_ft),
                    fmt(u.gs_kt),
                    fmt(u.track_deg),
                    fmt(None if rng is None else rng / 1000, 1),
                    str(u.n_updates),
                    fmt(max(0.0, self.now_s - u.t_s), 1),
                    fmt(u.h_err95_m),
                    f"{u.status.value} (stale)" if self.stale else u.status.value,
                )
            )
        return out

    def table(self, title: str = "sensord") -> Table:
        """The rich table of the current tracks."""
        table = Table(title=f"{title} — {len(self.tracks)} tracks", expand=False)
        for name in COLUMNS:
            table.add_column(
                name, justify="left" if name in ("ICAO", "Callsign", "State") else "right"
            )
        for row in self.rows():
            table.add_row(*row)
        return table


def update_from_payload(payload: dict) -> TrackUpdate:
    """A TrackUpdate from its MQTT/JSON payload (``TrackUpdate.to_dict``); unknown keys ignored."""
    names = TrackUpdate.__dataclass_fields__
    kwargs = {k: v for k, v in payload.items() if k in names}
    kwargs["status"] = TrackStatus(payload["status"])
    kwargs["sensors"] = tuple(payload.get("sensors", ()))
    return TrackUpdate(**kwargs)


def make_console() -> Console:
    """A console on stdout; without a terminal, wide enough that the table is not truncated."""
    return Console(file=sys.stdout, width=None if sys.stdout.isatty() else 140)
