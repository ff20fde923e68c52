"""The lifecycle role (Stone Soup's deleter, and confirmation).

tentative -> confirmed after ``confirm_m`` accepted measurements among the last
``confirm_n`` -> coasting when no kinematic measurement arrived for ``coast_after_s`` ->
dropped after ``drop_after_s`` (``tentative_drop_after_s`` for a tentative track)
without any detection. A coasting track that takes a measurement is confirmed again.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from sensord.tracker.track import Track
from sensord.tracker.update import TrackStatus

if TYPE_CHECKING:
    from sensord.tracker.tracker import TrackerConfig


class Lifecycle:
    """Status changes of tracks as measurements arrive and time passes."""

    def __init__(self, config: TrackerConfig) -> None:
        self.config = config
        self._quiet_until_s = -math.inf  # no track changes status before this

    def watch(self, track: Track) -> None:
        """A new track, or one that changed status: it may change from here on."""
        self._quiet_until_s = min(self._quiet_until_s, self._next_change_s(track))

    def _next_change_s(self, track: Track) -> float:
        """When the track, as it is, would next coast or drop. Its times only grow and its
        other status changes go through ``accepted`` (which calls ``watch``), so this
        bounds its next change until then."""
        cfg = self.config
        if track.status == TrackStatus.TENTATIVE:
            return track.last_seen_s + min(cfg.tentative_drop_after_s, cfg.drop_after_s)
        if track.status == TrackStatus.CONFIRMED:
            return min(
                track.last_seen_s + cfg.drop_after_s, track.last_update_s + cfg.coast_after_s
            )
        return track.last_seen_s + cfg.drop_after_s

    def accepted(self, track: Track) -> None:
        """The filter took a measurement: confirm a tentative track that has enough hits,
        and a coasting one."""
        cfg = self.config
        if track.status == TrackStatus.COASTING or (
            track.status == TrackStatus.TENTATIVE
            and sum(list(track.hits)[-cfg.confirm_n :]) >= cfg.confirm_m
        ):
            track.status = TrackStatus.CONFIRMED
            self.watch(track)

    def due(self, tracks: list[Track], t_s: float) -> list[tuple[Track, bool]]:
        """Tracks whose status changes at t_s: (track, True) to drop, (track, False) coasting."""
        if t_s <= self._quiet_until_s:
            return []
        cfg = self.config
        changed = []
        quiet_until_s = math.inf
        for track in tracks:
            silent = t_s - track.last_seen_s
            if (
                track.status == TrackStatus.TENTATIVE and silent > cfg.tentative_drop_after_s
            ) or silent > cfg.drop_after_s:
                changed.append((track, True))
            elif (
                track.status == TrackStatus.CONFIRMED
                and t_s - track.last_update_s > cfg.coast_after_s
            ):
                track.status = TrackStatus.COASTING
                changed.append((track, False))
            else:
                quiet_until_s = min(quiet_until_s, self._next_change_s(track))
        self._quiet_until_s = quiet_until_s
        return changed
