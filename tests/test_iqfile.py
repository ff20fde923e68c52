"""IQ file sources: formats round-trip, blocks are bounded and contiguous, faults are clear."""

import os
import subprocess
import sys

import numpy as np
import pytest

from sensord.errors import SourceError
from sensord.source import sigmf
from sensord.source.iqfile import IQFileSource, open_source, parse_rate, rate_from_name

N = 10_007  # complex samples: not a multiple of any block size used below


def _signal(fmt: str) -> np.ndarray:
    """Interleaved I/Q values of a known pattern in the format's dtype."""
    k = np.arange(2 * N)
    return {
        "cu8": (k * 7 % 256).astype(np.uint8),
        "cs8": ((k * 7 % 256) - 128).astype(np.int8),
        "cs16": ((k * 131 % 65536) - 32768).astype("<i2"),
        "cf32": np.sin(k / 10).astype("<f4"),
    }[fmt]


def _read_all(src: IQFileSource) -> tuple[np.ndarray, list]:
    blocks = list(src.blocks())
    return np.concatenate([b.samples for b in blocks]), blocks


@pytest.mark.parametrize("fmt", ["cu8", "cs8", "cs16", "cf32"])
@pytest.mark.parametrize("block", [1000, 4096, N, 1 << 18])
def test_formats_round_trip_in_blocks(tmp_path, fmt, block):
    data = _signal(fmt)
    path = tmp_path / f"rec_2400k.{fmt}"
    data.tofile(path)
    src = IQFileSource(path, block_samples=block)
    assert (src.fmt, src.rate_hz, src.n_samples) == (fmt, 2.4e6, N)
    values, blocks = _read_all(src)
    np.testing.assert_array_equal(values, data)
    starts = [b.start_sample for b in blocks]
    assert starts == list(range(0, N, block))
    assert all(b.n_samples <= block for b in blocks)
    assert blocks[-1].start_sample + blocks[-1].n_samples == N  # the last partial block arrives


def test_qi_order_is_swapped_to_i_first(tmp_path):
    data = _signal("cs16")
    path = tmp_path / "q_first.cs16"
    data.tofile(path)
    values, _ = _read_all(IQFileSource(path, rate_hz=2.4e6, iq_order="qi"))
    np.testing.assert_array_equal(values[0::2], data[1::2])
    np.testing.assert_array_equal(values[1::2], data[0::2])


def test_sigmf_round_trip_either_path(tmp_path):
    data = _signal("cs16")
    data_path = tmp_path / "capture.sigmf-data"
    data.tofile(data_path)
    meta = sigmf.write_meta(data_path, "cs16", 2.0e6, description="test")
    for given in (meta, data_path):
        src = IQFileSource(given)
        assert (src.fmt, src.rate_hz) == ("cs16", 2.0e6)
        np.testing.assert_array_equal(_read_all(src)[0], data)
    assert sigmf.read_meta(meta).center_hz == 1090e6


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "not valid JSON"),
        ('{"global": {"core:datatype": "ri16_le", "core:sample_rate": 2e6}}', "not supported"),
        ('{"global": {"core:datatype": "cu8"}}', "sample_rate"),
        ("[]", "no 'global'"),
    ],
)
def test_broken_sigmf_meta_is_a_clear_error(tmp_path, content, message):
    (tmp_path / "x.sigmf-data").write_bytes(b"\0" * 64)
    (tmp_path / "x.sigmf-meta").write_text(content)
    with pytest.raises(SourceError, match=message):
        IQFileSource(tmp_path / "x.sigmf-meta")


def test_sigmf_without_data_file(tmp_path):
    sigmf.write_meta(tmp_path / "y.sigmf-data", "cu8", 2.4e6)
    with pytest.raises(SourceError, match="data file not found"):
        IQFileSource(tmp_path / "y.sigmf-meta")


@pytest.mark.parametrize(
    ("name", "content", "kwargs", "message"),
    [
        ("missing.cu8", None, {}, "no such file"),
        ("empty.cu8", b"", {}, "empty"),
        ("one_byte.cs16", b"\x01", {}, "no complete IQ sample"),
        ("noext", b"\0" * 8, {}, "give --format"),
        ("capture.bin", b"\0" * 8, {}, "ambiguous"),
        ("x.cu8", b"\0" * 8, {"fmt": "cs4"}, "unknown format"),
        ("x.cu8", b"\0" * 8, {"iq_order": "xy"}, "iq_order"),
    ],
)
def test_bad_inputs_are_clear_errors(tmp_path, name, content, kwargs, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SourceError, match=message):
        IQFileSource(path, **kwargs)


def test_directory_is_refused(tmp_path):
    with pytest.raises(SourceError, match="directory"):
        IQFileSource(tmp_path)


def test_trailing_bytes_are_warned_and_ignored(tmp_path, caplog):
    path = tmp_path / "odd.cs16"
    path.write_bytes(b"\x01\x00" * 9)  # 4 whole samples and half of one
    src = IQFileSource(path, rate_hz=2e6)
    assert src.n_samples == 4
    assert "2 trailing bytes ignored" in caplog.text
    assert _read_all(src)[0].shape == (8,)


def test_memory_is_bounded_by_the_block(tmp_path):
    path = tmp_path / "big.cu8"
    np.zeros(2 * 300_000, dtype=np.uint8).tofile(path)
    sizes = [b.samples.nbytes for b in IQFileSource(path, block_samples=4096).blocks()]
    assert max(sizes) == 2 * 4096
    assert sum(sizes) == 600_000


def test_rate_parsing_and_name_hints():
    assert parse_rate("2.4e6") == parse_rate("2400k") == parse_rate("2.4M") == 2.4e6
    assert parse_rate("2000000") == 2e6
    with pytest.raises(SourceError):
        parse_rate("fast")
    assert rate_from_name("rsadsb_dump1090rs_test_1641427457780_2400k.sc16") == 2.4e6
    assert rate_from_name("modes1_2.0M.cu8") == 2.0e6
    assert rate_from_name("modes1.cu8") is None


def test_open_source_maps_specs(tmp_path):
    path = tmp_path / "a.cu8"
    np.zeros(64, dtype=np.uint8).tofile(path)
    src = open_source(f"file:{path}", rate_hz=2e6, gain_db=30)  # live-only options are ignored
    assert isinstance(src, IQFileSource) and src.rate_hz == 2e6


def test_real_rsadsb_file_rate_from_name(rsadsb_files):
    src = IQFileSource(rsadsb_files[0], iq_order="qi")
    assert (src.fmt, src.rate_hz, src.n_samples) == ("cs16", 2.4e6, 131072)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/nonexistent/x.cu8"], "no such file"),
        (["--format", "cu8", "{tmp}"], "directory"),
        (["{tmp}/empty.cu8"], "empty"),
    ],
)
def test_cli_reports_one_line_without_traceback(tmp_path, args, message):
    (tmp_path / "empty.cu8").write_bytes(b"")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    proc = subprocess.run(
        [sys.executable, "-m", "sensord", "decode", *argv],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]


def test_format_flag_overrides_sigmf_datatype_with_a_warning(tmp_path, caplog):
    data = _signal("cs8")
    data.tofile(tmp_path / "c.sigmf-data")
    sigmf.write_meta(tmp_path / "c.sigmf-data", "cu8", 2.0e6)
    src = IQFileSource(tmp_path / "c.sigmf-meta", fmt="cs8", rate_hz=2.4e6)
    assert (src.fmt, src.rate_hz) == ("cs8", 2.4e6)
    np.testing.assert_array_equal(_read_all(src)[0], data)
    assert "overrides core:datatype" in caplog.text
    assert "overrides core:sample_rate" in caplog.text


def test_file_options_on_a_live_spec_are_refused(tmp_path):
    with pytest.raises(SourceError, match="recorded files only"):
        open_source("rtltcp://127.0.0.1:1234", fmt="cu8", rate_hz=2.4e6, iq_order="iq")
    with pytest.raises(SourceError, match="recorded files only"):
        open_source("rtlsdr:0", fmt=None, iq_order="qi")
    path = tmp_path / "rtlsdr_capture_2000k.cu8"
    _signal("cu8").tofile(path)
    assert open_source(str(path)).rate_hz == 2.0e6


def test_streaming_keeps_at_most_a_couple_of_blocks_resident(tmp_path):
    import tracemalloc

    path = tmp_path / "big.cs16"
    np.zeros(2 * 400_000, dtype="<i2").tofile(path)  # 1.6 MB, 48 blocks of 32 KiB
    tracemalloc.start()
    n = sum(
        b.samples.shape[0] for b in IQFileSource(path, block_samples=8192, iq_order="qi").blocks()
    )
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert n == 800_000
    assert peak < 3 * 8192 * 4 + 64_000, peak


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_is_a_clear_error(tmp_path):
    path = tmp_path / "locked.cu8"
    path.write_bytes(b"\0" * 8)
    path.chmod(0)
    with pytest.raises(SourceError, match="permission denied"):
        IQFileSource(path)
