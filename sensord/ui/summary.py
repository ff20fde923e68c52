"""End-of-run summary: frames by DF, corrections, tracks, positions, max range."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from sensord.tracker.update import TrackStatus, TrackUpdate


@dataclass
class RunSummary:
    """Totals accumulated over a replay or a live run."""

    samples: int = 0
    frames_by_df: Counter = field(default_factory=Counter)
    corrected: int = 0
    track_ids: set[str] = field(default_factory=set)
    confirmed_ids: set[str] = field(default_factory=set)
    positions: int = 0
    max_range_m: float = 0.0

    def add_frames(self, frames: np.ndarray) -> None:
        for df, n in zip(*np.unique(frames["df"], return_counts=True), strict=True):
            self.frames_by_df[int(df)] += int(n)
        self.corrected += int(np.count_nonzero(frames["corrected_bits"]))

    def add_updates(self, updates: list[TrackUpdate], ranges_m: list[float | None]) -> None:
        for u, range_m in zip(updates, ranges_m, strict=True):
            self.track_ids.add(u.track_id)
            if u.status is TrackStatus.CONFIRMED:
                self.confirmed_ids.add(u.track_id)
            if u.lat_deg is not None and u.status is not TrackStatus.DROPPED:
                self.positions += 1
            if range_m is not None:
                self.max_range_m = max(self.max_range_m, range_m)

    def lines(self, rate_hz: float | None = None) -> list[str]:
        """The summary as text lines."""
        n_frames = sum(self.frames_by_df.values())
        by_df = ", ".join(f"DF{df} {n}" for df, n in sorted(self.frames_by_df.items())) or "none"
        duration = f" ({self.samples / rate_hz:.1f} s)" if rate_hz and self.samples else ""
        return [
            f"samples     {self.samples}{duration}",
            f"frames      {n_frames}: {by_df}",
            f"corrected   {self.corrected}",
            f"tracks      {len(self.track_ids)} ({len(self.confirmed_ids)} confirmed)",
            f"positions   {self.positions} track updates with a position",
            f"max range   {self.max_range_m / 1000:.1f} km",
        ]
