"""rtl_tcp client against a real rtl_tcp-protocol server on 127.0.0.1 streaming a recording."""

from __future__ import annotations

import itertools
import logging
import socket
import struct
import threading
import time

import numpy as np
import pytest
from rtltcp_server import RtlTcpTestServer

from sensord.demod import Demodulator
from sensord.errors import SourceError
from sensord.source.iqfile import IQFileSource, open_source
from sensord.source.rtltcp import (
    CMD_AGC_MODE,
    CMD_BIAS_TEE,
    CMD_FREQ_CORRECTION,
    CMD_FREQUENCY,
    CMD_GAIN,
    CMD_GAIN_MODE,
    CMD_SAMPLE_RATE,
    RtlTcpSource,
    parse_rtltcp_spec,
)

RATE_HZ = 2.0e6


def file_frames(path) -> np.ndarray:
    demod = Demodulator(RATE_HZ)
    source = IQFileSource(path, fmt="cu8", rate_hz=RATE_HZ)
    parts = [demod.feed_block(b) for b in source.blocks()]
    parts.append(demod.flush())
    return np.concatenate(parts)


def live_frames(source, n_samples: int, timeout_s: float = 20.0):
    """Demodulate a live source until ``n_samples`` have been delivered; return frames, blocks."""
    demod = Demodulator(source.rate_hz)
    parts, starts = [], []
    watchdog = threading.Timer(timeout_s, source.close)
    watchdog.start()
    for block in source.blocks():
        starts.append((block.start_sample, block.n_samples))
        parts.append(demod.feed_block(block))
        if source.stats.samples >= n_samples:
            break
    watchdog.cancel()
    parts.append(demod.flush())
    source.close()
    return np.concatenate(parts), starts


def frame_keys(frames: np.ndarray) -> list[tuple[int, bytes]]:
    return [(int(f["sample_idx"]), bytes(f["msg"][: f["nbits"] // 8])) for f in frames]


def test_frames_equal_file_replay_and_commands_seen_by_server(modes1):
    expected = file_frames(modes1)
    n_samples = modes1.stat().st_size // 2
    with RtlTcpTestServer(modes1) as server:
        source = open_source(
            server.spec, rate_hz=RATE_HZ, gain_db=49.6, ppm=-3, bias_tee=True, block_samples=50000
        )
        assert isinstance(source, RtlTcpSource)
        frames, starts = live_frames(source, n_samples)
        time.sleep(0.1)
        commands = dict(server.commands)
    assert len(expected) > 50
    assert frame_keys(frames) == frame_keys(expected)
    assert source.stats.samples == n_samples
    assert source.stats.gaps == source.stats.drops == source.stats.reconnects == 0
    assert all(a + n == b for (a, n), (b, _) in itertools.pairwise(starts))
    assert source.tuner_type == 5 and source.gain_count == 29
    assert commands[CMD_FREQUENCY] == 1_090_000_000
    assert commands[CMD_SAMPLE_RATE] == 2_000_000
    assert commands[CMD_GAIN_MODE] == 1
    assert commands[CMD_GAIN] == 496
    assert commands[CMD_AGC_MODE] == 0
    assert struct.unpack(">i", struct.pack(">I", commands[CMD_FREQ_CORRECTION]))[0] == -3
    assert commands[CMD_BIAS_TEE] == 1


def test_auto_gain_commands(modes1):
    with RtlTcpTestServer(modes1) as server:
        source = RtlTcpSource(server.spec, rate_hz=RATE_HZ, gain_db="auto")
        live_frames(source, 100_000)
        time.sleep(0.1)
        commands = dict(server.commands)
    assert commands[CMD_GAIN_MODE] == 0
    assert commands[CMD_AGC_MODE] == 1
    assert CMD_GAIN not in commands
    assert commands[CMD_BIAS_TEE] == 0


def test_server_gone_reconnects_with_a_sample_jump(modes1, caplog):
    n_samples = modes1.stat().st_size // 2
    cut_bytes = 2 * 150_000
    outage_s = 0.6
    with RtlTcpTestServer(modes1, cut_after_bytes=cut_bytes, outage_s=outage_s) as server:
        source = RtlTcpSource(server.spec, rate_hz=RATE_HZ, block_samples=40000)
        with caplog.at_level(logging.WARNING, logger="sensord.source.rtltcp"):
            frames, starts = live_frames(source, n_samples)
        assert server.connections >= 2
    assert source.stats.reconnects == 1
    assert source.stats.gaps == 1
    assert source.stats.samples == n_samples
    jumps = [(a + n, b) for (a, n), (b, _) in itertools.pairwise(starts) if a + n != b]
    assert len(jumps) == 1
    end, resumed = jumps[0]
    assert end == 150_000
    # the jump is the outage at the sample rate (outage measured by the client: >= the refusal)
    assert (
        outage_s * RATE_HZ * 0.9 <= resumed - end == source.stats.drops <= 10 * outage_s * RATE_HZ
    )
    lost = [r for r in caplog.records if "lost" in r.getMessage()]
    assert len(lost) == 1
    assert len(frames) > 0 and source.healthy()


def blocks_within(source: RtlTcpSource, seconds: float) -> list:
    """The blocks ``source`` yields in ``seconds``, read in a thread, then closed."""
    got = []
    worker = threading.Thread(target=lambda: got.extend(source.blocks()))
    worker.start()
    time.sleep(seconds)
    source.close()
    worker.join(5)
    assert not worker.is_alive()
    return got


def test_unreachable_server_retries_quietly_until_closed(caplog):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    source = RtlTcpSource(f"rtltcp://127.0.0.1:{port}", backoff_max_s=0.1)
    with caplog.at_level(logging.WARNING, logger="sensord.source.rtltcp"):
        assert blocks_within(source, 0.6) == []
    assert len([r for r in caplog.records if "unreachable" in r.getMessage()]) == 1
    assert not source.healthy() and source.last_sample_monotonic is None


def test_server_hanging_up_after_the_header_is_retried_with_backoff(caplog):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    accepted = []

    def hang_up_after_header() -> None:
        listener.settimeout(0.1)
        while True:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted.append(time.monotonic())
            with conn:
                conn.sendall(b"RTL0" + struct.pack(">II", 5, 29))

    threading.Thread(target=hang_up_after_header, daemon=True).start()
    source = RtlTcpSource(f"rtltcp://127.0.0.1:{port}")
    with caplog.at_level(logging.WARNING, logger="sensord.source.rtltcp"):
        assert blocks_within(source, 2.0) == []
    listener.close()
    # backoff 0.25, 0.5, 1 s: a handful of attempts in 2 s, not thousands
    assert 2 <= len(accepted) <= 5
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if "before sending samples" in m]) == 1
    assert not [m for m in messages if "lost" in m]
    assert source.stats.reconnects == 0 and source.stats.gaps == 0


def test_not_an_rtltcp_server_is_one_clear_error():
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve_http() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            time.sleep(0.5)

    threading.Thread(target=serve_http, daemon=True).start()
    source = RtlTcpSource(f"rtltcp://127.0.0.1:{port}")
    with pytest.raises(SourceError, match="is not an rtl_tcp server"):
        next(source.blocks())
    listener.close()


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("rtltcp://10.0.0.2:1234", ("10.0.0.2", 1234)),
        ("rtltcp://pi.local", ("pi.local", 1234)),
        ("rtltcp://[::1]:7373", ("::1", 7373)),
    ],
)
def test_parse_spec(spec, expected):
    assert parse_rtltcp_spec(spec) == expected


@pytest.mark.parametrize("spec", ["rtltcp://", "rtltcp://host:port", "rtltcp://h:99999"])
def test_bad_spec_is_a_source_error(spec):
    with pytest.raises(SourceError, match="expected rtltcp://HOST:PORT"):
        RtlTcpSource(spec)
