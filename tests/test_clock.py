"""The simulator's receiver clock model and the scenario options MLAT needs."""

from __future__ import annotations

import numpy as np
import pytest

from sensord.geo import Site, great_circle_m
from sensord.sim.clock import ReceiverClock
from sensord.sim.scenario import random_scenario, surveyed_site
from sensord.sim.schedule import plan_frames


def test_offset_and_frequency_error() -> None:
    clock = ReceiverClock(offset_s=100.0, ppm=50.0, duration_s=100.0)
    t = np.array([0.0, 10.0, 100.0])
    assert np.allclose(clock.local_s(t), 100.0 + t * (1 + 50e-6), atol=1e-12)
    assert isinstance(clock.local_s(5.0), float)


def test_wander_is_slow_and_repeatable() -> None:
    clock = ReceiverClock(ppm=-20.0, wander_ppm_per_sqrt_s=2e-3, duration_s=120.0, seed=3)
    t = np.linspace(0, 120, 1201)
    wander = clock.local_s(t) - t * (1 - 20e-6)
    assert np.any(wander != 0.0)
    assert np.max(np.abs(wander)) < 20e-6  # far below the 100 ppm error itself
    assert np.array_equal(clock.local_s(t), ReceiverClock(
        ppm=-20.0, wander_ppm_per_sqrt_s=2e-3, duration_s=120.0, seed=3
    ).local_s(t))  # fmt: skip
    # rendered in chunks, the clock is the same
    assert np.array_equal(clock.local_s(t[:600]), clock.local_s(t)[:600])


def test_sample_loss_jump() -> None:
    clock = ReceiverClock(jump_at_s=10.0, jump_samples=65536, sample_rate_hz=2.4e6)
    assert clock.jump_s == pytest.approx(65536 / 2.4e6)
    before, after = clock.local_s(np.array([9.999, 10.0]))
    assert after - before == pytest.approx(0.001 + 65536 / 2.4e6, abs=1e-9)


def test_ticks_are_jittered_whole_12mhz_ticks() -> None:
    clock = ReceiverClock(offset_s=1.0, jitter_s=200e-9, seed=1)
    t = np.full(20000, 5.0)
    ticks = clock.ticks_12mhz(t)
    assert ticks.dtype == np.int64
    err_s = ticks / 12e6 - clock.local_s(t)
    assert np.std(err_s) == pytest.approx(np.hypot(200e-9, 1 / 12e6 / np.sqrt(12)), rel=0.05)
    assert clock.ticks_12mhz(5.0, jitter=False) == round(6.0 * 12e6)
    toa = clock.toa_12mhz(t)
    assert np.std(toa / 12e6 - 6.0) == pytest.approx(200e-9, rel=0.05)


def test_random_clocks_by_kind() -> None:
    rng = np.random.default_rng(2)
    dongles = [ReceiverClock.random(rng, "dongle", jump_at_s=5.0) for _ in range(50)]
    tcxos = [ReceiverClock.random(rng, "tcxo") for _ in range(50)]
    assert max(abs(c.ppm) for c in dongles) <= 100 and max(abs(c.ppm) for c in dongles) > 50
    assert max(abs(c.ppm) for c in tcxos) <= 2
    assert all(16_384 <= c.jump_samples <= 262_144 for c in dongles)
    assert all(c.jump_at_s is None and c.jump_s == 0.0 for c in tcxos)
    with pytest.raises(ValueError):
        ReceiverClock.random(rng, "atomic")
    with pytest.raises(ValueError):
        ReceiverClock(jitter_s=-1.0)


def test_adsb_off_aircraft_send_mode_s_only() -> None:
    sc = random_scenario(20, seed=4, adsb_off_fraction=0.5)
    off = {ac.icao for ac in sc.aircraft if not ac.adsb}
    assert 4 <= len(off) <= 16
    frames = plan_frames(sc, 30.0, np.random.default_rng(1))
    dfs_off = {f.msg[0] >> 3 for f in frames if f.icao in off}
    dfs_on = {f.msg[0] >> 3 for f in frames if f.icao not in off}
    assert dfs_off <= {4, 5, 11, 20, 21} and 11 in dfs_off
    assert 17 in dfs_on
    # the option draws from its own generator: the aircraft themselves are unchanged
    plain = random_scenario(20, seed=4)
    assert [a.icao for a in plain.aircraft] == [a.icao for a in sc.aircraft]


def test_surveyed_site_error() -> None:
    site = Site(52.0, 5.0, 10.0)
    wrong = surveyed_site(site, 500.0, np.random.default_rng(1))
    assert great_circle_m(site.lat_deg, site.lon_deg, wrong.lat_deg, wrong.lon_deg) == (
        pytest.approx(500.0, rel=0.01)
    )
