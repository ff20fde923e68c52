"""The publisher's policy, without a broker: rate limiting, events, the latest-state buffer,
republish after a reconnection, and states/status ahead of the streams."""

from __future__ import annotations

import json

from sensord.publish.policy import MqttSettings, PublishPolicy
from sensord.sinks.table import TrackTable
from sensord.tracker.update import TrackStatus, TrackUpdate


def u(track_id: str, t_s: float, status=TrackStatus.CONFIRMED, **kw) -> TrackUpdate:
    kw.setdefault("alt_baro_ft", 10000.0)
    kw.setdefault("track_deg", 90.0)
    return TrackUpdate(track_id, t_s, status, icao=track_id, **kw)


def drain(policy: PublishPolicy, now_s: float = 0.0) -> list:
    """Every message the policy hands out now, each acknowledged."""
    out = []
    while (msg := policy.next_message(now_s)) is not None:
        policy.sent(msg)
        out.append(msg)
    return out


def policy(**settings) -> PublishPolicy:
    p = PublishPolicy(MqttSettings(**settings), stats_interval_s=10.0)
    drain(p)  # the first status
    return p


def test_rate_limit_on_the_sample_clock_with_status_altitude_and_turn_exceptions():
    p = policy(rate_limit_s=1.0)
    sent = []
    for upd in [
        u("A", 0.0, TrackStatus.TENTATIVE),  # new: sent
        u("A", 0.3, TrackStatus.TENTATIVE),  # unchanged within 1 s: held
        u("A", 0.5),  # status changed: sent
        u("A", 0.7, alt_baro_ft=10600.0),  # climbed 600 ft: sent
        u("A", 0.8, alt_baro_ft=10650.0),  # held
        u("A", 0.9, alt_baro_ft=10650.0, track_deg=110.0),  # turned 20 deg: sent
        u("A", 1.95, alt_baro_ft=10650.0, track_deg=110.0),  # a second later: sent
    ]:
        p.track_updates([upd])
        sent += [m.update.t_s for m in drain(p) if m.kind == "state"]
    assert sent == [0.0, 0.5, 0.7, 0.9, 1.95]
    assert p.stats.rate_limited == 2


def test_events_from_status_changes_and_a_cleared_state_on_drop():
    p = policy()
    p.track_updates([u("A", 0.0, TrackStatus.TENTATIVE)])
    p.track_updates([u("A", 1.0)])
    p.track_updates([u("A", 5.0, TrackStatus.COASTING)])
    p.track_updates([u("A", 9.0, TrackStatus.DROPPED)])
    msgs = drain(p)
    events = [json.loads(m.payload)["event"] for m in msgs if m.kind == "event"]
    assert events == ["new", "confirmed", "lost"]
    states = [m for m in msgs if m.kind == "state"]
    assert [m.payload for m in states] == [""]  # only the clear: the newest state won, then went
    assert states[0].retain and states[0].topic == "sensord/rx0/tracks/A"
    assert len(p.table) == 0 and p.pending() == 0


def test_a_waiting_state_is_replaced_by_the_newest():
    p = policy(rate_limit_s=0.0)
    for t in (0.0, 0.1, 0.2, 0.3):
        p.track_updates([u("A", t, alt_baro_ft=10000.0 + t)])
    states = [m for m in drain(p) if m.kind == "state"]
    assert len(states) == 1 and json.loads(states[0].payload)["t_s"] == 0.3


def test_reconnection_republishes_every_live_track_and_the_status():
    p = policy()
    p.track_updates([u("A", 0.0), u("B", 0.0), u("C", 0.0)])
    p.track_updates([u("C", 1.0, TrackStatus.DROPPED)])
    drain(p)
    assert p.next_message(1.0) is None
    p.connected()  # the broker came back (without persistence: retained states gone)
    msgs = drain(p, 1.0)
    assert msgs[0].kind == "status"
    assert sorted(m.track_id for m in msgs if m.kind == "state") == ["A", "B"]


def test_an_unsent_message_goes_back_to_the_head_of_its_queue():
    p = policy()
    p.track_updates([u("A", 0.0), u("B", 0.0)])
    first = p.next_message(0.0)
    assert first is not None and first.kind == "state"
    p.unsent(first)  # the connection dropped with it in flight
    again = p.next_message(0.0)
    assert again is not None and again.track_id == first.track_id


def test_states_and_status_go_ahead_of_a_full_stream_queue():
    """A slow broker: 10000 frames queued; a state or a due status waits for none of them."""
    p = policy(stream_queue_max=10000)
    p.stream("frames", [f'{{"n":{i}}}' for i in range(10000)])
    for _ in range(100):  # the broker has taken a few frames
        p.sent(p.next_message(0.0))
    p.track_updates([u("A", 0.0)])
    kinds = [p.next_message(0.0).kind for _ in range(4)]
    assert kinds == ["state", "event", "event", "stream"]  # the events: new, confirmed
    assert p.next_message(20.0).kind == "status"  # due again: ahead of the streams too
    assert p.pending() == 9899
    p.stream("frames", ["x"] * 200)  # over the bound: the oldest are dropped, counted
    assert p.stats.stream_dropped == 99 and p.pending() == 10000


def test_a_shared_table_feeds_events_through_the_steps_changes():
    table = TrackTable()
    p = PublishPolicy(MqttSettings(), table=table)
    updates = [u("A", 0.0, TrackStatus.TENTATIVE), u("B", 0.0)]
    changes = table.apply(updates)  # what the fan-out does before the MQTT sink gets the step
    p.track_updates(updates, changes)
    events = [json.loads(m.payload) for m in drain(p) if m.kind == "event"]
    assert [(e["track_id"], e["event"]) for e in events] == [
        ("A", "new"),
        ("B", "new"),
        ("B", "confirmed"),
    ]


def test_clear_all_empties_every_retained_state():
    p = policy()
    p.track_updates([u("A", 0.0), u("B", 0.0)])
    drain(p)
    p.clear_all()
    clears = [m for m in drain(p) if m.kind == "state"]
    assert sorted(m.track_id for m in clears) == ["A", "B"]
    assert all(m.payload == "" and m.retain for m in clears)


def test_a_track_dropped_while_its_state_is_in_flight_is_cleared_and_forgotten():
    """Found by the soak: the state went out after the drop, was recorded as published,
    and its retained topic was never cleared (a ghost track, and a per-track leak)."""
    p = policy()
    p.track_updates([u("A", 0.0)])
    taken = list(iter(lambda: p.next_message(0.0), None))  # the state and its events
    in_flight = next(m for m in taken if m.kind == "state")
    p.track_updates([u("A", 1.0, TrackStatus.DROPPED)])  # while the state is with the broker
    p.sent(in_flight)
    clears = [m for m in drain(p) if m.kind == "state"]
    assert [(m.track_id, m.payload) for m in clears] == [("A", "")]
    assert p.status()["mqtt"]["tracks_published"] == 0 and p.pending() == 0
