"""Track map (ENU around the receiver) and range/altitude coverage polar plot, to PNG.

matplotlib is the optional ``plot`` extra; without it the caller gets one clear message.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from sensord.errors import UserError
from sensord.geo import FT_M, Site
from sensord.tracker.update import TrackUpdate


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError("plotting needs matplotlib: pip install 'sensord[plot]'") from None
    return plt


def positions_enu_km(updates: list[TrackUpdate], site: Site) -> dict[str, np.ndarray]:
    """Per track, the (N, 4) array of east, north, up (km) and altitude (ft) of its positions."""
    by_track: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    for u in updates:
        if u.lat_deg is not None and u.lon_deg is not None:
            alt_ft = u.alt_baro_ft if u.alt_baro_ft is not None else (u.alt_geom_ft or 0.0)
            by_track[u.icao or u.track_id].append((u.lat_deg, u.lon_deg, alt_ft))
    out = {}
    for key, rows in by_track.items():
        lla = np.asarray(rows)
        enu_m = site.to_enu(lla[:, 0], lla[:, 1], lla[:, 2] * FT_M)
        out[key] = np.column_stack([enu_m / 1000.0, lla[:, 2]])
    return out


def plot_tracks(
    updates: list[TrackUpdate], site: Site, path: str | Path, title: str = "sensord"
) -> int:
    """Write the PNG; returns the number of tracks drawn."""
    plt = _pyplot()
    tracks = positions_enu_km(updates, site)
    if not tracks:
        raise UserError("no positions to plot")
    fig = plt.figure(figsize=(13, 6))
    ax_map = fig.add_subplot(1, 2, 1)
    ax_cov = fig.add_subplot(1, 2, 2, projection="polar")
    all_pts = np.concatenate(list(tracks.values()))
    for key, pts in tracks.items():
        ax_map.plot(pts[:, 0], pts[:, 1], lw=1)
        ax_map.annotate(key, pts[-1, :2], fontsize=7)
    ax_map.plot([0], [0], "k^", ms=9, label="receiver")
    ax_map.set_xlabel("east, km")
    ax_map.set_ylabel("north, km")
    ax_map.set_aspect("equal", adjustable="datalim")
    ax_map.grid(alpha=0.3)
    ax_map.legend(loc="upper right")
    ax_map.set_title(
        f"{title}: {len(tracks)} tracks (ENU around {site.lat_deg:.3f}, {site.lon_deg:.3f})"
    )
    azimuth_rad = np.arctan2(all_pts[:, 0], all_pts[:, 1])
    range_km = np.hypot(all_pts[:, 0], all_pts[:, 1])
    sc = ax_cov.scatter(azimuth_rad, range_km, c=all_pts[:, 3], s=4, cmap="viridis")
    ax_cov.set_theta_zero_location("N")
    ax_cov.set_theta_direction(-1)
    ax_cov.set_title(f"coverage: max range {range_km.max():.0f} km")
    fig.colorbar(sc, ax=ax_cov, label="altitude, ft", shrink=0.8)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=100)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        plt.close(fig)
    return len(tracks)


def _draw_marks(ax, marks: list) -> None:
    """Cooperative tracks as white "+", radar-only tracks as magenta diamonds, labelled."""
    from sensord.radar.map_image import COOPERATIVE

    styles = {
        True: dict(marker="+", s=160, c="white", linewidths=1.6,
                   label="cooperative track (predicted)"),
        False: dict(marker="D", s=70, facecolors="none", edgecolors="magenta", linewidths=1.4,
                    label="radar-only track"),
    }  # fmt: skip
    for cooperative, style in styles.items():
        group = [m for m in marks if (m.kind == COOPERATIVE) == cooperative]
        if not group:
            continue
        ax.scatter([m.doppler_hz for m in group], [m.bistatic_range_m / 1e3 for m in group],
                   **style)  # fmt: skip
        colour = "white" if cooperative else "magenta"
        for m in group:
            ax.annotate(m.label, (m.doppler_hz, m.bistatic_range_m / 1e3), fontsize=7,
                        color=colour, xytext=(5, -9), textcoords="offset points")  # fmt: skip


def plot_range_doppler(
    power_db: np.ndarray,
    range_cell_m: float,
    cpi_s: float,
    detections: list,
    path: str | Path,
    truth: np.ndarray | None = None,
    title: str = "sensord radar",
    marks: list | None = None,
) -> int:
    """A CPI's range-Doppler map (dB over the median, range x Doppler) with its
    detections (``RadarDetection``), from a simulation the true targets, and track
    ``marks`` (``map_image.TrackMark``: cooperative at their predicted range and Doppler,
    radar-only with their ids); returns the number of detections drawn."""
    plt = _pyplot()
    n_range, n_doppler = power_db.shape
    extent = (
        -(n_doppler // 2) / cpi_s,
        (n_doppler - n_doppler // 2) / cpi_s,
        0.0,
        n_range * range_cell_m / 1e3,
    )
    fig, ax = plt.subplots(figsize=(9, 7))
    im = ax.imshow(
        power_db,
        origin="lower",
        aspect="auto",
        extent=extent,
        cmap="viridis",
        vmin=0.0,
        vmax=max(float(np.percentile(power_db, 99.99)), 10.0),
    )
    fig.colorbar(im, ax=ax, label="power over the map's median, dB")
    if truth is not None and len(truth):
        ax.scatter(
            truth["doppler_hz"],
            truth["bistatic_range_m"] / 1e3,
            s=120,
            facecolors="none",
            edgecolors="white",
            linewidths=1.0,
            label="truth",
        )
    if detections:
        ax.scatter(
            [d.doppler_hz for d in detections],
            [d.bistatic_range_m / 1e3 for d in detections],
            marker="x",
            c="red",
            s=40,
            label="detections",
        )
        for d in detections:
            ax.annotate(
                f"{d.snr_db:.0f}",
                (d.doppler_hz, d.bistatic_range_m / 1e3),
                fontsize=7,
                color="red",
                xytext=(4, 4),
                textcoords="offset points",
            )
    _draw_marks(ax, marks or [])
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_xlabel("Doppler, Hz")
    ax.set_ylabel("bistatic range, km")
    ax.set_title(title)
    if detections or truth is not None or marks:
        ax.legend(loc="upper right")
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=100)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        plt.close(fig)
    return len(detections)
