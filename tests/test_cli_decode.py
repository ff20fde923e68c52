"""``sensord decode`` end to end: real recordings, output formats, rate spellings, pipes."""

import json
import subprocess
import sys

import numpy as np
import pyModeS as pms

from sensord.source import sigmf
from sensord.source.iqfile import IQFileSource


def _decode(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sensord", "decode", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_modes1_raw_lines_are_accepted_by_pymodes(modes1):
    proc = _decode(str(modes1))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) >= 280
    for line in lines:
        assert line.startswith("@") and line.endswith(";")
        int(line[1:13], 16)
        decoded = pms.decode(line[13:-1])
        assert decoded["df"] in (0, 4, 5, 11, 16, 17, 18, 20, 21)
    assert "DF17" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_modes1_json_lines_parse_and_match_the_raw_lines(modes1):
    raw = _decode(str(modes1)).stdout.splitlines()
    proc = _decode(str(modes1), "--json", "--rate", "2000k")
    assert proc.returncode == 0, proc.stderr
    objs = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [o["hex"].lower() for o in objs] == [r[13:-1].lower() for r in raw]
    assert all(int(r[1:13], 16) == o["ts_12mhz"] for r, o in zip(raw, objs, strict=True))


def test_rate_spellings_agree(modes1):
    outputs = {_decode(str(modes1), "--rate", r).stdout for r in ("2e6", "2000000", "2M", "2000k")}
    assert len(outputs) == 1


def test_rsadsb_qi_files_decode_and_blocks_are_i_first(rsadsb_files):
    path = rsadsb_files[0]
    raw = np.fromfile(path, dtype="<i2")
    swapped = np.concatenate([b.samples for b in IQFileSource(path, iq_order="qi").blocks()])
    np.testing.assert_array_equal(swapped[0::2], raw[1::2])
    np.testing.assert_array_equal(swapped[1::2], raw[0::2])
    proc = _decode(str(path), "--iq-order", "qi")
    assert proc.returncode == 0, proc.stderr
    assert 4 <= len(proc.stdout.splitlines()) <= 8
    assert "2.4 MS/s" in proc.stderr


def test_sigmf_recording_via_the_cli(tmp_path, modes1):
    data = tmp_path / "modes1.sigmf-data"
    data.write_bytes(modes1.read_bytes())
    sigmf.write_meta(data, "cu8", 2.0e6)
    direct = _decode(str(modes1)).stdout
    via_meta = _decode(str(tmp_path / "modes1.sigmf-meta"))
    assert via_meta.returncode == 0, via_meta.stderr
    assert via_meta.stdout == direct


def test_output_into_a_closed_pipe_is_quiet(modes1):
    proc = subprocess.run(
        f"{sys.executable} -m sensord decode {modes1} | head -n 3",
        shell=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert len(proc.stdout.splitlines()) == 3
    assert "Traceback" not in proc.stderr


def test_garbage_bytes_decode_to_nothing_without_error(tmp_path):
    path = tmp_path / "noise_2000k.cu8"
    np.random.default_rng(1).integers(0, 256, 400_000, dtype=np.uint8).tofile(path)
    proc = _decode(str(path))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stdout.splitlines()) <= 1


def test_decode_defaults_to_the_configured_fix_bits_without_importing_the_config():
    """decode takes its default from sensord.demod (importing sensord.config costs about 15
    ms of a 0.1 s start): the two defaults must agree, and decode must not import it."""
    from sensord.config import DemodConfig
    from sensord.demod import FIX_BITS_DEFAULT, Demodulator

    assert DemodConfig.fix_bits == FIX_BITS_DEFAULT
    assert Demodulator(2.4e6).core.fix_bits == FIX_BITS_DEFAULT
    probe = subprocess.run(
        [sys.executable, "-c", "import sys; import sensord.commands.decode, sensord.demod; "
         "print('sensord.config' in sys.modules)"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert probe.stdout.strip() == "False"
