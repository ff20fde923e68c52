"""The update writer: tracks' states as ``TrackUpdate``s, predicted by the bank's model.

Each touch is (track, t_s, predict): the track's state at t_s (predicted there by the
bank, CV or IMM, when ``predict``) in WGS84 with 95% uncertainties, ground speed, track
angle (against true north at the aircraft) and vertical rate, computed for all touches
in numpy at once.
"""

from __future__ import annotations

import numpy as np

from sensord.geo import FPM_MPS, FT_M, KT_MPS, Site
from sensord.tracker.bank import FilterBank
from sensord.tracker.track import Track
from sensord.tracker.update import TrackUpdate

CHI2_2D_95 = 5.991
Touch = tuple[Track, float, bool]  # a track changed at t_s (True: state must be predicted)


class UpdateWriter:
    """Turns touched tracks into track updates."""

    def __init__(self, site: Site, bank: FilterBank) -> None:
        self.site = site
        self.bank = bank

    def states(self, tracks: list[Track], t_s: list[float]) -> tuple[np.ndarray, np.ndarray]:
        """(n, 6) states and (n, 6, 6) covariances of tracks at t_s (tracks unchanged)."""
        dt = np.array(t_s) - np.array([tr.t_s for tr in tracks])
        return self.bank.predicted([tr.filt for tr in tracks], dt)

    def updates(self, touches: list[Touch]) -> list[TrackUpdate]:
        """The TrackUpdate of each touch."""
        if not touches:
            return []
        tracks = [track for track, _, _ in touches]
        t_s = [t if predict else track.t_s for track, t, predict in touches]
        x, p = self.states(tracks, t_s)
        lat, lon, h = self.site.to_geodetic(x[:, :3])
        # the aircraft reports its track against its own north, which far from the site is
        # turned by the meridians' convergence: (lon - lon_site) * sin(lat)
        convergence_deg = ((lon - self.site.lon_deg + 180.0) % 360.0 - 180.0) * np.sin(
            np.radians(lat)
        )
        a, b, c = p[:, 0, 0], p[:, 0, 1], p[:, 1, 1]
        half_spread = np.sqrt(((a - c) / 2) ** 2 + b * b)
        lambda_max = (a + c) / 2 + half_spread
        lambda_min = np.maximum((a + c) / 2 - half_spread, 0.0)
        # the major axis is at atan2(2b, a - c) / 2 from east, counter-clockwise
        orient_deg = (90.0 - np.degrees(0.5 * np.arctan2(2.0 * b, a - c)) + convergence_deg) % 180.0
        columns = zip(
            tracks,
            [t for _, t, _ in touches],
            lat.tolist(),
            lon.tolist(),
            (h / FT_M).tolist(),
            np.sqrt(CHI2_2D_95 * np.maximum(lambda_max, 0.0)).tolist(),
            (1.96 * np.sqrt(np.maximum(p[:, 2, 2], 0.0))).tolist(),
            (np.hypot(x[:, 3], x[:, 4]) / KT_MPS).tolist(),
            ((np.degrees(np.arctan2(x[:, 3], x[:, 4])) + convergence_deg) % 360.0).tolist(),
            (x[:, 5] / FPM_MPS).tolist(),
            np.sqrt(CHI2_2D_95 * lambda_min).tolist(),
            orient_deg.tolist(),
            strict=True,
        )
        return [
            TrackUpdate(
                track_id=track.track_id,
                t_s=t,
                status=track.status,
                lat_deg=lat_deg,
                lon_deg=lon_deg,
                alt_baro_ft=alt_ft,
                alt_geom_ft=alt_ft + track.geo_minus_baro_ft
                if track.geo_minus_baro_ft is not None
                else None,
                h_err95_m=h_err95_m,
                v_err95_m=v_err95_m,
                gs_kt=gs_kt,
                track_deg=track_deg,
                vrate_fpm=vrate_fpm,
                icao=f"{track.icao:06X}" if track.icao is not None else None,
                callsign=track.callsign,
                squawk=track.squawk,
                category=track.category,
                n_updates=track.n_updates,
                age_s=t - track.first_s,
                last_update_s=track.last_update_s,
                sensors=tuple(sorted(track.sensors)),
                sensor_last_s=dict(track.sensors),
                source=track.position_source,
                err95_major_m=h_err95_m,
                err95_minor_m=minor_m,
                err95_orient_deg=orient,
                non_cooperative=track.icao is None and track.position_source == "radar",
            )
            for (
                track,
                t,
                lat_deg,
                lon_deg,
                alt_ft,
                h_err95_m,
                v_err95_m,
                gs_kt,
                track_deg,
                vrate_fpm,
                minor_m,
                orient,
            ) in columns
        ]
