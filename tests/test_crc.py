"""CRC-24, syndromes and error correction against pyModeS and hand-made errors."""

import numpy as np
import pyModeS as pms
import pytest

from sensord._crc import crc24, fix_errors, syndrome
from sensord.frames import frames_from_hex

DF17 = bytes.fromhex("8D4840D6202CC371C32CE0576098")
DF4_4840D6 = bytes.fromhex("20001718024EBD")  # altitude reply of 4840D6 (address/parity)


def test_crc_matches_parity_and_pymodes():
    assert crc24(DF17, 112) == 0x576098
    assert syndrome(DF17, 112) == 0
    assert pms.decode(DF17.hex())["crc_valid"] is True


def test_address_parity_syndrome_is_the_address():
    assert syndrome(DF4_4840D6, 56) == 0x4840D6
    assert pms.decode(DF4_4840D6.hex())["icao"] == "4840D6"


@pytest.mark.parametrize("bit", [5, 8, 33, 87, 88, 111])
def test_single_bit_errors_are_corrected(bit):
    bad = bytearray(DF17)
    bad[bit // 8] ^= 0x80 >> (bit % 8)
    fixed, n = fix_errors(bytes(bad), 112, max_bits=1)
    assert (fixed, n) == (DF17, 1)


def test_df_bits_are_never_corrected():
    bad = bytearray(DF17)
    bad[0] ^= 0x08  # bit 4: inside the DF field
    _, n = fix_errors(bytes(bad), 112, max_bits=2)
    assert n == -1


def test_two_bit_errors_only_when_asked():
    bad = bytearray(DF17)
    bad[3] ^= 0x10
    bad[9] ^= 0x01
    assert fix_errors(bytes(bad), 112, max_bits=1)[1] == -1
    assert fix_errors(bytes(bad), 112, max_bits=2) == (DF17, 2)


def test_56_bit_replies_share_the_table():
    df11 = bytes.fromhex("5D4840D6F8740F")
    assert syndrome(df11, 56) == 0
    bad = bytearray(df11)
    bad[4] ^= 0x04
    assert fix_errors(bytes(bad), 56, max_bits=1) == (df11, 1)


def test_every_single_bit_syndrome_is_unique():
    rng = np.random.default_rng(0)
    for _ in range(50):
        body = bytes([0x8D]) + rng.integers(0, 256, 10, dtype=np.uint8).tobytes()
        msg = body + crc24(body + b"\0\0\0", 112).to_bytes(3, "big")
        bit = int(rng.integers(5, 112))
        bad = bytearray(msg)
        bad[bit // 8] ^= 0x80 >> (bit % 8)
        assert fix_errors(bytes(bad), 112, max_bits=1) == (msg, 1)


def test_bad_arguments_raise():
    with pytest.raises(ValueError):
        crc24(DF17, 64)
    with pytest.raises(ValueError):
        syndrome(DF17[:5], 112)


def test_frames_from_hex_recovers_the_address():
    frames = frames_from_hex([DF17.hex(), DF4_4840D6.hex(), "5D4840D6F8740F", "C0FFEE00112233"])
    assert [int(a) for a in frames["icao"]] == [0x4840D6, 0x4840D6, 0x4840D6, 0]
