"""UTC beside the sample clock: files (SigMF, --start-utc, mtime), live streams (UtcFit),
and the chain's detections and track updates."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from conftest import SITE

from sensord.chain import Chain
from sensord.sim import random_scenario, simulate
from sensord.source import sigmf
from sensord.source.iqfile import IQFileSource
from sensord.source.utc import UtcFit, format_utc, parse_utc

RATE = 2.4e6
BLOCK = 65536
START = parse_utc("2026-11-30T10:00:00Z")


def test_parse_and_format_round_trip():
    assert parse_utc("2026-11-30T10:00:00Z") == parse_utc("2026-11-30T10:00:00+00:00")
    assert parse_utc("2026-11-30T10:00:00") == START  # no zone: UTC
    assert parse_utc(str(START)) == START
    assert parse_utc(format_utc(START + 0.123456)) == pytest.approx(START + 0.123456, abs=1e-6)
    for bad in ("yesterday", "nan", "-5", "inf"):
        with pytest.raises(ValueError):
            parse_utc(bad)


def arrivals(n_blocks: int, ppm: float = 0.0, jitter_s: float = 0.0, seed: int = 1):
    """(end sample, arrival UTC) of blocks from a dongle whose clock is off by ppm."""
    rng = np.random.default_rng(seed)
    for k in range(1, n_blocks + 1):
        end = k * BLOCK
        yield end, START + end / RATE * (1 + ppm * 1e-6) + abs(rng.normal(0, jitter_s))


def test_fit_never_steps_back_through_jitter_and_absorbs_a_ppm_error():
    fit = UtcFit(RATE)
    starts = []
    for end, arrival in arrivals(2000, ppm=80.0, jitter_s=0.004):
        fit.observe(end, arrival)
        starts.append(fit.utc(end))
    assert np.all(np.diff(starts) > 0)
    # after the fit settled it follows the drifting clock within the arrival jitter
    end = 2000 * BLOCK
    assert fit.utc(end) == pytest.approx(START + end / RATE * (1 + 80e-6), abs=0.01)


def test_clock_stepped_back_is_slewed_forward_step_reanchors():
    fit = UtcFit(RATE)
    feed = list(arrivals(400))
    last = -math.inf
    for i, (end, arrival) in enumerate(feed):
        fit.observe(end, arrival - (2.0 if i >= 200 else 0.0))  # NTP steps back 2 s
        assert fit.utc(end) > last
        last = fit.utc(end)
    assert fit.reanchored == 0
    fit.observe(401 * BLOCK, START + 401 * BLOCK / RATE + 30.0)  # steps forward 30 s
    assert fit.reanchored == 1
    assert fit.utc(401 * BLOCK) == pytest.approx(START + 401 * BLOCK / RATE + 30.0)


@pytest.fixture(scope="module")
def short_recording():
    sc = random_scenario(4, SITE, 60e3, seed=3)
    return simulate(sc, RATE, duration_s=3.0, seed=3)


def test_file_start_from_sigmf_then_start_utc_then_mtime(tmp_path, short_recording):
    data = tmp_path / "rec.sigmf-data"
    short_recording.iq.tofile(data)
    sigmf.write_meta(data, "cu8", RATE, start_utc=START)
    src = IQFileSource(data)
    assert (src.start_utc, src.utc_source) == (START, "sigmf")
    src = IQFileSource(data, start_utc=START + 5)
    assert (src.start_utc, src.utc_source) == (START + 5, "start-utc")
    raw = tmp_path / "rec_2400k.cu8"
    short_recording.iq.tofile(raw)
    os.utime(raw, (START + 100, START + 100))
    src = IQFileSource(raw)
    assert src.utc_source == "mtime"
    assert src.start_utc == pytest.approx(START + 100 - len(short_recording.iq) / 2 / RATE)
    blocks = list(IQFileSource(raw, block_samples=BLOCK, start_utc=START).blocks())
    assert [b.utc - START for b in blocks] == pytest.approx([b.t_s for b in blocks], abs=1e-6)


def test_bad_core_datetime_is_one_line(tmp_path, short_recording):
    from sensord.errors import SourceError

    data = tmp_path / "bad.sigmf-data"
    short_recording.iq.tofile(data)
    meta = sigmf.write_meta(data, "cu8", RATE)
    meta.write_text(
        meta.read_text().replace(
            '"core:sample_start"', '"core:datetime": "soon", "core:sample_start"'
        )
    )
    with pytest.raises(SourceError, match="core:datetime"):
        IQFileSource(data)


def test_chain_detections_and_updates_carry_utc(tmp_path, short_recording):
    raw = tmp_path / "rec_2400k.cu8"
    short_recording.iq.tofile(raw)
    chain = Chain(RATE, SITE)
    outs = list(chain.run(IQFileSource(raw, block_samples=BLOCK, start_utc=START)))
    dets = [d for o in outs for d in o.detections]
    updates = [u for o in outs for u in o.updates]
    assert dets and updates
    assert all(d.utc == pytest.approx(START + d.t_s, abs=1e-6) for d in dets)
    assert all(u.utc == pytest.approx(START + u.t_s, abs=1e-6) for u in updates)
    assert all(u.to_dict()["utc"] == pytest.approx(START + u.t_s, abs=1e-3) for u in updates)
    assert outs[-1].end_utc == pytest.approx(START + outs[-1].end_s)
    assert all(d.frame is not None and len(d.frame) in (7, 14) for d in dets)
