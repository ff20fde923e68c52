"""aircraft.json and receiver.json held to readsb's documented format (README-json), which
tar1090 reads: fields, units, types, the mlat/tisb field lists. See docs/tar1090.md."""

from __future__ import annotations

import json
import time

import jsonschema

from sensord.outputs.aircraft_json import AircraftJsonWriter, receiver_document
from sensord.tracker.update import TrackStatus, TrackUpdate

# readsb README-json: the `type` values, best source first
READSB_TYPES = [
    "adsb_icao", "adsb_icao_nt", "adsr_icao", "tisb_icao", "adsc", "mlat", "other", "mode_s",
    "adsb_other", "adsr_other", "tisb_other", "tisb_trackfile",
]  # fmt: skip
NUMBER = {"type": "number"}
AIRCRAFT_SCHEMA = {
    "type": "object",
    "required": ["now", "messages", "aircraft"],
    "properties": {
        "now": {"type": "number", "minimum": 1.5e9, "maximum": 4.1e9},  # Unix time, s
        "messages": {"type": "integer", "minimum": 0},
        "aircraft": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["hex", "type", "seen", "messages", "mlat", "tisb"],
                "properties": {
                    "hex": {"type": "string", "pattern": "^~?[0-9a-f]{6}$"},
                    "type": {"enum": READSB_TYPES},
                    "flight": {"type": "string", "pattern": "^[A-Z0-9 ]{8}$"},
                    "squawk": {"type": "string", "pattern": "^[0-7]{4}$"},
                    "category": {"type": "string", "pattern": "^[A-D][0-7]$"},
                    "alt_baro": {"anyOf": [{"type": "integer"}, {"const": "ground"}]},
                    "alt_geom": {"type": "integer"},
                    "gs": {"type": "number", "minimum": 0},
                    "track": {"type": "number", "minimum": 0, "maximum": 360},
                    "baro_rate": {"type": "integer"},
                    "lat": {"type": "number", "minimum": -90, "maximum": 90},
                    "lon": {"type": "number", "minimum": -180, "maximum": 180},
                    "rc": {"type": "number", "minimum": 0},
                    "seen": {"type": "number", "minimum": 0},
                    "seen_pos": {"type": "number", "minimum": 0},
                    "rssi": {"type": "number", "maximum": 0},
                    "messages": {"type": "integer", "minimum": 0},
                    "mlat": {"type": "array", "items": {"type": "string"}},
                    "tisb": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}
RECEIVER_SCHEMA = {
    "type": "object",
    "required": ["version", "refresh", "history"],
    "properties": {
        "version": {"type": "string"},
        "refresh": {"type": "integer", "minimum": 100},  # ms
        "history": {"type": "integer", "minimum": 0},
        "lat": {"type": "number", "minimum": -90, "maximum": 90},
        "lon": {"type": "number", "minimum": -180, "maximum": 180},
    },
}


def _update(**kw) -> TrackUpdate:
    base = dict(
        track_id="4840D6",
        t_s=10.0,
        status=TrackStatus.CONFIRMED,
        icao="4840D6",
        callsign="KLM1023",
        squawk="7421",
        category="A3",
        lat_deg=52.2572,
        lon_deg=3.91937,
        alt_baro_ft=38000.0,
        alt_geom_ft=38325.0,
        h_err95_m=42.4,
        gs_kt=159.2,
        track_deg=182.88,
        vrate_fpm=-832.0,
        n_updates=12,
        sensors=("rx0",),
    )
    base.update(kw)
    return TrackUpdate(**base)


def _document() -> dict:
    writer = AircraftJsonWriter(None)
    writer.add_frames([0x4840D6, 0x4840D6, 0x3C6DD1], [-12.0, -10.5, -20.0])
    writer.add_updates(
        [
            _update(),  # ADS-B (source None: ADS-B)
            _update(track_id="3C6DD1", icao="3C6DD1", callsign=None, source="mlat"),
            _update(
                track_id="R17", icao=None, callsign=None, squawk=None,
                category=None, alt_baro_ft=None, alt_geom_ft=None, vrate_fpm=None, source="radar",
            ),
            _update(track_id="ABC123", icao="ABC123", lat_deg=None, lon_deg=None, t_s=8.0),
        ]
    )  # fmt: skip
    return writer.document(now_s=13.0)


def test_aircraft_json_follows_readsb_format_for_every_kind():
    doc = _document()
    jsonschema.validate(doc, AIRCRAFT_SCHEMA)
    assert abs(doc["now"] - time.time()) < 5 and doc["messages"] == 3
    by_hex = {a["hex"]: a for a in doc["aircraft"]}
    adsb, mlat, radar, no_pos = (
        by_hex["4840d6"],
        by_hex["3c6dd1"],
        by_hex["~000017"],
        by_hex["abc123"],
    )
    assert adsb["type"] == "adsb_icao" and adsb["mlat"] == [] and adsb["tisb"] == []
    assert adsb["flight"] == "KLM1023 " and adsb["alt_baro"] == 38000 and adsb["gs"] == 159.2
    assert adsb["rssi"] == -10.5 and adsb["messages"] == 2 and adsb["rc"] == 42
    assert adsb["seen"] == 3.0 and adsb["seen_pos"] == 3.0
    assert mlat["type"] == "mlat" and {"lat", "lon"} <= set(mlat["mlat"]) and mlat["tisb"] == []
    assert radar["type"] == "tisb_trackfile" and {"lat", "lon"} <= set(radar["tisb"])
    assert radar["mlat"] == [] and "alt_baro" not in radar
    for ac in (mlat, radar):  # the lists name fields present in the object
        assert set(ac["mlat"] + ac["tisb"]) <= set(ac)
    assert "seen_pos" not in no_pos and no_pos["seen"] == 5.0


def test_receiver_json_follows_readsb_format():
    doc = receiver_document(52.0, 4.5)
    jsonschema.validate(doc, RECEIVER_SCHEMA)
    assert doc["refresh"] == 1000 and doc["lat"] == 52.0 and doc["version"].startswith("sensord")
    jsonschema.validate(receiver_document(None, None), RECEIVER_SCHEMA)


def test_aircraft_json_file_is_written_atomically_in_the_format(tmp_path):
    writer = AircraftJsonWriter(tmp_path)
    writer.add_updates([_update()])
    writer.write(10.0, utc=1_796_000_000.0)
    doc = json.loads((tmp_path / "aircraft.json").read_text())
    jsonschema.validate(doc, AIRCRAFT_SCHEMA)
    assert doc["now"] == 1_796_000_000.0 and list(tmp_path.iterdir()) == [
        tmp_path / "aircraft.json"
    ]
