"""The genie bound of ``benchmarks/bench_genie.py`` is only a bound if its search is right:
the list Viterbi against brute force, and the noise-free reply decoded exactly."""

from __future__ import annotations

import importlib.util
import itertools
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from sensord.sim import modulate


@pytest.fixture(scope="module")
def genie():
    path = Path(__file__).parent.parent / "benchmarks" / "bench_genie.py"
    spec = importlib.util.spec_from_file_location("bench_genie", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_genie"] = mod  # its dataclass looks its module up
    spec.loader.exec_module(mod)
    yield mod
    del sys.modules["bench_genie"]


def _total(metrics: np.ndarray, bits: tuple[int, ...], state_bits: int) -> float:
    state, total = 0, 0.0
    for i, b in enumerate(bits):
        total += metrics[i, state, b]
        state = ((state << 1) | b) & ((1 << state_bits) - 1)
    return total


def test_list_viterbi_is_brute_force_best_first(genie):
    rng = np.random.default_rng(3)
    nbits, n_states = 9, 1 << genie.STATE_BITS
    metrics = rng.normal(size=(nbits, n_states, 2))
    found = genie.list_viterbi(metrics, list_size=16)
    scores = sorted(
        (
            _total(metrics, bits, genie.STATE_BITS)
            for bits in itertools.product((0, 1), repeat=nbits)
        ),
        reverse=True,
    )
    got = [_total(metrics, tuple(int(b) for b in path), genie.STATE_BITS) for path in found]
    assert len(found) == 16
    np.testing.assert_allclose(got, scores[:16], rtol=0, atol=1e-12)


@pytest.mark.parametrize("band_fraction", [0.0, modulate.BAND_FRACTION])
@pytest.mark.parametrize("rate_hz", [2.0e6, 2.4e6])
def test_noise_free_reply_is_found_at_the_worst_phase(genie, rate_hz, band_fraction):
    msg = bytes.fromhex("8D4840D6202CC371C32CE0576098")
    bits = modulate.message_bits(msg)
    start = 40.03  # a reply starting 0.03 sample after a boundary: the hard phase at 2.0 MS/s
    band_hz = band_fraction * rate_hz or None
    model = genie.ReplyModel.of(len(bits), start, rate_hz, band_hz)
    amp, sigma = 0.5, 0.01
    mags = amp * np.abs(genie._levels(msg, start, rate_hz, band_hz))
    # the recording holds complex64 samples
    np.testing.assert_allclose(mags / amp, np.abs(model.exact(bits)), atol=1e-6)
    assert np.abs(model.truncated(bits) - model.exact(bits)).max() < 0.03
    paths = genie.list_viterbi(genie.branch_metrics(model, mags, amp, sigma), list_size=4)
    assert np.array_equal(paths[0], bits)
    assert genie.crc_first(paths, bits)
    wrong = paths[0].copy()
    wrong[5] ^= 1
    assert not genie.crc_first([wrong], bits)
    assert math.isfinite(float(genie.branch_metrics(model, mags, amp, sigma).sum()))
