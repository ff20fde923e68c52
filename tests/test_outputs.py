"""Outputs read back by real clients: Beast and SBS over TCP sockets, aircraft.json from disk."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone

import numpy as np
import pytest

from sensord.errors import UserError
from sensord.frames import frames_from_hex
from sensord.outputs import beast, sbs
from sensord.outputs.aircraft_json import AircraftJsonWriter
from sensord.outputs.tcp import BroadcastServer
from sensord.tracker.update import TrackStatus, TrackUpdate

HEXES = [
    "8D4840D6202CC371C32CE0576098",  # DF17 identification
    "8D40621D58C382D690C8AC2863A7",  # DF17 airborne position
    "5D484FDEA248F5",  # DF11 all-call
    "8D1A1A1A9914AB2B2020201A1A1A",  # 0x1a bytes in the payload must be doubled
]


def _frames() -> np.ndarray:
    frames = frames_from_hex(HEXES, t_s=[1.0, 1.5, 2.0, 2.5])
    frames["ts_12mhz"][3] = 0x1A1A1A1A1A1A  # and in the timestamp
    frames["signal_dbfs"] = [-10.0, -20.0, -3.0, 0.0]
    return frames


def _update(**kw) -> TrackUpdate:
    base = dict(
        track_id="t1",
        t_s=10.0,
        status=TrackStatus.CONFIRMED,
        icao="4840D6",
        callsign="KLM1023",
        squawk="7421",
        lat_deg=52.25720,
        lon_deg=3.91937,
        alt_baro_ft=38000,
        gs_kt=159.2,
        track_deg=182.9,
        vrate_fpm=-832,
        h_err95_m=42.0,
        n_updates=17,
    )
    base.update(kw)
    return TrackUpdate(**base)


async def _collect(server: BroadcastServer, payload: bytes) -> bytes:
    port = await server.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for _ in range(100):
        if server.n_clients:
            break
        await asyncio.sleep(0.01)
    server.broadcast(payload)
    await server.close()
    data = await reader.read()
    writer.close()
    return data


def test_beast_over_tcp_parses_back_to_the_frames():
    frames = _frames()
    data = asyncio.run(_collect(BroadcastServer(), beast.encode_frames(frames)))
    records = beast.decode_stream(data)
    assert [r[2].hex().upper() for r in records] == HEXES
    assert [r[0] for r in records] == [int(t) for t in frames["ts_12mhz"]]
    assert [r[1] for r in records] == [81, 26, 181, 255]  # 255 * 10^(dBFS/20)
    assert data.count(b"\x1a\x1a") >= 6 + 3  # timestamp and payload escapes
    assert data[:2] == b"\x1a3"  # 112-bit record type
    assert bytes([0x1A, ord("2")]) in data  # the 56-bit DF11


def test_beast_decoder_skips_garbage_and_truncated_tail():
    good = beast.encode_frame(_frames()[0])
    records = beast.decode_stream(b"\x00\xff garbage" + good + good[:9])
    assert [r[2].hex().upper() for r in records] == [HEXES[0]]


def test_sbs_over_tcp_lines_carry_the_track():
    now = datetime(2026, 11, 25, 6, 30, 1, 250000, tzinfo=timezone.utc)
    payload = sbs.encode_updates([_update(), _update(status=TrackStatus.DROPPED)], now)
    text = asyncio.run(_collect(BroadcastServer(), payload)).decode("ascii")
    lines = text.split("\r\n")[:-1]
    fields = {int(line.split(",")[1]): line.split(",") for line in lines}
    assert sorted(fields) == [1, 3, 4, 6]
    assert all(
        len(f) == sbs.N_FIELDS and f[0] == "MSG" and f[4] == "4840D6" for f in fields.values()
    )
    assert fields[1][10] == "KLM1023"
    assert (
        fields[3][11] == "38000"
        and float(fields[3][14]) == pytest.approx(52.2572)
        and float(fields[3][15]) == pytest.approx(3.91937)
    )
    assert fields[4][12:15] == ["159", "183", ""] and fields[4][16] == "-832"
    assert fields[6][17] == "7421"
    assert fields[1][6:8] == ["2026/11/25", "06:30:01.250"]


def test_slow_client_is_disconnected_not_buffered():
    async def scenario() -> int:
        server = BroadcastServer(max_buffer_bytes=64 * 1024)
        port = await server.start()
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)  # never reads
        while not server.n_clients:
            await asyncio.sleep(0.01)
        for _ in range(400):
            server.broadcast(b"x" * 65536)
            await asyncio.sleep(0)
        dropped = server.dropped_clients
        await server.close()
        writer.close()
        return dropped

    assert asyncio.run(scenario()) == 1


DUMP1090_FIELDS = {
    "hex",
    "flight",
    "squawk",
    "alt_baro",
    "alt_geom",
    "gs",
    "track",
    "baro_rate",
    "lat",
    "lon",
    "seen",
    "seen_pos",
    "messages",
    "rssi",
    "category",
    "rc",
    "type",
    "mlat",
    "tisb",
    "sensord_status",
}


def test_aircraft_json_written_atomically_with_documented_fields(tmp_path):
    writer = AircraftJsonWriter(tmp_path)
    writer.add_frames([0x4840D6] * 3 + [0x123456], [-12.0, -11.0, -10.5, -30.0])
    writer.add_updates(
        [
            _update(),
            _update(track_id="t2", icao="ABCDEF", lat_deg=None, lon_deg=None, callsign=None),
        ]
    )
    writer.write(now_s=12.5)
    writer.add_updates([_update(track_id="t2", status=TrackStatus.DROPPED)])
    writer.write(now_s=13.0, utc=1_796_000_013.0)
    doc = json.loads((tmp_path / "aircraft.json").read_text())
    assert list(tmp_path.iterdir()) == [tmp_path / "aircraft.json"]  # no temporary left
    assert doc["now"] == 1_796_000_013.0 and doc["messages"] == 4
    (ac,) = doc["aircraft"]
    assert set(ac) <= DUMP1090_FIELDS
    assert ac["hex"] == "4840d6" and ac["flight"] == "KLM1023 " and ac["squawk"] == "7421"
    assert (
        ac["alt_baro"] == 38000
        and ac["gs"] == 159.2
        and ac["track"] == 182.9
        and ac["baro_rate"] == -832
    )
    assert ac["lat"] == 52.2572 and ac["lon"] == 3.91937 and ac["rc"] == 42
    assert (
        ac["seen"] == 3.0 and ac["seen_pos"] == 3.0 and ac["messages"] == 3 and ac["rssi"] == -10.5
    )


def test_aircraft_json_missing_directory_is_one_clear_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        AircraftJsonWriter(tmp_path / "nope")


def test_aircraft_json_unwritable_target_is_one_clear_error_and_no_temporary(tmp_path):
    writer = AircraftJsonWriter(tmp_path)
    (tmp_path / "aircraft.json").mkdir()  # os.replace onto a directory fails
    with pytest.raises(UserError, match="cannot write"):
        writer.write(now_s=1.0)
    assert [p.name for p in tmp_path.iterdir()] == ["aircraft.json"]
