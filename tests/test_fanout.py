"""The fan-out: no sink stalls the chain or another sink; failures and drops are counted."""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import time

import pytest

from sensord.errors import UserError
from sensord.outputs.aircraft_json import AircraftJsonWriter
from sensord.outputs.tcp import BroadcastServer
from sensord.sinks.base import Step
from sensord.sinks.fanout import FanOut
from sensord.sinks.files import AircraftJsonSink
from sensord.sinks.table import TrackTable
from sensord.sinks.tcp import SbsSink
from sensord.tracker.update import TrackStatus, TrackUpdate


class Collect:
    """A sink that keeps every step it gets, taking ``delay_s`` over each."""

    queue_max = 1000

    def __init__(self, name: str = "collect", delay_s: float = 0.0, queue_max: int = 1000):
        self.name, self.delay_s, self.queue_max = name, delay_s, queue_max
        self.steps: list[Step] = []
        self.closed = False

    async def start(self) -> None:
        return None

    async def handle(self, step: Step) -> None:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        self.steps.append(step)

    async def close(self) -> None:
        self.closed = True


class Stuck(Collect):
    """A sink whose ``handle`` never returns (a hung disk, a deadlock)."""

    async def handle(self, step: Step) -> None:
        await asyncio.Event().wait()


def track(track_id: str, t_s: float, status=TrackStatus.CONFIRMED) -> TrackUpdate:
    return TrackUpdate(track_id, t_s, status, lat_deg=52.0, lon_deg=4.5, icao=track_id)


def steps(n: int) -> list[Step]:
    return [Step(updates=[track("AAAAAA", float(i))], samples=1000 * (i + 1)) for i in range(n)]


async def settle(fanout: FanOut, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while fanout.pending() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


def test_a_failing_sink_is_counted_logged_once_retried_and_isolated(tmp_path, caplog):
    out = tmp_path / "json"
    out.mkdir()
    table = TrackTable()
    failing = AircraftJsonSink(AircraftJsonWriter(out, table), period_s=0.0)
    other = Collect()

    async def scenario() -> dict:
        fanout = FanOut([failing, other], table, backoff_s=(0.05,))
        await fanout.start()
        shutil.rmtree(out)  # the directory vanishes: every write fails
        t0 = time.monotonic()
        for step in steps(50):
            fanout.submit(step)
            await asyncio.sleep(0.005)
        submit_s = time.monotonic() - t0
        await asyncio.sleep(0.3)
        broken = fanout.status()["sinks"]["aircraft_json"]
        out.mkdir()  # back: the next retry succeeds
        fanout.submit(steps(51)[-1])
        await asyncio.sleep(0.3)
        recovered = fanout.status()["sinks"]["aircraft_json"]
        await fanout.close()
        return {"broken": broken, "recovered": recovered, "submit_s": submit_s}

    with caplog.at_level(logging.DEBUG, logger="sensord.sinks.fanout"):
        got = asyncio.run(scenario())
    assert got["submit_s"] < 1.0  # never waited for the failing sink
    assert got["broken"]["errors"] >= 2 and got["broken"]["failing"]
    assert "cannot write" in got["broken"]["last_error"]
    assert not got["recovered"]["failing"] and got["recovered"]["handled"] >= 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "aircraft_json failed" in warnings[0].getMessage()
    assert any("recovered" in r.getMessage() for r in caplog.records)
    assert len(other.steps) == 51  # the other sink got every step
    assert (out / "aircraft.json").exists()


def test_a_slow_sink_drops_its_oldest_steps_counted_and_slows_no_one():
    slow = Collect("slow", delay_s=0.02, queue_max=4)
    fast = Collect("fast")

    async def scenario() -> dict:
        fanout = FanOut([slow, fast])
        await fanout.start()
        t0 = time.monotonic()
        for step in steps(100):
            fanout.submit(step)
        submit_s = time.monotonic() - t0
        await settle(fanout)
        status = fanout.status()["sinks"]
        await fanout.close()
        return {"status": status, "submit_s": submit_s}

    got = asyncio.run(scenario())
    assert got["submit_s"] < 0.5
    assert len(fast.steps) == 100
    dropped = got["status"]["slow"]["dropped"]
    assert dropped >= 90 and len(slow.steps) + dropped == 100
    assert slow.steps[-1].samples == 100_000  # the newest kept, the oldest dropped


def test_lossless_put_waits_for_a_sink_that_keeps_up_not_for_a_stuck_one():
    slow = Collect("slow", delay_s=0.002, queue_max=4)
    stuck = Stuck("stuck", queue_max=4)

    async def scenario() -> dict:
        fanout = FanOut([slow, stuck])
        await fanout.start()
        t0 = time.monotonic()
        for step in steps(40):
            await fanout.put(step, wait_s=0.05)
        put_s = time.monotonic() - t0
        stalled = fanout.stalled(0.1)
        await settle(fanout, 1.0)
        status = fanout.status()["sinks"]
        t1 = time.monotonic()
        await fanout.close(deadline_s=0.5)  # the stuck one is cancelled, not waited for
        return {
            "put_s": put_s,
            "stalled": stalled,
            "status": status,
            "close_s": time.monotonic() - t1,
        }

    got = asyncio.run(scenario())
    assert len(slow.steps) == 40 and got["status"]["slow"]["dropped"] == 0
    assert got["stalled"] == ["stuck"]
    assert got["status"]["stuck"]["dropped"] == 40 - 1 - 4  # one in handle, four queued
    assert got["close_s"] < 2.0
    assert stuck.closed and slow.closed


def test_a_sink_failing_to_start_is_fatal_and_the_started_ones_are_closed():
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    first = Collect()
    fanout = FanOut([first, SbsSink(BroadcastServer("127.0.0.1", busy.getsockname()[1]))])
    with pytest.raises(UserError, match="cannot listen"):
        asyncio.run(fanout.start())
    busy.close()
    assert first.closed


def test_disable_after_repeated_failures(tmp_path):
    table = TrackTable()
    sink = AircraftJsonSink(AircraftJsonWriter(tmp_path, table), period_s=0.0)

    async def scenario() -> dict:
        fanout = FanOut([sink], table, backoff_s=(0.01,), disable_after=3)
        await fanout.start()
        tmp_path.rmdir()
        for step in steps(20):
            fanout.submit(step)
            await asyncio.sleep(0.02)
        status = fanout.status()["sinks"]["aircraft_json"]
        await fanout.close()
        return status

    status = asyncio.run(scenario())
    assert status["disabled"] and status["errors"] == 3


def test_the_table_keeps_the_newest_state_and_forgets_dropped_tracks():
    table = TrackTable()
    changes = table.apply([track("A", 0.0, TrackStatus.TENTATIVE), track("B", 0.0)])
    assert [(c.previous, c.update.track_id) for c in changes] == [(None, "A"), (None, "B")]
    assert table.apply([track("A", 1.0, TrackStatus.TENTATIVE)]) == []  # no status change
    changes = table.apply([track("A", 2.0), track("B", 2.0, TrackStatus.DROPPED)])
    assert [(c.previous, c.update.status) for c in changes] == [
        (TrackStatus.TENTATIVE, TrackStatus.CONFIRMED),
        (TrackStatus.CONFIRMED, TrackStatus.DROPPED),
    ]
    assert list(table.tracks) == ["A"] and table.get("A").t_s == 2.0
    assert table.apply([track("B", 3.0, TrackStatus.DROPPED)]) == []  # already gone
    assert table.count_by_status() == {TrackStatus.CONFIRMED: 1}


def test_submit_adds_the_status_changes_to_the_step():
    sink = Collect()

    async def scenario() -> None:
        fanout = FanOut([sink])
        await fanout.start()
        fanout.submit(Step(updates=[track("A", 0.0, TrackStatus.TENTATIVE)]))
        fanout.submit(Step(updates=[track("A", 1.0, TrackStatus.TENTATIVE)]))
        fanout.submit(Step(updates=[track("A", 2.0)]))
        await fanout.close()

    asyncio.run(scenario())
    assert [len(s.changes) for s in sink.steps] == [1, 0, 1]
    assert sink.steps[2].changes[0].previous is TrackStatus.TENTATIVE
