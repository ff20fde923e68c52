"""Frames -> detections: field decoding (pyModeS), positions (sensord's CPR logic), covariances.

One ``Detection`` per measurement a frame carries:
- airborne/surface position (DF17/18 TC 5-18, 20-22): ``POSITION`` (e, n, u) in the site's
  ENU frame; the height is the barometric altitude (GNSS height for TC 20-22) taken as
  height above the ellipsoid (surface positions: the receiver's height, sigma 50 m);
  sigma from NACp (or NUCp for version 0);
- ground velocity (TC 19 subtypes 1/2): ``VELOCITY`` (ve, vn, vu), rotated from the
  aircraft's local north/east into the site's ENU frame at its last position (none is
  emitted before the aircraft has a position); sigma from NACv;
- airspeed/heading (TC 19 subtypes 3/4): not a ground velocity (wind), so it carries no
  measurement: identity only, counted as ``airspeed``;
- DF4/20 altitude: ``ALTITUDE`` (u); DF5/21 and TC 28 squawk, TC 1-4 callsign and
  category, DF11: identity only (they keep a track alive and carry identity).
Frames that pyModeS cannot decode are counted and skipped. Frames with bits corrected
by the demodulator are resolved only against a reference the aircraft already has (see
``sensord.decode.positions``). ``Detection`` has no field for an unconfirmed address
(``addr_confirmed`` False): such frames still give detections; they are counted in
``stats.unconfirmed``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from pyModeS import Message

from sensord import detections as det
from sensord.decode.accuracy import (
    ALT_SIGMA_M,
    SURFACE_HEIGHT_SIGMA_M,
    VRATE_SIGMA_MPS,
    position_sigma_m,
    velocity_sigma_mps,
)
from sensord.decode.positions import PositionResolver, PositionStats, Reference
from sensord.detections import Detection
from sensord.geo import FPM_MPS, FT_M, KT_MPS, Site, rotation_ecef_to_enu

CATEGORY_SET = {4: "A", 3: "B", 2: "C", 1: "D"}


class FieldsOnly(Message):
    """A reply's fields as ``pyModeS.decode`` gives them without a position reference.

    sensord resolves CPR itself (``PositionResolver``) and passes pyModeS no reference,
    so pyModeS's own position step has nothing to do; it would still import the
    position package, whose airport table stays resident (1.8 MB, see BENCHMARKS.md,
    "Steady RSS again"). The step is pyModeS's private ``_resolve_position``: should it
    be renamed, the fields stay the same and only the table is imported again (a test
    checks that it is not).
    """

    @staticmethod
    def _resolve_position(result, *, reference, surface_ref) -> None:
        return None


@dataclass
class DetectorStats:
    """Counters of the decode stage."""

    positions: PositionStats
    frames: int = 0
    undecodable: int = 0
    unconfirmed: int = 0
    corrected: int = 0
    frames_by_df: dict[int, int] = field(default_factory=dict)
    detections: dict[str, int] = field(default_factory=dict)

    def count(self, source: str) -> None:
        self.detections[source] = self.detections.get(source, 0) + 1


class Detector:
    """Stateful decoder of one receiver's frames (CPR halves, ADS-B versions, NACp)."""

    def __init__(
        self,
        site: Site,
        sensor_id: str = "rx0",
        reference: Reference | None = None,
        max_range_m: float = 500e3,
    ) -> None:
        self.site = site
        self.sensor_id = sensor_id
        self.positions = PositionResolver(site, max_range_m, reference)
        self.stats = DetectorStats(self.positions.stats)
        self._nac_p: dict[int, int] = {}
        self._nac_v: dict[int, int] = {}
        self._geo_minus_baro_ft: dict[int, float] = {}
        self._rot = site.rot_ecef_to_enu

    @property
    def reference(self) -> Reference | None:
        return self.positions.reference

    @reference.setter
    def reference(self, ref: Reference | None) -> None:
        self.positions.reference = ref

    def process(self, frames: np.ndarray) -> list[Detection]:
        """Detections of a batch of frames (FRAME_DTYPE), in frame order."""
        out: list[Detection] = []
        for frame in frames:
            self.stats.frames += 1
            try:
                msg = FieldsOnly(frame["msg"][: frame["nbits"] >> 3].tobytes()).decode()
            except Exception:  # pyModeS raises several types for junk; all mean "skip"
                self.stats.undecodable += 1
                continue
            df = msg["df"]
            self.stats.frames_by_df[df] = self.stats.frames_by_df.get(df, 0) + 1
            self.stats.unconfirmed += not frame["addr_confirmed"]
            self.stats.corrected += bool(frame["corrected_bits"])
            d = self._detection(msg, frame)
            if d is not None:
                self.stats.count(d.source)
                out.append(d)
        return out

    def _base(self, frame: np.void, icao: int, source: str, **kw) -> Detection:
        return Detection(
            float(frame["t_s"]),
            self.sensor_id,
            icao=icao,
            source=source,
            frame=frame["msg"][: frame["nbits"] >> 3].tobytes(),
            signal_dbfs=float(frame["signal_dbfs"]),
            **kw,
        )

    def _detection(self, msg, frame: np.void) -> Detection | None:
        df = msg["df"]
        icao = int(frame["icao"]) or int(msg["icao"], 16)
        if df in (4, 20):
            alt_ft = msg.get("altitude")
            if alt_ft is None:
                return self._base(frame, icao, "df4-noalt")
            return self._base(
                frame,
                icao,
                "df4-alt",
                observes=det.ALTITUDE,
                z=np.array([alt_ft * FT_M]),
                R=np.array([[ALT_SIGMA_M**2]]),
                alt_baro_ft=float(alt_ft),
            )
        if df in (5, 21):
            return self._base(frame, icao, "df5-squawk", squawk=msg.get("squawk"))
        if df == 11:
            return self._base(frame, icao, "df11")
        if df not in (17, 18):
            return self._base(frame, icao, f"df{df}")
        tc = msg.get("typecode") or 0
        if 1 <= tc <= 4:
            cat = msg.get("category")
            category = f"{CATEGORY_SET[tc]}{cat}" if cat is not None else None
            return self._base(
                frame, icao, "adsb-ident", callsign=msg.get("callsign"), category=category
            )
        if 5 <= tc <= 8 or 9 <= tc <= 18 or 20 <= tc <= 22:
            return self._position(msg, frame, icao, tc)
        if tc == 19:
            return self._velocity(msg, frame, icao)
        if tc == 28 and msg.get("squawk"):
            return self._base(frame, icao, "adsb-squawk", squawk=msg["squawk"])
        if tc in (29, 31):
            # NACp from operational status (version 1/2) or target state (version 2 only)
            if (tc == 29 or msg.get("version", 0) >= 1) and msg.get("nac_p") is not None:
                self._nac_p[icao] = msg["nac_p"]
            return self._base(frame, icao, "adsb-status" if tc == 31 else "adsb-target-state")
        return self._base(frame, icao, f"adsb-tc{tc}")

    def _position(self, msg, frame, icao: int, tc: int) -> Detection | None:
        surface = tc <= 8
        t_s = float(frame["t_s"])
        if msg.get("cpr_lat") is None:
            return None
        pos = self.positions.resolve(
            icao,
            t_s,
            msg["cpr_format"],
            msg["cpr_lat"],
            msg["cpr_lon"],
            surface,
            ground_speed_kt=msg.get("groundspeed") if surface else None,
            corrected=bool(frame["corrected_bits"]),
        )
        # a surface position carries no height: the receiver's (surface positions resolve
        # within 45 NM of it, usually at the same airport), with a wide sigma
        alt_ft = self.site.alt_m / FT_M if surface else msg.get("altitude")
        if pos is None or alt_ft is None:
            return self._base(frame, icao, "adsb-pos-unresolved")
        gnss = tc >= 20
        geo_minus_baro = None if surface else self._geo_minus_baro_ft.get(icao)
        if gnss:
            alt_geom_ft = float(alt_ft)
        elif geo_minus_baro is not None:
            alt_geom_ft = float(alt_ft) + geo_minus_baro
        else:
            alt_geom_ft = None
        z = self.site.to_enu(pos[0], pos[1], alt_ft * FT_M)
        sigma = position_sigma_m(tc, self._nac_p.get(icao))
        sigma_u = SURFACE_HEIGHT_SIGMA_M if surface else ALT_SIGMA_M
        R = np.diag([sigma**2, sigma**2, sigma_u**2])
        return self._base(
            frame,
            icao,
            "adsb-surface" if surface else "adsb-pos",
            observes=det.POSITION,
            z=z,
            R=R,
            on_ground=surface,
            alt_baro_ft=None if gnss or surface else float(alt_ft),
            alt_geom_ft=alt_geom_ft,
        )

    def _velocity(self, msg, frame, icao: int) -> Detection:
        if msg.get("subtype") not in (1, 2) or msg.get("groundspeed") is None:
            return self._base(frame, icao, "adsb-airspeed")
        if msg.get("geo_minus_baro") is not None:
            self._geo_minus_baro_ft[icao] = float(msg["geo_minus_baro"])
        last = self.positions.last_position(icao)
        if last is None:
            # the rotation into the site's frame needs the aircraft's position (degrees of
            # meridian convergence far out): without it the velocity would mislead the track
            return self._base(frame, icao, "adsb-vel-noposition")
        gs = msg["groundspeed"] * KT_MPS
        trk = math.radians(msg["track"])
        vrate = msg.get("vertical_rate")
        local = np.array([gs * math.sin(trk), gs * math.cos(trk), (vrate or 0) * FPM_MPS])
        v = self._rot @ (rotation_ecef_to_enu(*last).T @ local)
        sh = velocity_sigma_mps(msg.get("nac_v"))
        sv = VRATE_SIGMA_MPS if vrate is not None else 50.0
        return self._base(
            frame, icao, "adsb-vel", observes=det.VELOCITY, z=v, R=np.diag([sh**2, sh**2, sv**2])
        )

    def geo_minus_baro_ft(self, icao: int) -> float | None:
        """Latest GNSS minus barometric altitude difference the aircraft sent."""
        return self._geo_minus_baro_ft.get(icao)
