"""Per-node state in the fusion node: its ``info``, online state and counters.

A node's detections are used only once its ``info`` (position, clock) is known; until then
they are counted as ``waiting_info``. A changed position is applied to the next batch. A
malformed payload, a non-finite value, an unknown schema or an absurd position is counted
under the node and logged once per node and kind: it never raises, and it touches no
other node's state. A node whose UTC disagrees with the fusion clock (``clockcheck``) has
its detections counted as ``clock``: one WARNING when that starts, one INFO when it ends.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

from sensord.fusion.clockcheck import ClockLimits, NodeClock
from sensord.fusion.wire import NodeInfo
from sensord.geo import Site, great_circle_m

log = logging.getLogger(__name__)


@dataclass
class NodeCounters:
    """What the fusion node did with one node's input (the status topic's per-node part)."""

    batches: int = 0
    detections_in: int = 0
    used: int = 0
    duplicates: int = 0
    late: int = 0
    waiting_info: int = 0
    invalid: int = 0  # malformed, non-finite, unknown schema
    out_of_range: int = 0  # a measured position beyond max_target_range_km
    unmapped: int = 0  # a measurement that cannot be carried into the fusion frame
    bad_info: int = 0
    clock: int = 0  # its UTC disagrees with the fusion clock (clockcheck)
    overflow: int = 0  # the reorder window already held max_held_per_node of its detections


@dataclass
class NodeState:
    """One node as the fusion node knows it."""

    name: str
    info: NodeInfo | None = None
    site: Site | None = None
    online: bool | None = None  # None: no status seen
    offline_events: int = 0
    last_utc: float | None = None
    counters: NodeCounters = field(default_factory=NodeCounters)
    reported: set[str] = field(default_factory=set)  # fault kinds already logged
    clock: NodeClock = field(default_factory=NodeClock)
    held: int = 0  # its detections (and CPIs) in the reorder window now

    def fault(self, kind: str, reason: str, count: int = 1) -> None:
        """Count ``count`` inputs of fault ``kind``; log the first of each kind."""
        setattr(self.counters, kind, getattr(self.counters, kind) + count)
        if kind not in self.reported:
            self.reported.add(kind)
            log.warning("node %s: %s (%s; counted, logged once)", self.name, reason, kind)

    def log_clock(self, change: str | None, limits: ClockLimits) -> None:
        """Log a change of its clock state (``NodeClock.observe``): a WARNING when it
        starts to disagree with the fusion clock, INFO when it agrees again."""
        offset_s = self.clock.offset_s
        if change is None or offset_s is None:
            return
        if change == "fault":
            side = "ahead of" if offset_s > 0 else "behind"
            log.warning(
                "node %s: UTC %.1f s %s the fusion clock (limits: %.1f s ahead, %.1f s behind); "
                "its detections are refused until it agrees (clock; counted)",
                self.name, abs(offset_s), side, limits.ahead_s, limits.behind_s,
            )  # fmt: skip
        else:
            log.info(
                "node %s: UTC agrees with the fusion clock again (%+.2f s); its detections are "
                "used (%d refused for their clock so far)",
                self.name, offset_s, self.counters.clock,
            )  # fmt: skip

    def to_status(self) -> dict:
        offset_s = self.clock.offset_s
        return {
            "online": self.online,
            "info": self.info is not None,
            "offline_events": self.offline_events,
            "last_utc": round(self.last_utc, 3) if self.last_utc is not None else None,
            "clock_offset_s": round(offset_s, 3) if offset_s is not None else None,
            "clock_fault": self.clock.faulty,
            "held": self.held,
            **asdict(self.counters),
        }


class NodeRegistry:
    """Every node seen, by name."""

    def __init__(self, max_node_range_m: float = 1000e3) -> None:
        self.max_node_range_m = max_node_range_m
        self.nodes: dict[str, NodeState] = {}

    def get(self, name: str) -> NodeState:
        state = self.nodes.get(name)
        if state is None:
            state = self.nodes[name] = NodeState(name)
        return state

    def apply_info(self, info: NodeInfo, fusion: Site | None) -> bool:
        """Take a node's info; False (counted, logged) if its position is absurd."""
        state = self.get(info.node)
        if fusion is not None:
            distance_m = float(
                great_circle_m(info.lat_deg, info.lon_deg, fusion.lat_deg, fusion.lon_deg)
            )
            if distance_m > self.max_node_range_m:
                state.fault(
                    "bad_info",
                    f"position {info.lat_deg:.4f},{info.lon_deg:.4f} is {distance_m / 1e3:.0f} km "
                    f"from the fusion site (limit {self.max_node_range_m / 1e3:.0f} km): ignored",
                )
                return False
        site = Site(info.lat_deg, info.lon_deg, info.alt_m)
        if state.site is not None and state.site != site:
            log.info("node %s moved to %.5f,%.5f,%.0f m", info.node, *_triple(site))
        elif state.site is None:
            log.info("node %s at %.5f,%.5f,%.0f m", info.node, *_triple(site))
        state.info, state.site = info, site
        return True

    def set_online(self, name: str, online: bool) -> None:
        state = self.get(name)
        if state.online and not online:
            state.offline_events += 1
            log.info("node %s went offline: its tracks coast", name)
        elif online and state.online is False:
            log.info("node %s is back online", name)
        state.online = online

    def to_status(self) -> dict:
        return {name: state.to_status() for name, state in sorted(self.nodes.items())}


def _triple(site: Site) -> tuple[float, float, float]:
    return site.lat_deg, site.lon_deg, site.alt_m
