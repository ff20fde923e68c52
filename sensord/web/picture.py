"""The air picture the page shows: the newest state, trail and last events of every track,
the receivers with their state and measured coverage. Pure state, no I/O.

Pushes are throttled here: ``due`` hands out each changed track at most once per
``push_period_s`` of wall-clock time (a status change and a drop go out at once), so a
page gets at most one state per track per second however fast the tracker runs.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from sensord.outputs.aircraft_json import hex_of, source_of
from sensord.tracker.update import TrackStatus, TrackUpdate

TRAIL_POINTS = 120  # positions kept per track (one per second of the sample clock at most)
TRAIL_STEP_S = 1.0
EVENTS_KEPT = 8
EARLY_EVENTS_MAX = 1000  # tracks whose events arrived before their first state
COVERAGE_BINS = 36  # 10 degrees of bearing each
ONLINE_WITHIN_S = 5.0  # a receiver with a step this recent (wall clock) is online


@dataclass
class Receiver:
    """A sensor node on the map: its site, state and the farthest track seen per bearing.

    A radar node may carry its transmitter's position (``tx_lat_deg``, ``tx_lon_deg``): the
    page draws the baseline from the transmitter to the node."""

    name: str
    lat_deg: float
    lon_deg: float
    alt_m: float = 0.0
    kind: str = "adsb"  # "adsb" receiver or "radar" node
    online: bool = False
    last_seen_wall_s: float | None = None
    sync: str | None = None  # MLAT clock sync health, when the fusion node reports it
    coverage_m: list[float] = field(default_factory=lambda: [0.0] * COVERAGE_BINS)
    tx_lat_deg: float | None = None  # a radar node's transmitter (illuminator)
    tx_lon_deg: float | None = None

    def observe(self, lat_deg: float, lon_deg: float) -> None:
        """Extend the coverage with a track position seen by this receiver."""
        range_m, bearing_deg = range_bearing(self.lat_deg, self.lon_deg, lat_deg, lon_deg)
        b = int(bearing_deg // (360 / COVERAGE_BINS)) % COVERAGE_BINS
        if range_m > self.coverage_m[b]:
            self.coverage_m[b] = range_m

    def to_dict(self, wall_s: float) -> dict:
        online = self.online or (
            self.last_seen_wall_s is not None and wall_s - self.last_seen_wall_s < ONLINE_WITHIN_S
        )
        return {
            "name": self.name,
            "lat": round(self.lat_deg, 6),
            "lon": round(self.lon_deg, 6),
            "alt_m": round(self.alt_m, 1),
            "kind": self.kind,
            "online": online,
            "sync": self.sync,
            "coverage_m": [round(r) for r in self.coverage_m],
            "tx": None
            if self.tx_lat_deg is None or self.tx_lon_deg is None
            else [round(self.tx_lat_deg, 6), round(self.tx_lon_deg, 6)],
        }


def range_bearing(lat1: float, lon1: float, lat2: float, lon2: float) -> tuple[float, float]:
    """Great-circle distance (m, spherical Earth) and initial bearing (deg) from 1 to 2."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    range_m = 2 * 6_371_008.8 * math.asin(min(1.0, math.sqrt(a)))
    y = math.sin(dl) * math.cos(p2)
    x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return range_m, math.degrees(math.atan2(y, x)) % 360.0


@dataclass
class TrackView:
    """What the page holds of one track."""

    update: TrackUpdate
    trail: deque = field(default_factory=lambda: deque(maxlen=TRAIL_POINTS))
    events: deque = field(default_factory=lambda: deque(maxlen=EVENTS_KEPT))
    sent_wall_s: float | None = None
    sent_status: TrackStatus | None = None


def track_dict(u: TrackUpdate) -> dict:
    """A track for the page: the MQTT payload plus its kind and readsb-style hex."""
    d = u.to_dict()
    d["source"] = source_of(u)
    d["hex"] = hex_of(u)
    return d


class AirPicture:
    """Tracks, receivers and zones as the page shows them."""

    def __init__(
        self, receivers: list[Receiver], push_period_s: float = 1.0, local: str | None = None
    ) -> None:
        self.receivers = {r.name: r for r in receivers}
        self.local = local  # the receiver whose steps these are (online while they come)
        self.push_period_s = push_period_s
        self.tracks: dict[str, TrackView] = {}
        self.now_s = 0.0  # newest sample-clock time seen
        self._changed: set[str] = set()
        self._dropped: list[str] = []
        self._early_events: dict[str, list[dict]] = {}  # for tracks not seen yet

    def apply(self, updates: list[TrackUpdate], wall_s: float) -> None:
        """Take one step's updates."""
        for u in updates:
            self.now_s = max(self.now_s, u.t_s)
            view = self.tracks.get(u.track_id)
            if u.status is TrackStatus.DROPPED:
                self._early_events.pop(u.track_id, None)
                if view is not None:
                    del self.tracks[u.track_id]
                    self._changed.discard(u.track_id)
                    self._dropped.append(u.track_id)
                continue
            if view is None:
                view = self.tracks[u.track_id] = TrackView(u)
                view.events.append({"event": "new", "t_s": round(u.t_s, 3)})
                view.events.extend(self._early_events.pop(u.track_id, []))
            elif view.update.status is not u.status:
                view.events.append({"event": u.status.value, "t_s": round(u.t_s, 3)})
            view.update = u
            if u.lat_deg is not None and u.lon_deg is not None:
                if not view.trail or u.t_s - view.trail[-1][2] >= TRAIL_STEP_S:
                    view.trail.append((round(u.lat_deg, 5), round(u.lon_deg, 5), u.t_s))
                self._observe_coverage(u)
            self._changed.add(u.track_id)
        local = self.receivers.get(self.local) if self.local is not None else None
        if local is not None:
            local.last_seen_wall_s = wall_s

    def add_event(self, track_id: str, event: dict) -> None:
        """An event for the track's detail (a zone entered or left)."""
        view = self.tracks.get(track_id)
        if view is not None:
            view.events.append(event)
            self._changed.add(track_id)
        elif len(self._early_events) < EARLY_EVENTS_MAX:  # its step has not reached us yet
            self._early_events.setdefault(track_id, []).append(event)

    def _observe_coverage(self, u: TrackUpdate) -> None:
        seen_by = [self.receivers[s] for s in u.sensors if s in self.receivers]
        if not seen_by and len(self.receivers) == 1:
            seen_by = list(self.receivers.values())
        for r in seen_by:
            r.observe(u.lat_deg, u.lon_deg)  # type: ignore[arg-type]

    def due(self, wall_s: float) -> tuple[list[dict], list[str]]:
        """Tracks to push now (changed, and not pushed within the period unless their status
        changed) and the tracks dropped since the last call."""
        out = []
        for track_id in list(self._changed):
            view = self.tracks[track_id]
            status_changed = view.sent_status is not view.update.status
            if (
                not status_changed
                and view.sent_wall_s is not None
                and wall_s - view.sent_wall_s < self.push_period_s
            ):
                continue
            self._changed.discard(track_id)
            view.sent_wall_s = wall_s
            view.sent_status = view.update.status
            d = track_dict(view.update)
            d["events"] = list(view.events)
            out.append(d)
        dropped, self._dropped = self._dropped, []
        return out, dropped

    def snapshot(self, wall_s: float) -> dict:
        """Everything a page needs when it (re)connects, trails included."""
        tracks = []
        for view in self.tracks.values():
            d = track_dict(view.update)
            d["events"] = list(view.events)
            d["trail"] = [[lat, lon] for lat, lon, _t in view.trail]
            tracks.append(d)
        return {
            "now_s": round(self.now_s, 3),
            "tracks": tracks,
            "receivers": self.receiver_dicts(wall_s),
        }

    def receiver_dicts(self, wall_s: float) -> list[dict]:
        return [r.to_dict(wall_s) for r in self.receivers.values()]
