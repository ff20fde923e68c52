"""What radar nodes publish for the fusion node, and its strict parser.

A radar node (``sensord radar --mqtt``, ``sensord.radar.publishing``) publishes a retained
``info`` whose ``radar`` object gives its transmitter, receiver and carrier, and one
message per CPI on ``<prefix>/<node>/radar/detections``::

    {"schema": 1, "node": "radar0", "cpi": 12, "t_s": 6.25, "utc": ..,
     "detections": [{"utc", "bistatic_range_m", "doppler_hz", "range_rate_mps", "snr_db",
                     "bistatic_range_var_m2", "range_rate_var_m2s2", ...}, ...],
     "discarded": null | "why"}

``parse_*`` raise ``PayloadError`` (one line) for anything malformed, non-finite or of an
unknown schema; the fusion node counts it under the node. A malformed detection in a
sound message is left out and counted (``rejected``), not the whole CPI.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sensord.errors import UserError
from sensord.fusion.wire import PayloadError, finite_number, json_object, node_of
from sensord.geo import Site
from sensord.radar.detections import RadarDetection
from sensord.radar.geometry import Bistatic

RADAR_SCHEMA = 1
MAX_RADAR_DETECTIONS = 10_000  # per CPI: a 400 x 200 map has 80,000 cells
MIN_RANGE_M = -1000.0  # a detection at the map's first cells, moved by noise or skew
MAX_RANGE_M = 1e6
MAX_RATE_MPS = 3000.0


@dataclass(frozen=True, slots=True)
class RadarCpiMessage:
    """One CPI of a radar node: its detections (empty: nothing seen, or ``discarded``)."""

    node: str
    cpi: int
    utc: float  # the CPI centre
    detections: list[RadarDetection]
    discarded: str | None
    rejected: int = 0  # detections left out as malformed
    reason: str = ""  # why the first of them was


def _site(doc: object, what: str) -> Site:
    if not isinstance(doc, dict):
        raise PayloadError(f"radar {what} is not an object")
    return Site(
        finite_number(doc, "lat_deg", -90.0, 90.0),
        finite_number(doc, "lon_deg", -180.0, 180.0),
        finite_number(doc, "alt_m", -500.0, 9000.0),
    )


def parse_radar_info(doc: dict) -> Bistatic | None:
    """The bistatic pair of a node's ``info`` (None: not a radar node)."""
    radar = doc.get("radar")
    if radar is None:
        return None
    if not isinstance(radar, dict):
        raise PayloadError("radar is not an object")
    try:
        return Bistatic(
            _site(radar.get("tx"), "tx"),
            _site(radar.get("rx"), "rx"),
            finite_number(radar, "carrier_hz", 1e6, 1e11),
        )
    except UserError as exc:
        raise PayloadError(str(exc)) from None


def parse_radar_cpi(payload: bytes | str | dict, wavelength_m: float) -> RadarCpiMessage:
    """One CPI message; the range rate is checked against the Doppler at ``wavelength_m``."""
    doc = json_object(payload)
    node = node_of(doc, RADAR_SCHEMA, "radar")
    cpi = doc.get("cpi")
    if isinstance(cpi, bool) or not isinstance(cpi, int) or cpi < 0:
        raise PayloadError("cpi is not a CPI number")
    utc = finite_number(doc, "utc", 0.0)
    t_s = finite_number(doc, "t_s")
    discarded = doc.get("discarded")
    if discarded is not None and not isinstance(discarded, str):
        raise PayloadError("discarded is not a reason")
    items = doc.get("detections")
    if not isinstance(items, list) or len(items) > MAX_RADAR_DETECTIONS:
        raise PayloadError("detections is not a list (or is absurdly long)")
    dets, rejected, reason = [], 0, ""
    for item in items:
        try:
            dets.append(_detection(item, cpi, t_s, utc, wavelength_m))
        except PayloadError as exc:
            rejected += 1
            reason = reason or str(exc)
    return RadarCpiMessage(node, cpi, utc, dets, discarded, rejected, reason)


def _detection(item: object, cpi: int, t_s: float, utc: float, lam_m: float) -> RadarDetection:
    if not isinstance(item, dict):
        raise PayloadError("a radar detection is not an object")
    rate = finite_number(item, "range_rate_mps", -MAX_RATE_MPS, MAX_RATE_MPS)
    doppler = finite_number(item, "doppler_hz", -MAX_RATE_MPS / lam_m, MAX_RATE_MPS / lam_m)
    if abs(rate + doppler * lam_m) > 0.01 * abs(rate) + 1.0:
        raise PayloadError("range rate and Doppler disagree for the carrier in info")
    return RadarDetection(
        t_s=t_s,
        utc=utc,
        cpi=cpi,
        bistatic_range_m=finite_number(item, "bistatic_range_m", MIN_RANGE_M, MAX_RANGE_M),
        doppler_hz=doppler,
        range_rate_mps=rate,
        snr_db=finite_number(item, "snr_db", -50.0, 200.0),
        bistatic_range_var_m2=finite_number(item, "bistatic_range_var_m2", 0.0, 1e12),
        doppler_var_hz2=finite_number(item, "doppler_var_hz2", 0.0, 1e6),
        range_rate_var_m2s2=finite_number(item, "range_rate_var_m2s2", 0.0, 1e8),
        range_cell=math.nan,
        doppler_bin=math.nan,
    )
