"""The fusion stage: node batches in, fused track updates out, on UTC.

``Fuser`` takes what nodes publish (``info``, ``status``, v2 ``detections`` batches; see
``sensord.fusion.wire``), checks each node and payload (``nodes``), carries every
measurement into the fusion frame (``transform``), recognises copies of one reply
(``dedup``), holds detections for ``reorder_window_s`` so they reach the tracker in UTC
order, and runs one ``Tracker`` whose clock is UTC. Radar nodes' CPIs (``ingest_radar``)
take the same window and go through the same tracker (``radar``). A detection older
than what has already been released is late: dropped and counted under its node. ``step(now_utc)``
releases what the window lets go and advances the tracker (coasting, drops); the caller
owns the clock: the newest UTC seen plus the wall time since, live; the recordings'
progress, in a replay. Every message's UTC is compared with that clock (``clockcheck``):
a node whose UTC disagrees by more than ``max_clock_offset_s`` is refused (``clock``)
until it agrees again, and a message ahead by more than that never enters the window,
so one node's clock cannot move the picture. Until something was taken, messages that
disagree wait: if one node disagrees steadily the clock moves to it (``on_clock_restart``:
a replay, or the caller's clock is off). The window holds at most ``max_held_per_node``
of one node's detections (the rest: ``overflow``).
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

from sensord.detections import Detection
from sensord.fusion.clockcheck import ClockLimits, NodeClock
from sensord.fusion.dedup import Deduplicator, Reply
from sensord.fusion.nodes import NodeRegistry, NodeState
from sensord.fusion.radar import RadarCpi, RadarFusion
from sensord.fusion.radar_wire import RadarCpiMessage, parse_radar_cpi, parse_radar_info
from sensord.fusion.transform import FrameMapper
from sensord.fusion.wire import (
    DetectionBatch,
    PayloadError,
    copy_key,
    json_object,
    parse_batch,
    parse_detection,
    parse_info,
)
from sensord.geo import Site
from sensord.tracker.tracker import Tracker, TrackerConfig
from sensord.tracker.update import TrackUpdate

log = logging.getLogger(__name__)

UTC_MIN = 946_684_800.0  # 2000-01-01: before it, a clock that was never set
UTC_MAX = 4_102_444_800.0  # 2100-01-01
TAKE, REFUSE, PARK = "take", "refuse", "park"  # a message's clock verdict
PARK_MAX = 512  # messages parked while nothing was taken; more are refused (clock)


@dataclass
class FusionConfig:
    """The ``[fusion]`` section."""

    site: Site | None = None  # the fusion frame's origin; None: the first node's position
    reorder_window_s: float = 1.0  # 0: detections go to the tracker as they arrive
    dedup_window_s: float = 0.2
    max_node_range_km: float = 1000.0  # a node farther than this from the site is refused
    max_target_range_km: float = 600.0  # a measured position farther than this is refused
    max_ahead_s: float = 60.0  # a detection this far ahead of the newest UTC is refused
    # a node's UTC this far ahead of the fusion clock (or behind it by more than this and
    # the reorder window) is refused until it agrees again
    max_clock_offset_s: float = 2.0
    max_held_per_node: int = 20_000  # one node's detections the reorder window holds at most


class Fuser:
    """One air picture from every node's detections."""

    def __init__(self, config: FusionConfig | None = None, tracker: TrackerConfig | None = None):
        self.config = config or FusionConfig()
        self.tracker_config = replace(tracker or TrackerConfig(), reorder_window_s=0.0)
        self.nodes = NodeRegistry(self.config.max_node_range_km * 1e3)
        self.dedup = Deduplicator(self.config.dedup_window_s)
        self.tracker: Tracker | None = None
        self.mapper: FrameMapper | None = None
        self.on_reply: Callable[[Reply, bool], None] | None = None  # MLAT's tap
        self.on_clock_restart: Callable[[float], None] | None = None  # the caller's clock
        self.radar: RadarFusion | None = None
        self._heap: list[tuple[float, int, NodeState, Detection | RadarCpi]] = []
        self._seq = itertools.count()
        self._released_utc = -math.inf
        self._clock_utc = -math.inf  # the last step's now_utc (see _reference_utc)
        self._taken_any = False  # a detection or CPI was taken (the clock is not restarted)
        # messages waiting for the clock to stand (nothing taken yet): (node, UTC, count, take)
        self._parked: list[tuple[NodeState, float, int, Callable[[], int]]] = []
        bound_s = self.config.max_clock_offset_s
        self.clock_limits = ClockLimits(bound_s, max(bound_s, self.config.reorder_window_s))
        self.newest_utc = -math.inf
        self._limit_m = self.config.max_target_range_km * 1e3
        if self.config.site is not None:
            self._start(self.config.site)

    @property
    def released_utc(self) -> float:
        """Every detection up to this UTC has reached the tracker."""
        return self._released_utc

    @property
    def site(self) -> Site | None:
        return self.tracker.site if self.tracker is not None else None

    def _start(self, site: Site) -> None:
        self.tracker = Tracker(site, self.tracker_config)
        self.mapper = FrameMapper(site)
        self.radar = RadarFusion(site)
        log.info("fusion frame: ENU about %.5f,%.5f,%.0f m", site.lat_deg, site.lon_deg, site.alt_m)

    # ---- input ---------------------------------------------------------------------
    def node_info(self, node: str, payload: bytes | str | dict) -> None:
        """A node's retained ``info`` (``node`` is the topic's node name)."""
        state = self.nodes.get(node)
        try:
            doc = json_object(payload)
            info = parse_info(doc)
            bistatic = parse_radar_info(doc)
        except PayloadError as exc:
            state.fault("bad_info", f"unusable info: {exc}")
            return
        if info.node != node:
            state.fault("bad_info", f"info names node {info.node!r}")
            return
        if self.tracker is None:
            self._start(Site(info.lat_deg, info.lon_deg, info.alt_m))
        if self.nodes.apply_info(info, self.site) and bistatic is not None:
            assert self.radar is not None
            self.radar.node_info(node, bistatic)

    def node_status(self, node: str, payload: bytes | str | dict) -> None:
        """A node's ``status`` (its last will says offline): online state only."""
        try:
            doc = payload if isinstance(payload, dict) else json.loads(payload)
            state = doc.get("state") if isinstance(doc, dict) else None
        except ValueError:
            state = None
        if state in ("online", "offline"):
            self.nodes.set_online(node, state == "online")

    def ingest(self, node: str, payload: bytes | str | dict) -> int:
        """A node's detections batch; returns how many were taken (the rest are counted)."""
        state = self.nodes.get(node)
        try:
            batch = parse_batch(payload)
        except PayloadError as exc:
            state.fault("invalid", f"unusable detections payload: {exc}")
            return 0
        counters = state.counters
        counters.batches += 1
        counters.detections_in += len(batch.items)
        if batch.node != node:
            state.fault("invalid", f"batch names node {batch.node!r}", len(batch.items))
            return 0
        if state.site is None or self.mapper is None or self.site is None:
            state.fault("waiting_info", "detections before its info", len(batch.items))
            return 0
        if state.online is False:
            state.online = True  # detections flow: it is back
        return self._admit(
            state, batch.utc, len(batch.items), partial(self._take_batch, state, batch)
        )

    def _admit(self, state: NodeState, utc: float, count: int, take: Callable[[], int]) -> int:
        """A message of UTC ``utc`` (``count`` detections) taken now (``take``), parked until
        the clock stands, or refused, as the clock check says."""
        verdict = self._clock_verdict(state, utc, count)
        if verdict == PARK:
            self._parked.append((state, utc, count, take))
        return take() if verdict == TAKE else 0

    def _take_batch(self, state: NodeState, batch: DetectionBatch) -> int:
        """A batch whose UTC the clock check let in: its detections into the window."""
        taken = 0
        for item in batch.items:
            if state.held >= self.config.max_held_per_node:
                state.fault("overflow", "the reorder window holds max_held_per_node of its "
                            "detections already")  # fmt: skip
                continue
            d = self._take(state, item)
            if d is not None:
                self._hold(state, d.t_s, d)
                taken += 1
        state.counters.used += taken
        if taken:
            self._first_taken()
        return taken

    def _clock_verdict(self, state: NodeState, utc: float, count: int, observe: bool = True) -> str:
        """What becomes of a message of UTC ``utc`` (``count`` detections): TAKE; REFUSE
        (counted as clock) while the node's clock is in a fault or if the message is too
        far ahead; PARK while nothing was taken yet and it disagrees with the clock (the
        clock may be the odd one out: ``_restart_clock``)."""
        clock_utc = self._reference_utc()
        if observe and math.isfinite(clock_utc) and math.isfinite(utc):
            change = state.clock.observe(utc, clock_utc, self.clock_limits)
            if not self._taken_any and (
                state.clock.faulty or self.clock_limits.beyond(utc - clock_utc)
            ):
                state.clock.faulty = False  # undecided while nothing agreed with the clock
                offset_s = state.clock.offset_s
                if (
                    state.clock.settled
                    and offset_s is not None
                    and self.clock_limits.beyond(offset_s)
                ):
                    self._restart_clock(state)
                    return TAKE
                if len(self._parked) < PARK_MAX:
                    return PARK
            else:
                state.log_clock(change, self.clock_limits)
        if state.clock.faulty or self._too_far_ahead(utc):
            state.counters.clock += count  # logged by log_clock when the fault starts
            return REFUSE
        return TAKE

    def _first_taken(self) -> None:
        """Something was taken: the clock stands; what waited for that is judged by it."""
        if not self._taken_any:
            self._taken_any = True
            self._unpark()

    def _unpark(self) -> None:
        parked, self._parked = self._parked, []
        for state, utc, count, take in parked:
            if self._clock_verdict(state, utc, count, observe=False) == TAKE:
                take()

    def _restart_clock(self, state: NodeState) -> None:
        """Nothing was taken yet and ``state``'s node, settled, disagrees with the clock: a
        replay of recordings over MQTT, or this host's clock is off. The clock moves to it
        (``on_clock_restart`` tells the caller's); every node is judged anew."""
        offset_s = state.clock.offset_s
        assert offset_s is not None
        self._clock_utc = self._reference_utc() + offset_s
        self._released_utc = -math.inf
        for node in self.nodes.nodes.values():
            node.clock = NodeClock()
        log.info(
            "fusion clock: moved %+.1f s to node %s's UTC (no node agreed with it yet: a "
            "replay of recordings, or this host's clock is off)", offset_s, state.name,
        )  # fmt: skip
        if self.on_clock_restart is not None:
            self.on_clock_restart(self._clock_utc)
        self._unpark()  # what came before, judged by the clock moved

    def clock_agrees(self, node: str, utc: float) -> bool:
        """Whether a node's other messages (MLAT frames) of UTC ``utc`` may be used: the
        node's clock is not in a fault and ``utc`` is not too far ahead (nothing counted).
        Before anything was taken the clock does not stand yet (a replay's start): every
        frame is used, as MLAT syncs on the frames' 12 MHz counters, not on their UTC."""
        if not self._taken_any:
            return True
        state = self.nodes.get(node)
        return not state.clock.faulty and not self._too_far_ahead(utc)

    def _too_far_ahead(self, utc: float) -> bool:
        """Ahead of the fusion clock by more than the limit (never, before the first step)."""
        limit_utc = self._reference_utc() + self.clock_limits.ahead_s
        return math.isfinite(limit_utc) and utc > limit_utc

    def _reference_utc(self) -> float:
        """The fusion clock now: the last step's, or the newest UTC taken since (a replay
        faster than real time moves on between steps), -inf before the first step."""
        if self._clock_utc == -math.inf:
            return -math.inf
        return max(self._clock_utc, self.newest_utc)

    def _hold(self, state: NodeState, utc: float, item: Detection | RadarCpi) -> None:
        heapq.heappush(self._heap, (utc, next(self._seq), state, item))
        state.held += 1

    def ingest_radar(self, node: str, payload: bytes | str | dict) -> int:
        """A radar node's CPI message; returns how many detections were taken."""
        state = self.nodes.get(node)
        radar = self.radar.nodes.get(node) if self.radar is not None else None
        if radar is None:
            state.counters.batches += 1
            state.fault("waiting_info", "radar detections before its info (with a radar object)")
            return 0
        try:
            msg = parse_radar_cpi(payload, radar.bistatic.wavelength_m)
        except PayloadError as exc:
            state.counters.batches += 1
            state.fault("invalid", f"unusable radar payload: {exc}")
            return 0
        counters = state.counters
        counters.batches += 1
        counters.detections_in += len(msg.detections) + msg.rejected
        if msg.rejected:
            state.fault("invalid", f"unusable radar detection: {msg.reason}", msg.rejected)
        if msg.node != node:
            state.fault("invalid", f"radar CPI names node {msg.node!r}", len(msg.detections))
            return 0
        ahead_limit = self.newest_utc + self.config.max_ahead_s
        if not UTC_MIN <= msg.utc <= UTC_MAX or msg.utc > ahead_limit > -math.inf:
            state.fault("invalid", "a UTC far ahead of every other node's (or before 2000)")
            return 0
        return self._admit(state, msg.utc, len(msg.detections), partial(self._take_cpi, state, msg))

    def _take_cpi(self, state: NodeState, msg: RadarCpiMessage) -> int:
        """A CPI whose UTC the clock check let in: into the window (unless late)."""
        if msg.utc < self._released_utc and self.config.reorder_window_s > 0:
            state.fault("late", "a radar CPI older than the reorder window", len(msg.detections))
            return 0
        if state.held >= self.config.max_held_per_node:
            state.fault("overflow", "the reorder window holds max_held_per_node of its CPIs",
                        len(msg.detections))  # fmt: skip
            return 0
        assert self.radar is not None
        if state.online is False:
            state.online = True
        state.last_utc = msg.utc if state.last_utc is None else max(state.last_utc, msg.utc)
        self.newest_utc = max(self.newest_utc, msg.utc)
        self._hold(state, msg.utc, self.radar.cpi(msg))
        state.counters.used += len(msg.detections)
        self._first_taken()
        return max(len(msg.detections), 1)

    def _take(self, state: NodeState, item: object) -> Detection | None:
        """One detection object of ``state``'s node, or None (counted: late, duplicate,
        invalid, unmapped, out of range). Copies of a reply already taken are not parsed."""
        try:
            key = copy_key(item)
        except PayloadError as exc:
            state.fault("invalid", f"unusable detection: {exc}")
            return None
        ahead_limit = self.newest_utc + self.config.max_ahead_s
        if not UTC_MIN <= key.utc <= UTC_MAX or key.utc > ahead_limit > -math.inf:
            state.fault("invalid", "a UTC far ahead of every other node's (or before 2000)")
            return None
        if self._too_far_ahead(key.utc):  # an item ahead of its batch's UTC
            state.counters.clock += 1
            return None
        state.last_utc = key.utc if state.last_utc is None else max(state.last_utc, key.utc)
        if key.utc < self._released_utc and self.config.reorder_window_s > 0:
            state.fault("late", "detections older than the reorder window")
            return None
        reply, first = self.dedup.offer(key.frame, key.utc, state.name, key.signal_dbfs)
        if self.on_reply is not None:
            self.on_reply(reply, first)
        if not first and (reply.kinematic or not key.kinematic):
            state.counters.duplicates += 1
            return None
        try:
            d = parse_detection(item, state.name)
        except PayloadError as exc:
            if first and key.frame is not None:
                self.dedup.forget(key.frame)
            state.fault("invalid", f"unusable detection: {exc}")
            return None
        assert self.mapper is not None and state.site is not None
        if not self.mapper.to_fusion(d, state.site):
            state.fault("unmapped", f"cannot map {d.observes} into the fusion frame")
            return None
        if d.observes[:2] == ("e", "n") and math.hypot(d.z[0], d.z[1]) > self._limit_m:
            state.fault("out_of_range", "a position beyond max_target_range_km")
            return None
        reply.kinematic = reply.kinematic or bool(d.observes)
        d.t_s = key.utc  # the fusion tracker's clock is UTC
        self.newest_utc = max(self.newest_utc, key.utc)
        return d

    # ---- output --------------------------------------------------------------------
    def step(self, now_utc: float) -> list[TrackUpdate]:
        """Release detections up to ``now_utc - reorder_window_s``; advance the tracker there.
        ``now_utc`` is also the clock the nodes' UTCs are checked against until the next step."""
        if math.isfinite(now_utc):
            self._clock_utc = now_utc
        return self._release(now_utc - self.config.reorder_window_s)

    def flush(self) -> list[TrackUpdate]:
        """Everything still held (end of a replay, shutdown)."""
        newest = max((utc for utc, _, _, _ in self._heap), default=self._released_utc)
        return self._release(newest)

    def _release(self, horizon_utc: float) -> list[TrackUpdate]:
        tracker = self.tracker
        if tracker is None:
            return []
        updates: list[TrackUpdate] = []
        batch: list[Detection] = []
        while self._heap and self._heap[0][0] <= horizon_utc:
            _, _, state, item = heapq.heappop(self._heap)
            state.held -= 1
            if isinstance(item, Detection):
                batch.append(item)
                continue
            if batch:  # what came before the CPI goes first
                updates += tracker.process(batch)
                batch = []
            assert self.radar is not None
            updates += self.radar.process(tracker, item)
        self._released_utc = max(self._released_utc, horizon_utc)
        # copies older than the release horizon are refused as late: forget their replies
        # (without a reorder window every copy is accepted: keep a window's worth)
        accepted_from = self._released_utc
        if self.config.reorder_window_s == 0:
            accepted_from = self.newest_utc - 1.0
        self.dedup.expire(accepted_from)
        if batch:
            updates += tracker.process(batch)
        if horizon_utc > -math.inf:
            updates += tracker.clock(horizon_utc)
        for u in updates:
            u.utc = u.t_s
        return updates

    def snapshot(self, now_utc: float) -> list[TrackUpdate]:
        """Every live track at ``now_utc`` (a republish after reconnecting)."""
        if self.tracker is None:
            return []
        updates = self.tracker.snapshot(now_utc)
        for u in updates:
            u.utc = u.t_s
        return updates

    def statistics(self) -> dict:
        """The fusion node's status: per-node counters, tracks, tracker and de-dup figures."""
        by_state: dict[str, int] = {}
        tracker = self.tracker
        if tracker is not None:
            for track in tracker.tracks.values():
                by_state[track.status.value] = by_state.get(track.status.value, 0) + 1
        return {
            "nodes": self.nodes.to_status(),
            "tracks_by_state": by_state,
            "held": len(self._heap),
            "dedup": {"duplicates": self.dedup.duplicates, "replies_held": len(self.dedup)},
            **({"radar": self.radar.status()} if self.radar and self.radar.nodes else {}),
            "tracker": {
                "detections": tracker.stats.detections if tracker else 0,
                "late_dropped": tracker.stats.late_dropped if tracker else 0,
                "gated": tracker.stats.gated if tracker else {},
            },
        }
