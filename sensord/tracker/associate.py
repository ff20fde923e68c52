"""The associator role: which track each detection belongs to.

ICAO first: a Mode S detection goes to the track of its address. Identified detections
are taken in rounds, the k-th detection of every address in round k, so one batched
filter step serves a round while each track still sees its own detections in time
order. An anonymous detection (a radar: no identity) is gated against every track's
prediction at its time, h(x) through its own measurement model (linear, or non-linear
such as a bistatic range), and the detections of one scan (one sensor, one instant)
are assigned by global nearest neighbour: the minimum total squared Mahalanobis
distance over the admitted pairs (``assignment.gnn_pairs``). For a non-linear model the
pairs far outside the gate by the EKF's linearisation (``PREFILTER`` times the gate)
are refused before the unscented transform the updater may use for the rest, and so are
transponder tracks whose velocity is still unknown (their first states before a velocity
message): their gate is wide, a range rate would steer them, and their own velocity
message is due. An anonymous track (a radar's) takes its velocity from range rates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sensord.detections import Detection
from sensord.tracker.assignment import gnn_pairs
from sensord.tracker.bank import FilterBank
from sensord.tracker.measurement import MeasurementModel
from sensord.tracker.track import Track
from sensord.tracker.updater import Measurements

Numbered = tuple[int, Detection]  # a detection and its position in its batch
PREFILTER = 4.0  # non-linear models: pairs beyond 4x the gate by the EKF skip the UKF
MAX_VELOCITY_SIGMA_MPS = 30.0  # non-linear models: transponder tracks with a vaguer velocity
# are not candidates


def rounds(dets: list[Detection]) -> list[list[Numbered]]:
    """Identified detections (time order) in rounds: round k holds the k-th of each address."""
    out: list[list[Numbered]] = []
    seen: dict[int, int] = {}
    for i, d in enumerate(dets):
        k = seen.get(d.icao, 0)  # type: ignore[arg-type]
        seen[d.icao] = k + 1  # type: ignore[index]
        if k == len(out):
            out.append([])
        out[k].append((i, d))
    return out


@dataclass(slots=True)
class ScanAssignment:
    """The pairs (detection index, track) of a scan and the detections left over."""

    pairs: list[tuple[int, Track]]
    unassigned: list[int]


class Associator:
    """GNN over a scan of anonymous detections, gated on the bank's own prediction."""

    def __init__(
        self,
        bank: FilterBank,
        gate_chi2: float,
        model_of: Callable[[Detection], MeasurementModel | None],
    ) -> None:
        self.bank = bank
        self.gate_chi2 = gate_chi2
        self.model_of = model_of

    def distances(self, scan: list[Detection], tracks: list[Track]) -> np.ndarray:
        """Squared distances (detections, tracks); inf where a track is ahead of the scan."""
        d2 = np.full((len(scan), len(tracks)), np.inf)
        t_s = scan[0].t_s
        candidates = [j for j, tr in enumerate(tracks) if t_s >= tr.t_s]
        if not candidates:
            return d2
        filters = [tracks[j].filt for j in candidates]
        x, p = self.bank.predicted(filters, np.array([t_s - tracks[j].t_s for j in candidates]))
        groups: dict[MeasurementModel, list[int]] = {}
        for i, d in enumerate(scan):
            model = self.model_of(d)
            if model is not None:
                groups.setdefault(model, []).append(i)
        n = len(candidates)
        cols = np.array(candidates)
        identified = np.array([tracks[j].icao is not None for j in candidates])
        vague = identified & (p[:, 3, 3] + p[:, 4, 4] > 2 * MAX_VELOCITY_SIGMA_MPS**2)
        for model, dets in groups.items():
            z = np.repeat(np.stack([scan[i].z for i in dets]), n, axis=0)
            r = np.repeat(np.stack([scan[i].R for i in dets]), n, axis=0)
            rows = np.arange(len(dets) * n, dtype=np.intp)
            dist = self.bank.updater.distances(
                np.tile(x, (len(dets), 1)),
                np.tile(p, (len(dets), 1, 1)),
                rows,
                Measurements(model, z, r),
                prefilter_chi2=PREFILTER * self.gate_chi2,
            )
            block = dist.reshape(len(dets), n)
            if not model.linear:
                block[:, vague] = np.inf
            d2[np.ix_(np.array(dets), cols)] = block
        return d2

    def scan(self, scan: list[Detection], tracks: list[Track]) -> ScanAssignment:
        """Assign a scan's detections (one sensor, one t_s) to tracks."""
        if not tracks:
            return ScanAssignment([], list(range(len(scan))))
        d2 = self.distances(scan, tracks)
        pairs = gnn_pairs(d2, d2 <= self.gate_chi2)
        taken = {i for i, _ in pairs}
        return ScanAssignment(
            [(i, tracks[j]) for i, j in pairs], [i for i in range(len(scan)) if i not in taken]
        )
