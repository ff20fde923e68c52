"""Radar nodes through the fusion node (no broker): their CPIs into the one tracker.

Detection-level: each radar's CPI messages are made from the true geometry of a
cooperative aircraft (whose ADS-B positions a receiver node sends) and of aircraft with
the transponder off, with the variances and noise the radar's processor reports, plus
false alarms. The IQ-level path (simulated recordings through ``sensord radar`` nodes and
``sensord fuse`` over a real broker) is in ``test_fusion_radar_mqtt.py``.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import jsonschema
import numpy as np
import pytest
from test_daemon import schema

from sensord.detections import Detection
from sensord.fusion.fuser import Fuser, FusionConfig
from sensord.fusion.wire import NodeInfo, batch_json
from sensord.geo import Site
from sensord.radar.geometry import Bistatic
from sensord.radar.publishing import RADAR_SCHEMA
from sensord.sim.radar import RadarTarget
from sensord.sim.scenario import Aircraft, Leg
from sensord.tracker.update import TrackStatus

T0 = 1.75e9
SITE = Site(52.0, 4.5, 10.0)
TX = Site(52.2, 4.6, 100.0)
RX = {"r1": Site(52.0, 4.5, 10.0), "r2": Site(51.93, 4.78, 5.0)}
FC = 98e6
CPI_S = 0.5
RANGE_SIGMA_M, RATE_SIGMA_MPS = 40.0, 0.15


def _aircraft(icao: int, east_m: float, north_m: float, alt_ft: float, gs_kt: float,
              track_deg: float) -> Aircraft:  # fmt: skip
    return Aircraft(icao=icao, callsign="", squawk="7000", east_m=east_m, north_m=north_m,
                    alt_ft=alt_ft, gs_kt=gs_kt, track_deg=track_deg, legs=[Leg(600.0)],
                    site=SITE)  # fmt: skip


COOPERATIVE = _aircraft(0x4840D6, 9e3, 14e3, 6000.0, 240.0, 200.0)
DARK = _aircraft(0x000001, 17e3, -6e3, 4500.0, 200.0, 300.0)


def _truth(ac: Aircraft, t_s: float) -> tuple[np.ndarray, np.ndarray]:
    st = ac.state_at(t_s)
    rot = SITE.rot_ecef_to_enu
    return SITE.ecef_m + st.enu_m @ rot, st.vel_enu_mps @ rot


def _radar_info(node: str) -> dict:
    b = Bistatic(TX, RX[node], FC)
    info = NodeInfo(node, RX[node].lat_deg, RX[node].lon_deg, RX[node].alt_m, "file", 2e6)
    return {**info.to_dict(), "radar": {**b.to_dict(), "cpi_s": CPI_S}}


def _cpi(node: str, k: int, targets: list[RadarTarget], rng) -> str:
    b = Bistatic(TX, RX[node], FC)
    t = (k + 0.5) * CPI_S
    dets = []
    for tg in targets:
        pos, vel = _truth(tg.aircraft, t)
        if rng.random() > 0.95:  # Pd 0.95
            continue
        rng_m = float(b.range_m(pos)) + rng.normal(0, RANGE_SIGMA_M)
        rate = float(b.range_rate_mps(pos, vel)) + rng.normal(0, RATE_SIGMA_MPS)
        dets.append(_det(t, rng_m, rate, b))
    for _ in range(rng.poisson(1.0)):  # false alarms anywhere on the map
        dets.append(_det(t, rng.uniform(0, 60e3), rng.uniform(-120, 120), b))
    return json.dumps({"schema": RADAR_SCHEMA, "node": node, "cpi": k, "t_s": t, "utc": T0 + t,
                       "detections": dets, "discarded": None})  # fmt: skip


def _det(t: float, rng_m: float, rate: float, b: Bistatic) -> dict:
    return {"t_s": t, "utc": T0 + t, "bistatic_range_m": rng_m, "range_rate_mps": rate,
            "doppler_hz": -rate / b.wavelength_m, "snr_db": 20.0,
            "bistatic_range_var_m2": RANGE_SIGMA_M**2, "doppler_var_hz2": 1e-3,
            "range_rate_var_m2s2": RATE_SIGMA_MPS**2}  # fmt: skip


def _adsb(t: float, rng) -> str:
    pos, vel = _truth(COOPERATIVE, t)
    enu = (pos - SITE.ecef_m) @ SITE.rot_ecef_to_enu.T + rng.normal(0, 10.0, 3)
    v = vel @ SITE.rot_ecef_to_enu.T
    dets = [
        Detection(t, "adsb1", ("e", "n", "u"), enu, np.diag([15.0**2] * 3), icao=COOPERATIVE.icao,
                  source="adsb-pos", utc=T0 + t),
        Detection(t, "adsb1", ("ve", "vn", "vu"), v, np.diag([2.0**2] * 3), icao=COOPERATIVE.icao,
                  source="adsb-vel", utc=T0 + t),
    ]  # fmt: skip
    return batch_json("adsb1", T0 + t, dets)


def _run(radars: list[str], seconds: float = 30.0, seed: int = 3, clock_s: float = 0.0):
    """The receiver and ``radars`` for ``seconds``; the radars' UTC off by ``clock_s``."""
    rng = np.random.default_rng(seed)
    fuser = Fuser(FusionConfig(site=SITE, reorder_window_s=1.0))
    info = NodeInfo("adsb1", SITE.lat_deg, SITE.lon_deg, SITE.alt_m)
    fuser.node_info("adsb1", info.to_dict())
    for node in radars:
        fuser.node_info(node, _radar_info(node))
    targets = [RadarTarget("aircraft", 10.0, COOPERATIVE), RadarTarget("dark", 10.0, DARK)]
    updates = fuser.step(T0)  # the clock runs before the first message, as the service's
    for k in range(int(seconds / CPI_S)):
        t = (k + 0.5) * CPI_S
        fuser.ingest("adsb1", _adsb(t, rng))
        for node in radars:
            cpi = json.loads(_cpi(node, k, targets, rng))
            cpi["utc"] += clock_s
            fuser.ingest_radar(node, json.dumps(cpi))
        updates += fuser.step(T0 + t)
    updates += fuser.flush()
    return fuser, updates


def test_radar_echoes_update_the_cooperative_track_and_calibrate_the_radar():
    fuser, updates = _run(["r1", "r2"])
    status = fuser.statistics()["radar"]["nodes"]
    for node in ("r1", "r2"):
        s = status[node]
        echoes = s["cpis"] * 0.95  # the cooperative aircraft's expected detections
        assert s["cooperative"] >= 0.95 * echoes, s
        assert s["bias"]["pairs"] == s["cooperative"]
        assert abs(s["bias"]["range_bias_m"]) < 15.0 and abs(s["bias"]["doppler_bias_hz"]) < 0.1
    coop = [u for u in updates if u.icao == f"{COOPERATIVE.icao:06X}"]
    assert coop and not any(u.non_cooperative for u in coop)
    assert {"adsb1", "r1", "r2"} <= set(coop[-1].sensors)
    nodes = fuser.statistics()["nodes"]  # CPIs' UTCs are checked against the clock too
    assert all(nodes[n]["clock"] == 0 and nodes[n]["clock_offset_s"] is not None for n in status)


def test_a_radar_node_with_a_wrong_clock_is_refused(caplog):
    """Its CPIs 30 s ahead of the fusion clock: refused (clock), one warning, its offset
    in the status; the receiver's track goes on, without a radar echo."""
    fuser, updates = _run(["r1"], seconds=10.0, clock_s=30.0)
    r1 = fuser.statistics()["nodes"]["r1"]
    assert r1["clock_fault"] is True and abs(r1["clock_offset_s"] - 30.0) < 0.6
    assert r1["used"] == 0 and r1["clock"] == r1["detections_in"] > 0
    assert fuser.statistics()["radar"]["nodes"]["r1"]["cpis"] == 0
    assert len([r for r in caplog.records if r.getMessage().startswith("node r1: UTC")]) == 1
    coop = [u for u in updates if u.icao == f"{COOPERATIVE.icao:06X}"]
    assert coop and set(coop[-1].sensors) == {"adsb1"}


def test_two_baselines_geolocate_a_transponder_off_target():
    fuser, updates = _run(["r1", "r2"])
    located = [u for u in updates if u.track_id.startswith("R") and u.lat_deg is not None]
    assert located, fuser.statistics()["radar"]
    assert {u.track_id for u in located} == {located[0].track_id}, "one track, no swaps"
    assert all(u.non_cooperative and u.source == "radar" and u.icao is None for u in located)
    assert set(located[-1].sensors) == {"r1", "r2"}
    errors = []
    for u in located:
        pos, _ = _truth(DARK, u.t_s - T0)
        enu = SITE.to_enu(u.lat_deg, u.lon_deg, 0.0)
        truth = (pos - SITE.ecef_m) @ SITE.rot_ecef_to_enu.T
        errors.append(math.hypot(*(enu[:2] - truth[:2])))
    assert np.median(errors) < 500.0 and max(errors[len(errors) // 2 :]) < 1000.0, errors
    assert located[-1].status == TrackStatus.CONFIRMED
    # its range-Doppler tracks were published first, then dropped when it was located
    rd = [u for u in updates if u.track_id.startswith("radar:")]
    assert rd and all(u.bistatic is not None and u.lat_deg is None for u in rd)
    for u in (located[-1], rd[0], rd[-1]):
        jsonschema.validate(u.to_dict(), schema("track"))
    first_located = min(u.t_s for u in located)
    assert any(u.status == TrackStatus.DROPPED and u.t_s == first_located for u in rd)


def test_one_baseline_tracks_in_range_doppler_only():
    _, updates = _run(["r1"], seconds=20.0)
    assert not [u for u in updates if u.track_id.startswith("R")]
    rd = [u for u in updates if u.track_id.startswith("radar:r1:") and
          u.status == TrackStatus.CONFIRMED]  # fmt: skip
    b = Bistatic(TX, RX["r1"], FC)
    held = {}
    for u in rd:
        pos, vel = _truth(DARK, u.t_s - T0)
        if abs(u.bistatic["bistatic_range_m"] - float(b.range_m(pos))) < 300.0:
            held[u.track_id] = held.get(u.track_id, 0) + 1
            assert u.non_cooperative and u.source == "radar" and u.sensors == ("r1",)
            assert u.bistatic["doppler_hz"] == pytest.approx(
                -float(b.range_rate_mps(pos, vel)) / b.wavelength_m, abs=1.0
            )
    # the dark aircraft is held by one range-Doppler track through the run
    assert held and max(held.values()) >= 0.8 * 20.0 / CPI_S - 6, held


def test_fuse_replays_a_radar_recording_and_refuses_a_bad_spec(tmp_path):
    """`sensord fuse --radar-recording` runs a two-channel recording through the radar
    processor into the fusion node; a malformed spec is one line and exit 2."""
    stem = tmp_path / "scene"
    sim = subprocess.run(
        [sys.executable, "-m", "sensord", "simulate", "--radar", "-o", str(stem),
         "--duration", "3", "--format", "sigmf"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert sim.returncode == 0, sim.stderr
    spec = f"r1={stem}.sigmf-data@52.2,4.6,100@52.0,4.5,10@98e6"
    out = subprocess.run(
        [sys.executable, "-m", "sensord", "fuse", "--radar-recording", spec],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    stats = json.loads(out.stdout)
    assert stats["radar"]["nodes"]["r1"]["cpis"] >= 4
    assert stats["nodes"]["r1"]["used"] == stats["radar"]["nodes"]["r1"]["detections"] > 0
    bad = subprocess.run(
        [sys.executable, "-m", "sensord", "fuse", "--radar-recording", "r1=x@1,2,3"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr
    assert "--radar-recording" in bad.stderr
