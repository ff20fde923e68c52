"""Detector fields against pyModeS as the oracle, and decoding the real time-compressed file."""

import math
import subprocess
import sys

import numpy as np
import pyModeS as pms
import pytest

from sensord._crc import crc24
from sensord.decode import Detector
from sensord.decode.accuracy import position_sigma_m
from sensord.frames import frames_from_hex
from sensord.geo import FPM_MPS, FT_M, KT_MPS, Site, great_circle_m
from sensord.sim import encode

SITE = Site(52.0, 4.0, 0.0)

# pyModeS's documented example messages (CRC-valid ones) and sensord-encoded ones
IDENT = ["8D4840D6202CC371C32CE0576098", encode.identification(0x3C6586, "DLH4AB", "A3").hex()]
SQUAWK = ["28000A00307BCA", encode.df5(0x4CA2D6, "7700").hex()]
ALTITUDE = ["A0001838CA3E51F0A8000047A36A", encode.df4(0x4CA2D6, 12375).hex()]


def decode_one(hexes: list[str], det: Detector | None = None):
    det = det or Detector(SITE)
    return det.process(frames_from_hex(hexes, [float(i) for i in range(len(hexes))]))[-1]


@pytest.mark.parametrize("hexmsg", IDENT)
def test_callsign_matches_pymodes(hexmsg):
    assert decode_one([hexmsg]).callsign == pms.decode(hexmsg)["callsign"]


@pytest.mark.parametrize("hexmsg", SQUAWK)
def test_squawk_matches_pymodes(hexmsg):
    d = decode_one([hexmsg])
    assert d.squawk == pms.decode(hexmsg)["squawk"] and d.icao == int(
        pms.decode(hexmsg)["icao"], 16
    )


@pytest.mark.parametrize("hexmsg", ALTITUDE)
def test_altitude_reply_matches_pymodes(hexmsg):
    d = decode_one([hexmsg])
    alt_ft = pms.decode(hexmsg)["altitude"]
    assert d.alt_baro_ft == alt_ft and d.z[0] == pytest.approx(alt_ft * FT_M)


@pytest.mark.parametrize(
    ("gs_kt", "track_deg", "vrate_fpm"), [(159, 182.88, -832), (450, 45, 1024)]
)
def test_ground_velocity_matches_pymodes(gs_kt, track_deg, vrate_fpm):
    # near the site, so the site's north is the aircraft's north
    icao = 0x485020
    pos = [encode.airborne_position(icao, 52.0, 4.01, 30000, odd).hex() for odd in (0, 1)]
    vel = encode.velocity(icao, gs_kt, track_deg, vrate_fpm).hex()
    ref = pms.decode(vel)
    d = decode_one([*pos, vel])
    gs = ref["groundspeed"] * KT_MPS
    trk = math.radians(ref["track"])
    expected = [gs * math.sin(trk), gs * math.cos(trk), ref["vertical_rate"] * FPM_MPS]
    assert d.observes == ("ve", "vn", "vu")
    assert d.z == pytest.approx(expected, abs=0.05)


def test_pymodes_example_velocity_message():
    hexmsg = "8D485020994409940838175B284F"  # 159 kt, 182.88 deg, -832 ft/min (pyModeS docs)
    pos = [encode.airborne_position(0x485020, 52.0, 4.01, 30000, odd).hex() for odd in (0, 1)]
    d = decode_one([*pos, hexmsg])
    assert math.hypot(d.z[0], d.z[1]) == pytest.approx(159 * KT_MPS, rel=1e-3)
    assert math.degrees(math.atan2(d.z[0], d.z[1])) % 360 == pytest.approx(182.88, abs=0.05)
    assert d.z[2] == pytest.approx(-832 * FPM_MPS, abs=0.02)  # site up vs aircraft up


def test_airspeed_is_not_a_ground_velocity():
    hexmsg = "8DA05F219B06B6AF189400CBC33F"  # subtype 3: 375 kt TAS, heading 244 (pyModeS docs)
    assert pms.decode(hexmsg)["subtype"] == 3
    d = decode_one([hexmsg])
    assert d.source == "adsb-airspeed" and d.observes == ()


def test_target_state_nacp_sets_the_position_sigma():
    # TC 29 with NACp 10 (pyModeS's example, with the CRC re-computed for its address)
    body = bytes.fromhex("8D4840D6EA466864D15C08")
    ts = (body + crc24(body + bytes(3), 112).to_bytes(3, "big")).hex()
    assert pms.decode(ts)["nac_p"] == 10
    pos = [encode.airborne_position(0x4840D6, 52.1, 4.1, 30000, odd).hex() for odd in (0, 1)]
    d = decode_one([ts, *pos])
    assert math.sqrt(d.R[0, 0]) == pytest.approx(position_sigma_m(11, 10))


def test_time_compressed_real_file_positions(modes1):
    from sensord.demod import Demodulator

    frames = Demodulator(2.0e6).feed(np.fromfile(modes1, np.uint8), "cu8")
    # the receiver of modes1 is unknown; its one aircraft flies near 37.1 N 13.8 E, so a
    # site 30 km away stands in. Default range (500 km): no site-local decode, so the
    # first position needs an even/odd pair; the rest chain locally off the last fix.
    site = Site(37.0, 13.5)
    det = Detector(site)
    pos = [d for d in det.process(frames) if d.source == "adsb-pos"]
    assert len(pos) > 80
    for d in pos:
        lat, lon, _ = site.to_geodetic(d.z)
        assert great_circle_m(lat, lon, 37.1, 13.8) < 30e3
    assert det.stats.positions.global_pair >= 1 and det.stats.positions.local_self > 70
    assert det.stats.frames_by_df[17] > 150


def test_fields_only_is_pymodes_decode_without_its_position_table(modes1):
    """The detector's ``FieldsOnly``: every field ``pyModeS.decode`` gives (no reference
    passed, so no position), for the real file's frames and the simulator's surface and
    GNSS positions; and pyModeS's airport table is never imported (a subprocess: this
    process may have imported it through another test)."""
    from sensord.decode.detector import FieldsOnly
    from sensord.demod import Demodulator

    frames = Demodulator(2.0e6).feed(np.fromfile(modes1, np.uint8), "cu8")
    hexes = [bytes(f["msg"][: f["nbits"] // 8]).hex() for f in frames]
    hexes += [encode.surface_position(0x4840D6, 52.3, 4.76, 12.0, 90.0, odd).hex()
              for odd in (0, 1)]  # fmt: skip
    hexes += [encode.airborne_position(0x4840D6, 52.1, 4.1, 30000, 0, typecode=20).hex()]
    tcs = {int(h[8:10], 16) >> 3 for h in hexes if int(h[:2], 16) >> 3 == 17}
    assert {4, 7, 11, 19, 20} <= tcs  # identity, surface, airborne, velocity, GNSS
    for h in hexes:
        assert FieldsOnly(bytes.fromhex(h)).decode() == pms.decode(h), h
    code = (
        "import sys\nfrom sensord.decode.detector import FieldsOnly\n"
        f"for h in {hexes!r}: FieldsOnly(bytes.fromhex(h)).decode()\n"
        "print([m for m in sys.modules if m.startswith(('pyModeS.position', 'pyModeS.data'))])"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
